"""MNIST and Fashion-MNIST from their IDX files, plus the embedded Fashion-MNIST sample.

Both data sets are four gzip-compressed IDX files with the same names::

    train-images-idx3-ubyte.gz  60,000 x 28 x 28 uint8     train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   10,000 x 28 x 28 uint8     t10k-labels-idx1-ubyte.gz

(uncompressed copies without ``.gz`` are read too). They are looked for in ``root``,
``$FILTERBANK_DATA``, ``~/.cache/filterbank`` and system directories, each either directly or in
a sub-folder named after the data set (``fashion-mnist/``, ``mnist/``); see
:mod:`filterbank.data.datasets.download`. On Debian/Ubuntu, ``apt-get install
dataset-fashion-mnist`` puts Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``, which is
searched last.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from filterbank.data.datasets._base import ArrayImageDataset
from filterbank.data.datasets.download import download_dir, download_url, search_dirs
from filterbank.data.datasets.idx import read_idx_images, read_idx_labels

#: Directory of the embedded Fashion-MNIST sample (made by tools/make_embedded_sample.py).
EMBEDDED_DIR = Path(__file__).parent / "_embedded"
SAMPLE_PREFIX = "fashion-mnist-sample-"

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNIST(ArrayImageDataset):
    """The MNIST handwritten digits: 28x28 grayscale images in 10 classes.

    Item ``i`` is ``(image, label)``: ``image`` is the uint8 array ``data[i]`` with a channel
    axis, shape (28, 28, 1) (HWC, the layout transforms such as ``ToTensor`` expect), passed
    through ``transform``; ``label`` is an int passed through ``target_transform``. The whole
    split is also available as arrays: ``data`` (N, 28, 28) uint8 and ``targets`` (N,) int64.

    Args:
        root: directory to search first (and to download into). Default: search
            ``$FILTERBANK_DATA``, ``~/.cache/filterbank`` and the system directories.
        train: the 60,000 training images if True, else the 10,000 test images.
        download: fetch the files (SHA-256 checked) if they are not found.
        transform: function applied to each image.
        target_transform: function applied to each label.
        mirrors: base URLs to download from, tried in order (default: :attr:`mirrors`).
        progress: show a progress bar while downloading.

    Shape:
        ``data``: (N, 28, 28) uint8, ``targets``: (N,) int64, an item's image: (28, 28, 1).

    Example:
        >>> ds = MNIST(train=False, download=True)  # doctest: +SKIP
        >>> image, label = ds[0]  # doctest: +SKIP
        >>> image.shape, ds.classes[label]  # doctest: +SKIP
        ((28, 28, 1), '7 - seven')
    """

    #: Sub-folder searched in each data directory, and used for downloads.
    folder = "mnist"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    #: Base URLs tried in order (the original site is often unavailable; PyTorch's S3 mirror
    #: and Google's CVDF mirror serve byte-identical files).
    mirrors: Sequence[str] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    #: SHA-256 of the official .gz files.
    sha256 = {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    system_dirs: Sequence[str] = ()
    sizes = {True: 60000, False: 10000}

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 download: bool = False, transform: Callable | None = None,
                 target_transform: Callable | None = None,
                 mirrors: Sequence[str] | str | None = None, progress: bool = True):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        if isinstance(mirrors, str):
            mirrors = [mirrors]
        self._mirrors = list(self.mirrors if mirrors is None else mirrors)
        image_file, label_file = self._locate(download, progress)
        self.data, self.targets = self._read(image_file, label_file, self.sizes[self.train])

    # ------------------------------------------------------------------ files
    @classmethod
    def find(cls, root: str | os.PathLike | None = None, train: bool = True
             ) -> tuple[Path, Path] | None:
        """The (images, labels) files of a split, or None if they are not found anywhere."""
        images, labels = _FILES[bool(train)]
        for base in search_dirs(root, cls.system_dirs):
            for d in (base / cls.folder, base):
                pair = _existing(d, images), _existing(d, labels)
                if pair[0] is not None and pair[1] is not None:
                    return pair
        return None

    def _locate(self, download: bool, progress: bool) -> tuple[Path, Path]:
        found = self.find(self.root, self.train)
        if found is not None:
            return found
        name = type(self).__name__
        if not download:
            where = "\n".join(f"  {d}" for d in search_dirs(self.root, self.system_dirs))
            raise FileNotFoundError(
                f"{name}(train={self.train}): data files {', '.join(_FILES[self.train])} "
                f"(.gz or raw) not found in any of\n{where}\n(each also with a "
                f"'{self.folder}/' sub-folder). Pass download=True to fetch them{self._hint()}."
            )
        dest = download_dir(self.root) / self.folder
        paths = []
        for stem in _FILES[self.train]:
            fname = stem + ".gz"
            target = dest / fname
            if not target.exists():
                download_url([m.rstrip("/") + "/" + fname for m in self._mirrors], target,
                             sha256=self.sha256[fname], progress=progress)
            paths.append(target)
        return paths[0], paths[1]

    def _hint(self) -> str:
        return ""

    def _read(self, image_file: Path, label_file: Path, count: int | None
              ) -> tuple[np.ndarray, np.ndarray]:
        images = read_idx_images(image_file, count)
        labels = read_idx_labels(label_file, count, num_classes=len(self.classes))
        if images.shape[1:] != (28, 28) or len(labels) != len(images):
            raise ValueError(
                f"{type(self).__name__}: expected 28x28 images with one label each, got images "
                f"{images.shape} ({image_file}) and labels {labels.shape} ({label_file})"
            )
        return images, labels


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28x28 grayscale images of clothing in 10 classes.

    A drop-in replacement for :class:`MNIST` (same files, sizes and item format) that is much
    harder to classify. ``sample=True`` loads the small embedded copy (6,000 train / 1,000 test
    images, 600 / 100 per class) that ships with filterbank and needs no download.

    Args:
        root, train, download, transform, target_transform, mirrors, progress: as
            :class:`MNIST`.
        sample: use the embedded stratified sample instead of the full data set.

    Shape:
        ``data``: (N, 28, 28) uint8, ``targets``: (N,) int64, an item's image: (28, 28, 1).

    Example:
        >>> ds = FashionMNIST(train=False, sample=True)
        >>> len(ds), ds.classes[int(ds.targets[0])] in ds.classes
        (1000, True)
        >>> image, label = ds[0]
        >>> image.shape, image.dtype.name
        ((28, 28, 1), 'uint8')
    """

    folder = "fashion-mnist"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    mirrors: Sequence[str] = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    #: SHA-256 of the official .gz files (Debian's package recompresses them, so its .gz
    #: bytes differ while the decompressed IDX data are the same).
    sha256 = {
        "train-images-idx3-ubyte.gz":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }
    system_dirs: Sequence[str] = ("/usr/share/datasets/fashion-mnist",)

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 download: bool = False, transform: Callable | None = None,
                 target_transform: Callable | None = None,
                 mirrors: Sequence[str] | str | None = None, progress: bool = True,
                 sample: bool = False):
        self.sample = bool(sample)
        if not sample:
            super().__init__(root, train, download, transform, target_transform, mirrors,
                             progress)
            return
        self.root = EMBEDDED_DIR
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self._mirrors = []
        images, labels = sample_files(self.train)
        self.data, self.targets = self._read(images, labels, SAMPLE_SIZES[self.train])

    def _hint(self) -> str:
        return (", install Debian's dataset-fashion-mnist package, or use the embedded sample "
                "(FashionMNIST(..., sample=True))")

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        extra = ", sample=True" if self.sample else ""
        return f"{type(self).__name__}(split={split!r}, size={len(self)}{extra})"


class FashionMNISTSample(FashionMNIST):
    """The embedded Fashion-MNIST sample: ``FashionMNIST(train=train, sample=True)``.

    6,000 training and 1,000 test images, equally many per class, drawn with a fixed seed from
    the full data set by ``tools/make_embedded_sample.py`` (see ``_embedded/NOTICE`` for the
    licence). Always available, no download.

    Example:
        >>> ds = FashionMNISTSample(train=True)
        >>> len(ds), np.bincount(ds.targets).tolist() == [600] * 10
        (6000, True)
    """

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        super().__init__(train=train, transform=transform, target_transform=target_transform,
                         sample=True)


#: Number of images of the embedded sample per split (train=True/False).
SAMPLE_SIZES = {True: 6000, False: 1000}


def sample_files(train: bool) -> tuple[Path, Path]:
    """Paths of the embedded sample's (images, labels) IDX files for a split."""
    images, labels = _FILES[bool(train)]
    pair = (EMBEDDED_DIR / f"{SAMPLE_PREFIX}{images}.gz",
            EMBEDDED_DIR / f"{SAMPLE_PREFIX}{labels}.gz")
    for p in pair:
        if not p.is_file():
            raise FileNotFoundError(
                f"FashionMNIST(sample=True): embedded file {p} is missing (a broken install? "
                f"it is regenerated by tools/make_embedded_sample.py)"
            )
    return pair


def _existing(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        p = directory / name
        if p.is_file():
            return p
    return None
