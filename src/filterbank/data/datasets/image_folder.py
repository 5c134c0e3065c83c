"""``ImageFolder``: a classification data set from a directory of images, one folder per class."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from filterbank.data.dataset import Dataset

#: File name endings recognised as images (compared case-insensitively).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
                  ".gif")
_MODES = {None, "RGB", "L", "RGBA"}


class ImageFolder(Dataset):
    """Images in ``root/<class name>/**/<file>``; class indices follow the sorted folder names.

    ::

        root/cat/001.png      -> ("cat", 0)
        root/dog/a/xyz.jpg    -> ("dog", 1)

    Images are decoded with Pillow when an item is read (not all held in memory). Item ``i`` is
    ``(image, label)``: ``image`` a uint8 HWC NumPy array (H, W, C), converted to ``mode``,
    passed through ``transform``; ``label`` an int through ``target_transform``.

    Args:
        root: the directory with one sub-folder per class.
        transform: function applied to each image array.
        target_transform: function applied to each label.
        mode: Pillow mode to convert every image to: ``"RGB"`` (3 channels, default), ``"L"``
            (grayscale, 1 channel), ``"RGBA"``, or None to keep each file's own mode.
        extensions: file name endings accepted as images (case-insensitive).
        is_valid_file: alternatively, a predicate on the path deciding what to load.

    Attributes:
        classes: sorted class (folder) names; ``class_to_idx``: name -> index;
        samples: list of ``(path, class index)``; ``targets``: int64 array of class indices.

    Example:
        >>> ds = ImageFolder("photos/train", mode="L")  # doctest: +SKIP
        >>> image, label = ds[0]; image.shape, ds.classes[label]  # doctest: +SKIP
        ((64, 64, 1), 'cat')
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None,
                 target_transform: Callable | None = None, mode: str | None = "RGB",
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 is_valid_file: Callable[[str], bool] | None = None):
        if mode not in _MODES:
            raise ValueError(f"ImageFolder: mode must be one of 'RGB', 'L', 'RGBA' or None, "
                             f"got {mode!r}")
        self.root = Path(root).expanduser()
        self.transform = transform
        self.target_transform = target_transform
        self.mode = mode
        self.extensions = tuple(e.lower() for e in extensions)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: root {self.root} is not a directory")
        self.classes = sorted(e.name for e in os.scandir(self.root)
                              if e.is_dir() and not e.name.startswith("."))
        if not self.classes:
            raise FileNotFoundError(
                f"ImageFolder: no class folders in {self.root}; expected root/<class>/<image>")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        valid = is_valid_file or (lambda p: p.lower().endswith(self.extensions))
        self.samples: list[tuple[str, int]] = []
        empty = []
        for c in self.classes:
            n0 = len(self.samples)
            for dirpath, dirnames, filenames in os.walk(self.root / c, followlinks=True):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if valid(path):
                        self.samples.append((path, self.class_to_idx[c]))
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

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: str) -> np.ndarray:
        """Decode one image file into a uint8 HWC array in ``self.mode``."""
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is an optional dependency
            raise ImportError("ImageFolder needs Pillow: pip install 'filterbank[images]'") \
                from None
        try:
            with Image.open(path) as img:
                if self.mode is not None and img.mode != self.mode:
                    img = img.convert(self.mode)
                arr = np.asarray(img)
        except OSError as e:
            raise ValueError(f"ImageFolder: cannot read image {path}: {e}") from None
        if arr.dtype != np.uint8:  # e.g. 16-bit PNG or mode 'I'/'F' kept with mode=None
            raise ValueError(f"ImageFolder: image {path} decodes to {arr.dtype}, expected "
                             f"8-bit data; pass mode='RGB' or 'L' to convert")
        return arr[..., None] if arr.ndim == 2 else arr

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        image = self.load(path)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return (f"ImageFolder(root={str(self.root)!r}, size={len(self)}, "
                f"classes={len(self.classes)}, mode={self.mode!r})")
