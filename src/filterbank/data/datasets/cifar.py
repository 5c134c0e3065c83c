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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from filterbank.data.datasets._base import ArrayImageDataset
from filterbank.data.datasets.download import search_dirs

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
        ValueError: a file is empty, its length is not a whole number of records, or a label is
            out of range; the message names the file.
    """
    record = label_bytes + _PIXELS
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise ValueError(
                f"CIFAR file {path}: length {raw.size} bytes is not a positive multiple of the "
                f"{record}-byte record ({label_bytes} label byte(s) + {_PIXELS} pixels); "
                f"truncated or not a CIFAR binary file"
            )
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
    passed through ``transform``; ``label`` an int through ``target_transform``. No download:
    fetch and unpack ``cifar-10-binary.tar.gz`` yourself.

    Args:
        root: directory to search first (then ``$FILTERBANK_DATA``, ``~/.cache/filterbank``).
        train: the five training batches if True, else the test batch.
        transform: function applied to each image.
        target_transform: function applied to each label.
        check_size: require the official number of images (50,000 / 10,000).

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
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 check_size: bool = True):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        files = self.find(root, train)
        if files is None:
            where = "\n".join(f"  {d}" for d in search_dirs(root))
            raise FileNotFoundError(
                f"{type(self).__name__}(train={self.train}): files "
                f"{', '.join(self._names(train))} not found in any of\n{where}\n(each also with "
                f"a '{self.folder}/' sub-folder). Download and unpack {self.url}."
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
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"

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
