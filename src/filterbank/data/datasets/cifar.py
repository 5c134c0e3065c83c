"""CIFAR-10 and CIFAR-100, binary version (``cifar-10-binary.tar.gz``, ``cifar-100-binary.tar.gz``
from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked).

Record layout (no header; files are concatenated records)::

    CIFAR-10:   <1 byte label>                    <3072 bytes pixels>   = 3073 bytes
    CIFAR-100:  <1 byte coarse> <1 byte fine>     <3072 bytes pixels>   = 3074 bytes

The 3072 pixel bytes are the red, then green, then blue 32x32 planes, each row-major. Files:
``cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}`` and
``cifar-100-binary/{train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt}``,
searched like the MNIST files (``root``, ``$FILTERBANK_DATA``, ``~/.cache/filterbank``; in the
sub-folder or directly).

``download=True`` fetches the official tarball into the download directory (``root``, else
``$FILTERBANK_DATA``, else the cache), checks its SHA-256 and the MD5 that the official page
publishes, and unpacks it safely: every member must be a regular file or folder under the
expected folder (no absolute paths, no ``..``, no links or devices), extracted with tarfile's
``"data"`` filter into a temporary folder and moved into place file by file, so that a failed
or refused download leaves nothing behind. No pickle: only the binary version is read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from filterbank.data.datasets._base import ArrayImageDataset
from filterbank.data.datasets.download import download_dir, download_url, search_dirs
from filterbank.serialization import check_fits_in_memory, check_regular

_PIXELS = 3 * 32 * 32

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain "
    "mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain "
    "plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank "
    "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree "
    "wolf woman worm"
).split()
CIFAR100_COARSE_CLASSES = (
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables "
    "household_electrical_devices household_furniture insects large_carnivores "
    "large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores "
    "medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 "
    "vehicles_2"
).split()


def read_cifar_binary(paths: Sequence[str | os.PathLike], label_bytes: int = 1,
                      num_classes: Sequence[int] = (10,)) -> tuple[np.ndarray, np.ndarray]:
    """Read and concatenate CIFAR binary files.

    Args:
        paths: the files, in order.
        label_bytes: label bytes before each image (1 for CIFAR-10, 2 for CIFAR-100: coarse,
            fine).
        num_classes: for each label byte, the number of classes (labels are checked against
            it).

    Returns:
        ``(images, labels)``: images (N, 32, 32, 3) uint8 (HWC), labels (N, label_bytes) int64.

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: a file is not a regular file, is empty, its length is not a whole number
            of records, or a label is out of range; the message names the file.
    """
    record = label_bytes + _PIXELS
    images, labels = [], []
    for path in paths:
        st = check_regular(path, ValueError)  # before reading: no FIFO, no /dev/zero
        if st.st_size == 0 or st.st_size % record:
            raise ValueError(
                f"CIFAR file {path}: length {st.st_size} bytes is not a positive multiple of "
                f"the {record}-byte record ({label_bytes} label byte(s) + {_PIXELS} pixels); "
                f"truncated or not a CIFAR binary file"
            )
        check_fits_in_memory(st.st_size, f"CIFAR file {path}: holds")
        with open(path, "rb") as f:
            raw = np.frombuffer(f.read(st.st_size), dtype=np.uint8)
        if raw.size != st.st_size:
            raise ValueError(f"CIFAR file {path}: shrank from {st.st_size} to {raw.size} bytes "
                             f"while being read")
        rows = raw.reshape(-1, record)
        lab = rows[:, :label_bytes].astype(np.int64)
        for j, k in enumerate(num_classes):
            bad = lab[:, j] >= k
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"CIFAR file {path}: record {i} has label {lab[i, j]} in label byte {j}, "
                    f"expected a value in [0, {k})"
                )
        # planes R, G, B of 32x32 -> HWC
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(lab)
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


class CIFAR10(ArrayImageDataset):
    """CIFAR-10: 32x32 colour images in 10 classes (50,000 train, 10,000 test).

    Item ``i`` is ``(image, label)``: ``image`` is ``data[i]``, a (32, 32, 3) uint8 HWC array,
    passed through ``transform``; ``label`` an int through ``target_transform``.
    ``download=True`` fetches ``cifar-10-binary.tar.gz`` (162 MiB) when the files are missing,
    verified against its pinned SHA-256 and published MD5 (see the module docstring).

    Args:
        root: directory to search first (then ``$FILTERBANK_DATA``, ``~/.cache/filterbank``),
            and to download into.
        train: the five training batches if True, else the test batch.
        transform: function applied to each image.
        target_transform: function applied to each label.
        download: fetch, verify and unpack the archive if the files are not found.
        check_size: require the official number of images (50,000 / 10,000).
        mirrors: base URLs the archive is downloaded from, tried in order (default:
            :attr:`mirrors`, the official site).
        progress: show a progress bar while downloading.

    Shape:
        ``data``: (N, 32, 32, 3) uint8, ``targets``: (N,) int64.

    Example:
        >>> ds = CIFAR10("~/data", train=False)  # doctest: +SKIP
        >>> ds[0][0].shape, ds.classes[ds[0][1]]  # doctest: +SKIP
        ((32, 32, 3), 'cat')
    """

    folder = "cifar-10-batches-bin"
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_files = ["test_batch.bin"]
    meta_file = "batches.meta.txt"
    classes = CIFAR10_CLASSES
    sizes = {True: 50000, False: 10000}
    #: Name used on the command line (``filterbank datasets --download cifar10``).
    cli_name = "cifar10"
    #: The archive and where it is downloaded from (base URLs, tried in order).
    archive = "cifar-10-binary.tar.gz"
    mirrors: Sequence[str] = ("https://www.cs.toronto.edu/~kriz/",)
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    #: SHA-256 of the official archive (170,052,171 bytes) as pinned in TensorFlow Datasets'
    #: registry (tensorflow_datasets/url_checksums/cifar10.txt), which downloads the same URL;
    #: the official page publishes only the MD5 below, which is checked as well.
    archive_sha256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    archive_md5 = "c32a1d4ab5d03f1284b67883e8d87530"

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 download: bool = False, check_size: bool = True,
                 mirrors: Sequence[str] | str | None = None, progress: bool = True):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        files = self.find(root, train)
        if files is None and download:
            self.download(root, mirrors=mirrors, progress=progress)
            files = self.find(root, train)
        if files is None:
            where = "\n".join(f"  {d}" for d in search_dirs(root))
            raise FileNotFoundError(
                f"{type(self).__name__}(train={self.train}): files "
                f"{', '.join(self._names(train))} not found in any of\n{where}\n(each also with "
                f"a '{self.folder}/' sub-folder). To fetch them (SHA-256 checked): "
                f"{type(self).__name__}(..., download=True) in Python, or on the command line "
                f"'filterbank datasets --download {self.cli_name}' (add --data-root DIR to "
                f"choose the folder). Or download and unpack {self.url} into one of the "
                f"folders above yourself."
            )
        self.files = files
        self._load(files)
        expected = self.sizes[self.train]
        if check_size and len(self.data) != expected:
            raise ValueError(
                f"{type(self).__name__}(train={self.train}): expected {expected} images, got "
                f"{len(self.data)} in {', '.join(str(f) for f in files)}"
            )
        self._read_class_names(files[0].parent)

    def _load(self, files: list[Path]) -> None:
        self.data, labels = read_cifar_binary(files, 1, (len(CIFAR10_CLASSES),))
        self.targets = labels[:, 0]

    def _read_class_names(self, directory: Path) -> None:
        meta = directory / self.meta_file
        if meta.is_file():
            names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
            if len(names) == len(self.classes):
                self.classes = names

    @classmethod
    def _names(cls, train: bool) -> list[str]:
        return cls.train_files if train else cls.test_files

    @classmethod
    def download(cls, root: str | os.PathLike | None = None,
                 mirrors: Sequence[str] | str | None = None, progress: bool = True) -> Path:
        """Download, verify and unpack the archive; return the folder with the files.

        Goes to ``download_dir(root)/<folder>`` (``root``, else ``$FILTERBANK_DATA``, else
        ``~/.cache/filterbank``). An archive already there is reused if its checksums match;
        a downloaded one is deleted once unpacked.

        Raises:
            DownloadError: every mirror failed or served a file with the wrong SHA-256 (no
                file is left behind).
            ValueError: the MD5 does not match, or the archive holds a member that is not a
                plain file or folder under ``<folder>/`` (absolute path, ``..``, link,
                device); nothing is extracted and the archive is deleted.
        """
        if isinstance(mirrors, str):
            mirrors = [mirrors]
        mirrors = list(cls.mirrors if mirrors is None else mirrors)
        base = download_dir(root)
        base.mkdir(parents=True, exist_ok=True)
        archive = base / cls.archive
        fetched = False
        if not (archive.is_file() and _digest(archive, "sha256") == cls.archive_sha256):
            download_url([m.rstrip("/") + "/" + cls.archive for m in mirrors], archive,
                         sha256=cls.archive_sha256, progress=progress)
            fetched = True
        try:
            md5 = _digest(archive, "md5")
            if md5 != cls.archive_md5:
                raise ValueError(f"{cls.__name__}.download: {archive} has MD5 {md5}, expected "
                                 f"the published {cls.archive_md5}; deleted it")
            out = _safe_extract(archive, base, cls.folder)
        except BaseException:
            archive.unlink(missing_ok=True)
            raise
        if fetched:
            archive.unlink(missing_ok=True)
        return out

    @classmethod
    def find(cls, root: str | os.PathLike | None = None, train: bool = True
             ) -> list[Path] | None:
        """The binary files of a split, or None if they are not found anywhere."""
        for base in search_dirs(root):
            for d in (base / cls.folder, base):
                paths = [d / n for n in cls._names(train)]
                if all(p.is_file() for p in paths):
                    return paths
        return None


class CIFAR100(CIFAR10):
    """CIFAR-100: 32x32 colour images in 100 fine classes grouped in 20 coarse ones.

    As :class:`CIFAR10`; ``targets`` are the fine labels (as torchvision), ``coarse_targets``
    the coarse ones, named by ``coarse_classes``. Files: ``cifar-100-binary/{train,test}.bin``.

    Shape:
        ``data``: (N, 32, 32, 3) uint8, ``targets`` and ``coarse_targets``: (N,) int64.
    """

    folder = "cifar-100-binary"
    train_files = ["train.bin"]
    test_files = ["test.bin"]
    meta_file = "fine_label_names.txt"
    classes = CIFAR100_CLASSES
    coarse_classes = CIFAR100_COARSE_CLASSES
    cli_name = "cifar100"
    archive = "cifar-100-binary.tar.gz"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    #: SHA-256 of the official archive (168,513,733 bytes) from TensorFlow Datasets' registry
    #: (tensorflow_datasets/url_checksums/cifar100.txt); the MD5 is the official page's.
    archive_sha256 = "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"
    archive_md5 = "03b5dce01913d631647c71ecec9e9cb8"

    def _load(self, files: list[Path]) -> None:
        self.data, labels = read_cifar_binary(
            files, 2, (len(CIFAR100_COARSE_CLASSES), len(CIFAR100_CLASSES)))
        self.coarse_targets, self.targets = labels[:, 0], labels[:, 1]

    def _read_class_names(self, directory: Path) -> None:
        super()._read_class_names(directory)
        meta = directory / "coarse_label_names.txt"
        if meta.is_file():
            names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
            if len(names) == len(self.coarse_classes):
                self.coarse_classes = names


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_extract(archive: Path, base: Path, folder: str) -> Path:
    """Unpack the tar ``archive`` into ``base/folder`` after checking every member.

    Members must be regular files or folders whose relative path starts with ``folder``; they
    are extracted (tarfile's ``"data"`` filter as a second guard) into a temporary folder in
    ``base`` and then moved into place one file at a time with ``os.replace``."""
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            parts = PurePosixPath(m.name).parts
            if (m.name.startswith(("/", "\\")) or ".." in parts or not parts
                    or parts[0] != folder or not (m.isfile() or m.isdir())):
                kind = "link" if m.issym() or m.islnk() else \
                    "file" if m.isfile() else "folder" if m.isdir() else "special file"
                raise ValueError(f"{archive}: refusing to extract {kind} {m.name!r}: only plain "
                                 f"files and folders under '{folder}/' are expected")
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".part", dir=base))
        try:
            # the "data" filter exists from Python 3.11.4; the checks above suffice without it
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **extra)
            dest = base / folder
            dest.mkdir(exist_ok=True)
            for src in sorted((tmp / folder).rglob("*")):
                target = dest / src.relative_to(tmp / folder)
                if src.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
