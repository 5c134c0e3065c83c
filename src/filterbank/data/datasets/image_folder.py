"""``ImageFolder``: a classification data set from a directory of images, one folder per class;
:func:`image_folder_splits`: a whole folder (``train/``, ``val/``, ``test/`` sub-folders, or one
class-folder tree to be split) as in-memory data sets, the way ``filterbank train --dataset
path/to/folder`` reads it.

Images are decoded with Pillow (the optional ``images`` extra). Channels: by default
(``mode="auto"``) grey images stay grey (1 channel) when *every* image of the folder is grey;
as soon as one is colour, all are converted to RGB (3 channels; grey ones repeat their channel,
the alpha channel of RGBA/LA images is dropped). Sizes: ``size=(h, w)`` resizes every image to
exactly ``h x w`` (Pillow's bilinear filter, which averages when shrinking, as torchvision's
``Resize`` on PIL images; the aspect ratio is not kept). Without ``size``, images of different
sizes are an error in :func:`image_folder_splits` (they cannot be stacked into one batch).

Hostile folders: an image declaring more than :data:`MAX_IMAGE_PIXELS` pixels (a "decompression
bomb": a few bytes that would decode to gigabytes) is refused from its header, before decoding,
with an error naming the file. Links: a class folder may itself be a link, but inside it a link
to a folder is not followed (listed in ``skipped_links``): one inside the class folder leads
where the walk goes anyway, one outside leads out of the data set, and ``ln -s .. cat/up`` or
``ln -s . cat/self`` would loop or label other classes' images as ``cat``. So each real folder
is read once, and a file reached twice through file links counts once. Links to files are
followed wherever they point.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from filterbank.data.dataset import Dataset
from filterbank.data.datasets._base import ArrayImageDataset
from filterbank.serialization import check_regular

#: File name endings recognised as images (compared case-insensitively).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
                  ".gif")
_MODES = {"auto", None, "RGB", "L", "RGBA"}
#: Pillow modes of single-channel (grey) images, with or without alpha.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: Sub-folder names recognised by :func:`image_folder_splits` (compared case-insensitively).
SPLIT_FOLDERS = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
                 "test": ("test", "testing")}
#: Largest image (width x height, in pixels) decoded; larger ones are refused from their
#: header. Pillow's own default threshold (1 GiB / 4 / 3: 0.25 GiB as RGB); assign to this
#: attribute to change it (Pillow itself refuses more than twice ``PIL.Image.MAX_IMAGE_PIXELS``).
MAX_IMAGE_PIXELS = 89_478_485
# warnings.catch_warnings swaps process-wide state; one opener at a time keeps it consistent
_OPEN_LOCK = threading.Lock()


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is an optional dependency
        raise ImportError("reading image files needs Pillow: pip install 'filterbank[images]'") \
            from None
    return Image


def _size_pair(size, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    s = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(s) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                              for v in s) or min(s) < 1:
        raise ValueError(f"{where}: size must be a positive int or a pair (h, w) of positive "
                         f"ints, got {size!r}")
    return int(s[0]), int(s[1])


def open_image(path: str | os.PathLike, where: str = ""):
    """Open an image with Pillow (header only, nothing decoded yet), refusing one of more
    than :data:`MAX_IMAGE_PIXELS` pixels.

    Args:
        path: the file.
        where: prefix of error messages (e.g. ``"ImageFolder: "``).

    Returns:
        the open ``PIL.Image.Image`` (use it as a context manager to close the file).

    Raises:
        ValueError: not a regular file (a FIFO would block), not an image Pillow recognises,
            an unreadable file, or too many pixels; the message names the file (and the
            limit).
    """
    image_mod = _pil()
    try:  # opening a FIFO would block, a device could be endless
        check_regular(path, ValueError)
    except (OSError, ValueError) as e:  # also a broken link, a vanished file
        raise ValueError(f"{where}cannot read image {path}: "
                         f"{str(e).removeprefix(f'{path}: ')}") from None
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Pillow warns between its limit and twice it, and raises above; both mean "bomb"
            warnings.simplefilter("error", image_mod.DecompressionBombWarning)
            img = image_mod.open(path)
    except (image_mod.DecompressionBombError, image_mod.DecompressionBombWarning) as e:
        raise ValueError(f"{where}image {path} is too large to decode: {e} (filterbank's limit "
                         f"is MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{where}cannot read image {path}: {type(e).__name__}: {e} (not an "
                         f"image Pillow can read; remove or replace it)") from None
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise ValueError(f"{where}image {path} is too large to decode: {w}x{h} = {w * h:,} "
                         f"pixels, above filterbank's limit MAX_IMAGE_PIXELS = "
                         f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or raise "
                         f"filterbank.data.datasets.image_folder.MAX_IMAGE_PIXELS)")
    return img


def load_image(path: str | os.PathLike, mode: str | None = "RGB",
               size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file into a uint8 HWC array.

    Args:
        path: the file.
        mode: Pillow mode to convert to (``"RGB"``, ``"L"``, ``"RGBA"``), or None to keep the
            file's own (it must decode to 8-bit data).
        size: ``(h, w)`` (or an int for a square) to resize to with Pillow's bilinear filter;
            None keeps the file's size.

    Returns:
        ``(H, W, C)`` uint8 array (C = 1 for grey).

    Raises:
        ValueError: the file cannot be decoded (not an image, truncated, corrupt, more than
            :data:`MAX_IMAGE_PIXELS` pixels); the message names the file.

    Example:
        >>> load_image("photos/cat/001.jpg", "L", size=(64, 64)).shape  # doctest: +SKIP
        (64, 64, 1)
    """
    image_mod = _pil()
    hw = _size_pair(size, "load_image")
    img = open_image(path)
    try:
        with img:
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            if hw is not None and img.size != (hw[1], hw[0]):
                img = img.resize((hw[1], hw[0]), image_mod.Resampling.BILINEAR)
            arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError, image_mod.DecompressionBombError) as e:
        raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e} (not an image "
                         f"Pillow can read, or a truncated/corrupt one; remove or replace "
                         f"it)") from None
    if arr.dtype != np.uint8:  # e.g. 16-bit PNG or mode 'I'/'F' kept with mode=None
        raise ValueError(f"image {path} decodes to {arr.dtype}, expected 8-bit data; pass "
                         f"mode='RGB' or 'L' to convert")
    return arr[..., None] if arr.ndim == 2 else arr


class ImageFolder(Dataset):
    """Images in ``root/<class name>/**/<file>``; class indices follow the sorted folder names.

    ::

        root/cat/001.png      -> ("cat", 0)
        root/dog/a/xyz.jpg    -> ("dog", 1)

    Images are decoded with Pillow when an item is read (not all held in memory; see
    :meth:`to_arrays` for that). Item ``i`` is ``(image, label)``: ``image`` a uint8 HWC NumPy
    array (H, W, C), converted to ``mode`` and resized to ``size``, passed through
    ``transform``; ``label`` an int through ``target_transform``.

    Args:
        root: the directory with one sub-folder per class.
        transform: function applied to each image array.
        target_transform: function applied to each label.
        mode: ``"auto"`` (default): ``"L"`` (1 channel) if every image is grey, else
            ``"RGB"`` (3 channels) for all; decided from the file headers when the data set is
            built, which also finds files that are no images. Or a Pillow mode to convert
            every image to: ``"RGB"``, ``"L"``, ``"RGBA"``; or None to keep each file's own.
        extensions: file name endings accepted as images (case-insensitive).
        is_valid_file: alternatively, a predicate on the path deciding what to load.
        size: ``(h, w)`` (or an int for a square) every image is resized to (bilinear, the
            aspect ratio not kept); None keeps each file's size.
        classes: the class names in index order, to share one mapping between the train,
            val and test folders; folders not listed are an error, listed ones may be missing.
            Default: the sorted sub-folder names.

    Attributes:
        classes: class (folder) names; ``class_to_idx``: name -> index;
        samples: list of ``(path, class index)``; ``targets``: int64 array of class indices;
        mode: the mode images are converted to (``"auto"`` resolved to ``"L"`` or ``"RGB"``).

        skipped_links: links to folders inside the class folders, not followed (see the
            module docstring).

    Raises:
        ValueError: with ``mode="auto"``, a file that is not a readable image or has more than
            :data:`MAX_IMAGE_PIXELS` pixels (named); a class folder that leads to the root or
            into another class folder (a link).

    Example:
        >>> ds = ImageFolder("photos/train", size=64)  # doctest: +SKIP
        >>> image, label = ds[0]; image.shape, ds.classes[label]  # doctest: +SKIP
        ((64, 64, 3), 'cat')
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None,
                 target_transform: Callable | None = None, mode: str | None = "auto",
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 is_valid_file: Callable[[str], bool] | None = None,
                 size: int | tuple[int, int] | None = None,
                 classes: Sequence[str] | None = None):
        if mode not in _MODES:
            raise ValueError(f"ImageFolder: mode must be one of 'auto', 'RGB', 'L', 'RGBA' or "
                             f"None, got {mode!r}")
        self.root = Path(root).expanduser()
        self.transform = transform
        self.target_transform = target_transform
        self.size = _size_pair(size, "ImageFolder")
        self.extensions = tuple(e.lower() for e in extensions)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: root {self.root} is not a directory")
        folders = sorted(e.name for e in os.scandir(self.root)
                         if e.is_dir() and not e.name.startswith("."))
        if classes is None:
            self.classes = folders
        else:
            self.classes = [str(c) for c in classes]
            unknown = [f for f in folders if f not in self.classes]
            if unknown:
                raise ValueError(f"ImageFolder: {self.root} has class folders {unknown} that "
                                 f"are not among the given classes {self.classes}")
        if not self.classes:
            raise FileNotFoundError(
                f"ImageFolder: no class folders in {self.root}; expected root/<class>/<image>")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        _check_class_folders(self.root, self.classes)
        valid = is_valid_file or (lambda p: p.lower().endswith(self.extensions))
        self.samples: list[tuple[str, int]] = []
        self.skipped_links: list[str] = []
        empty = []
        for c in self.classes:
            n0 = len(self.samples)
            files, skipped = _walk_files(self.root / c)
            self.skipped_links += skipped
            self.samples += [(path, self.class_to_idx[c]) for path in files if valid(path)]
            if len(self.samples) == n0:
                empty.append(c)
        if not self.samples:
            what = "the given is_valid_file" if is_valid_file else \
                f"extensions {', '.join(self.extensions)}"
            raise FileNotFoundError(f"ImageFolder: no image files in {self.root} "
                                    f"(class folders {self.classes}, {what})")
        #: Class folders without any image (kept as classes, so indices stay stable).
        self.empty_classes = empty
        self.targets = np.array([t for _, t in self.samples], dtype=np.int64)
        self._headers: list[tuple[str, tuple[int, int]]] | None = None
        if mode == "auto":
            grey = all(m in GREY_MODES for m, _ in self.headers())
            mode = "L" if grey else "RGB"
        self.mode = mode

    def headers(self) -> list[tuple[str, tuple[int, int]]]:
        """``(Pillow mode, (height, width))`` of every file, read from the headers only (no
        decoding); cached.

        Raises:
            ValueError: a file is not an image Pillow recognises (the message names it).
        """
        if self._headers is None:
            out = []
            for path, _ in self.samples:
                with open_image(path, "ImageFolder: ") as img:
                    out.append((img.mode, (img.size[1], img.size[0])))
            self._headers = out
        return self._headers

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: str) -> np.ndarray:
        """Decode one image file into a uint8 HWC array in ``self.mode`` and ``self.size``."""
        try:
            return load_image(path, self.mode, self.size)
        except ValueError as e:
            raise ValueError(f"ImageFolder: {e}") from None

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        image = self.load(path)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def to_arrays(self, indices: Sequence[int] | None = None, train: bool = True
                  ) -> ImageFolderArrays:
        """Decode the images (all, or those at ``indices``) into one in-memory data set.

        Every image must have the same size after ``size`` (else ValueError naming two files
        of different sizes). Memory: ``N * H * W * C`` bytes. The result is array-backed like
        MNIST (``data``, ``targets``, ``classes``, ``arrays()``, batched loading).
        """
        idx = range(len(self)) if indices is None else [int(i) for i in indices]
        images, paths = [], []
        for i in idx:
            path = self.samples[i][0]
            image = self.load(path)
            if images and image.shape != images[0].shape:
                raise ValueError(
                    f"ImageFolder: images of different sizes cannot be stacked: {paths[0]} is "
                    f"{_hw(images[0])} but {path} is {_hw(image)}; pass size=(h, w) to resize "
                    f"them all (command line: --image-size S)")
            images.append(image)
            paths.append(path)
        h, w = self.size or (0, 0)
        c = {"L": 1, "RGB": 3, "RGBA": 4}.get(self.mode, 3)
        data = np.stack(images) if images else np.zeros((0, h, w, c), np.uint8)
        targets = self.targets[np.asarray(list(idx), dtype=np.int64)]
        return ImageFolderArrays(data, targets, self.classes, paths, root=self.root,
                                 train=train)

    def __repr__(self) -> str:
        size = f", size={self.size}" if self.size is not None else ""
        return (f"ImageFolder(root={str(self.root)!r}, size={len(self)}, "
                f"classes={len(self.classes)}, mode={self.mode!r}{size})")


def _hw(image: np.ndarray) -> str:
    return f"{image.shape[0]}x{image.shape[1]} with {image.shape[2]} channel(s)"


class ImageFolderArrays(ArrayImageDataset):
    """Decoded images of an image folder held in memory, like MNIST: ``data`` (N, H, W, C)
    uint8 and ``targets`` (N,) int64, plus ``classes``, ``paths`` (the file of each image) and
    ``root``. Made by :meth:`ImageFolder.to_arrays` and :func:`image_folder_splits`.

    Shape:
        ``data``: (N, H, W, C) uint8 (C = 1 grey, 3 RGB), ``targets``: (N,) int64; an item's
        image (H, W, C).
    """

    def __init__(self, data: np.ndarray, targets: np.ndarray, classes: Sequence[str],
                 paths: Sequence[str], root: str | os.PathLike | None = None,
                 train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        if data.ndim != 4 or data.dtype != np.uint8 or len(targets) != len(data):
            raise ValueError(f"ImageFolderArrays: expected uint8 images (N, H, W, C) and N "
                             f"labels, got {data.dtype} {data.shape} and {len(targets)} labels")
        self.data, self.targets = data, np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.paths = list(paths)
        self.root = root
        self.train = bool(train)
        self.transform, self.target_transform = transform, target_transform

    def subset(self, indices: Sequence[int], train: bool | None = None) -> ImageFolderArrays:
        """The images at ``indices`` as a new data set (arrays copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageFolderArrays(self.data[idx], self.targets[idx], self.classes,
                                 [self.paths[i] for i in idx], self.root,
                                 self.train if train is None else train, self.transform,
                                 self.target_transform)

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (f"ImageFolderArrays(root={str(self.root)!r}, split={split!r}, size={len(self)}, "
                f"image={tuple(self.data.shape[1:])}, classes={len(self.classes)})")


def _find_split_dirs(root: Path) -> dict[str, Path | None]:
    subdirs = {e.name.lower(): Path(e.path) for e in os.scandir(root)
               if e.is_dir() and not e.name.startswith(".")}
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        found[split] = next((subdirs[n] for n in names if n in subdirs), None)
    return found


def _stratified(targets: np.ndarray, fraction: float, rng: np.random.Generator):
    """Indices split off per class (``round(fraction * n_class)`` of each), and the rest."""
    take, keep = [], []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        k = int(round(fraction * len(idx)))
        take.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(take)), np.sort(np.concatenate(keep))


def image_folder_splits(path: str | os.PathLike,
                        size: int | tuple[int, int] | str | None = None,
                        mode: str = "auto", val_split: float = 0.0, test_split: float = 0.2,
                        seed: int = 0, extensions: Sequence[str] = IMG_EXTENSIONS) -> dict:
    """Read an image folder into train / val / test data sets (in memory, array-backed).

    Layouts::

        path/train/<class>/<image>  path/val/<class>/...  path/test/<class>/...
        path/<class>/<image>                  (one tree: the splits are taken from it)

    (``valid``/``validation`` and ``training``/``testing`` are accepted too, in any case.) The
    classes are the train folder's, sorted; val and test folders must use the same names (a
    class may be missing there). A split without its folder is carved out of the training
    images when its fraction is positive: ``round(fraction * n)`` images of every class with
    ``n`` images, chosen by ``seed`` (test first, then val from the rest); otherwise it is
    None. The channels follow ``mode`` over *all* splits (``"auto"``: grey only if every image
    is grey, see the module docstring).

    Args:
        path: the folder.
        size: ``(h, w)`` (or an int for a square) every image is resized to, bilinearly;
            ``"auto"``: the most common size among the files (ties: the first found); None
            requires all images to have one size.
        mode: ``"auto"``, ``"RGB"``, ``"L"`` or ``"RGBA"``, as :class:`ImageFolder`.
        val_split: fraction of the training images held out for validation when there is no
            val folder (default 0: no val set).
        test_split: fraction held out for testing when there is no test folder (default 0.2).
        seed: seed of those hold-outs.
        extensions: file name endings accepted as images.

    Returns:
        dict with ``train``, ``val``, ``test`` (:class:`ImageFolderArrays`, or None for val/test
        when absent), ``classes`` (list of names), ``mode`` (``"L"``/``"RGB"``/...), ``size``
        ((h, w)), ``layout`` (``"splits"`` or ``"classes"``), ``carved`` (names of the splits
        taken from the training images), ``root`` and ``file_sizes`` (how many different
        sizes the files have; None when ``size`` was given, as then they are not read).

    Raises:
        FileNotFoundError: ``path`` is not a folder or holds no class folders / images.
        ValueError: images of different sizes without ``size`` (the message names two files
            and the sizes), an unreadable image (named), a val/test class not in train.

    Example:
        >>> splits = image_folder_splits("my_photos", size=(64, 64))  # doctest: +SKIP
        >>> splits["train"].data.shape, splits["classes"]  # doctest: +SKIP
        ((240, 64, 64, 3), ['cat', 'dog'])
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image_folder_splits: {root} is not a directory")
    for name, frac in (("val_split", val_split), ("test_split", test_split)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"image_folder_splits: {name} must be in [0, 1), got {frac}")
    if val_split + test_split >= 1.0:
        raise ValueError(f"image_folder_splits: val_split + test_split must be below 1, got "
                         f"{val_split} + {test_split}")
    auto_size = isinstance(size, str) and size == "auto"
    hw = None if auto_size else _size_pair(size, "image_folder_splits")
    dirs = _find_split_dirs(root)
    layout = "splits" if dirs["train"] is not None else "classes"
    if layout == "classes":
        dirs = {"train": root, "val": None, "test": None}
    folders = {"train": ImageFolder(dirs["train"], mode=mode, extensions=extensions, size=hw)}
    for split in ("val", "test"):
        if dirs[split] is not None:
            folders[split] = ImageFolder(dirs[split], mode=mode, extensions=extensions, size=hw,
                                         classes=folders["train"].classes)
    classes = folders["train"].classes
    if mode == "auto":
        joint = "L" if all(f.mode == "L" for f in folders.values()) else "RGB"
        for f in folders.values():
            f.mode = joint
        mode = joint
    sizes: Counter = Counter()
    if hw is None:
        example = {}
        for f in folders.values():
            for (_, s), (p, _) in zip(f.headers(), f.samples):
                sizes[s] += 1
                example.setdefault(s, p)
        if auto_size:
            hw = sizes.most_common(1)[0][0]
            for f in folders.values():
                f.size = hw
        elif len(sizes) > 1:
            common = ", ".join(f"{h}x{w} ({n} image{'s' * (n > 1)}, e.g. {example[(h, w)]})"
                               for (h, w), n in sizes.most_common(3))
            more = f" and {len(sizes) - 3} more" if len(sizes) > 3 else ""
            raise ValueError(
                f"image_folder_splits: the images in {root} have {len(sizes)} different sizes "
                f"(height x width: {common}{more}); pass size=(h, w) to resize them all "
                f"(command line: --image-size S), or resize the files")
    out = {"train": folders["train"].to_arrays(train=True), "val": None, "test": None}
    for split in ("val", "test"):
        if split in folders:
            out[split] = folders[split].to_arrays(train=False)
    carved = []
    rng = np.random.default_rng(seed)
    for split, frac in (("test", test_split), ("val", val_split)):
        if out[split] is None and frac > 0:
            take, keep = _stratified(out["train"].targets, frac, rng)
            out[split] = out["train"].subset(take, train=False)
            out["train"] = out["train"].subset(keep, train=True)
            carved.append(split)
    out.update(classes=list(classes), mode=mode, size=tuple(out["train"].data.shape[1:3]),
               layout=layout, carved=carved, root=str(root), file_sizes=len(sizes) or None)
    return out


def image_folder_dataset(path: str | os.PathLike, train: bool = True, **options):
    """One split of :func:`image_folder_splits` (``train`` or ``test``), the last result
    being reused when the folder has not changed (so that asking for both splits in turn
    decodes the images once). ``options`` are :func:`image_folder_splits`'s."""
    root = Path(path).expanduser().resolve()
    key = (str(root), tuple(sorted(options.items(), key=lambda kv: kv[0])), _fingerprint(root))
    if _last_splits.get("key") != key:
        _last_splits.clear()
        _last_splits.update(key=key, splits=image_folder_splits(root, **options))
    split = _last_splits["splits"]["train" if train else "test"]
    if split is None:
        raise ValueError(f"image folder {root} has no test split (no test/ folder and "
                         f"test_split=0)")
    return copy.copy(split)


_last_splits: dict = {}


def _fingerprint(root: Path) -> int:
    """Hash of every file's path, size and modification time under ``root``."""
    items = []
    for path in _walk_files(root)[0]:
        try:
            st = os.stat(path)
        except OSError:
            continue
        items.append((path, st.st_size, st.st_mtime_ns))
    return hash(tuple(items))


def _walk_files(top: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(files, skipped folder links)`` under ``top``, in ``os.walk`` order (a folder's files
    sorted, then its sub-folders sorted, depth first).

    Links to folders below ``top`` are not followed: one inside ``top`` leads to a folder the
    walk reaches anyway (following it would count its files twice, or loop), one outside leads
    out of the data set. So each real folder is scanned once and the walk always ends. Every
    other entry counts as a file (a broken link too, so that reading it names it); a file
    reached again through a file link (same real path) is listed once."""
    found: list[tuple[str, str | None]] = []  # (path, real path if it is a file link)
    skipped: list[str] = []
    stack = [os.fspath(top)]
    while stack:
        path = stack.pop()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:  # an unreadable folder: os.walk skips it too
            continue
        subdirs = []
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows a link: a link to a folder is a folder here
            except OSError:
                is_dir = False
            if is_dir:
                (skipped if e.is_symlink() else subdirs).append(e.path)
            else:
                found.append((e.path, os.path.realpath(e.path) if e.is_symlink() else None))
        stack.extend(reversed(subdirs))
    # a file link to a file listed under its own name (or by an earlier link) is dropped
    seen = {os.path.realpath(p) for p, link in found if link is None}
    files = []
    for p, link in found:
        if link is not None:
            if link in seen:
                continue
            seen.add(link)
        files.append(p)
    return files, skipped


def _check_class_folders(root: Path, classes: Sequence[str]) -> None:
    """Refuse class folders (links, typically) that lead to the root, above it, or into
    another class folder: their images would be read under two labels."""
    root_real = os.path.realpath(root)
    real = {c: os.path.realpath(root / c) for c in classes if (root / c).is_dir()}
    for c, r in real.items():
        if _inside(root_real, r):
            raise ValueError(f"ImageFolder: class folder {root / c} leads to {r}, which is or "
                             f"contains the root {root} itself (a link loop)")
    for c in sorted(real, key=lambda c: not (root / c).is_symlink()):  # name the link
        r = real[c]
        clash = next((d for d, q in real.items() if d != c and _inside(r, q)), None)
        if clash is not None:
            raise ValueError(f"ImageFolder: class folder {root / c} leads to {r}, inside the "
                             f"folder of class {clash!r} ({real[clash]}): its images would "
                             f"have two labels")


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)
