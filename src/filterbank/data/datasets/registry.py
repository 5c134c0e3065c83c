"""Data sets by name, for the command line: ``get_dataset(name, train)`` and
``available_datasets()``. A name may also be the path of an image folder (see
:func:`~filterbank.data.datasets.image_folder.image_folder_splits`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from filterbank.data.datasets.cifar import CIFAR10, CIFAR100
from filterbank.data.datasets.fashion_mnist import (
    EMBEDDED_DIR,
    MNIST,
    SAMPLE_SIZES,
    FashionMNIST,
    FashionMNISTSample,
    sample_files,
)
from filterbank.data.datasets.image_folder import image_folder_dataset
from filterbank.data.datasets.shapes import StandardShapes


@dataclass(frozen=True)
class _Entry:
    cls: type
    description: str
    sample: bool = False
    downloadable: bool = False
    generated: bool = False  # drawn on the fly from a seed: no files


_REGISTRY: dict[str, _Entry] = {
    "fashion-mnist-sample": _Entry(FashionMNISTSample, "embedded stratified Fashion-MNIST "
                                   "sample, 10 classes of 28x28 grayscale clothing",
                                   sample=True),
    "fashion-mnist": _Entry(FashionMNIST, "Zalando's Fashion-MNIST, 10 classes of 28x28 "
                            "grayscale clothing", downloadable=True),
    "mnist": _Entry(MNIST, "MNIST handwritten digits, 10 classes of 28x28 grayscale",
                    downloadable=True),
    "cifar10": _Entry(CIFAR10, "CIFAR-10, 10 classes of 32x32 colour images",
                      downloadable=True),
    "cifar100": _Entry(CIFAR100, "CIFAR-100, 100 classes of 32x32 colour images",
                       downloadable=True),
    "shapes": _Entry(StandardShapes, "synthetic 64x64 images of 2-4 coloured shapes (5 "
                     "kinds) with boxes and masks, drawn on the fly: detection, "
                     "segmentation, regression, multi-label", generated=True),
}


def canonical_name(name: str) -> str:
    """The registry key ``name`` means (case, ``_`` for ``-`` and the usual spellings
    tolerated: ``FashionMNIST``, ``CIFAR-10``); unknown names come back normalised."""
    key = name.strip().lower().replace("_", "-")
    aliases = {"fashionmnist": "fashion-mnist", "fashionmnist-sample": "fashion-mnist-sample",
               "cifar-10": "cifar10", "cifar-100": "cifar100"}
    return aliases.get(key, key)


def is_image_folder_name(name: str | os.PathLike) -> bool:
    """Whether ``name`` means an image folder: an existing directory, unless it is a bare
    registered name (``mnist`` is the data set even if a folder ``./mnist`` exists; write
    ``./mnist`` for the folder)."""
    path = os.path.expanduser(os.fspath(name))
    if not os.path.isdir(path):
        return False
    return canonical_name(str(name)) not in _REGISTRY or any(
        sep in str(name) for sep in {"/", os.sep})


def get_dataset(name: str | os.PathLike, train: bool = True,
                root: str | os.PathLike | None = None, download: bool = False,
                transform: Callable | None = None, target_transform: Callable | None = None,
                **folder_options):
    """The split ``train`` of the data set called ``name`` (see :func:`available_datasets`),
    or of the image folder at path ``name``.

    Args:
        name: ``"fashion-mnist-sample"``, ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``,
            ``"cifar100"`` or ``"shapes"`` (generated; :class:`StandardShapes`) (case and
            ``-``/``_`` do not matter); or the path of an image folder
            (``train/``, ``val/``, ``test/`` class folders, or one class-folder tree), read by
            :func:`~filterbank.data.datasets.image_folder.image_folder_splits` (in memory; a
            tree without ``test/`` gives 20% of every class as the test split, seeded).
        train: training split if True, else the test split.
        root: directory searched first (and downloaded into, where downloading is supported).
        download: fetch missing files (checksums verified).
        transform, target_transform: per-item functions, as for the data set classes.
        **folder_options: for an image folder only: ``size``, ``mode``, ``val_split``,
            ``test_split``, ``seed`` of ``image_folder_splits``.

    Example:
        >>> ds = get_dataset("fashion-mnist-sample", train=False)
        >>> len(ds), ds.classes[0]
        (1000, 'T-shirt/top')
    """
    if is_image_folder_name(name):
        ds = image_folder_dataset(name, train=train, **folder_options)
        ds.transform, ds.target_transform = transform, target_transform
        return ds
    if folder_options:
        raise TypeError(f"get_dataset({name!r}): {', '.join(folder_options)} only apply to "
                        f"image folders")
    key = canonical_name(str(name))
    entry = _REGISTRY.get(key)
    if entry is None:
        raise ValueError(f"get_dataset: unknown data set {name!r}; available: "
                         f"{', '.join(_REGISTRY)}, or the path of an image folder "
                         f"(<folder>/<class>/<image>)")
    if entry.sample or entry.generated:
        return entry.cls(train=train, transform=transform, target_transform=target_transform)
    if download and not entry.downloadable:
        raise ValueError(f"get_dataset({name!r}): download=True is not supported for this data "
                         f"set; download and unpack {entry.cls.url} into a data directory")
    kwargs = {"download": download} if entry.downloadable else {}
    return entry.cls(root=root, train=train, transform=transform,
                     target_transform=target_transform, **kwargs)


def available_datasets(root: str | os.PathLike | None = None) -> list[dict]:
    """Every registered data set with where its files were found (None if not found) and its
    split sizes. Nothing is loaded.

    Returns:
        A list of dicts with keys ``name``, ``description``, ``found`` (directory or None),
        ``train_size``, ``test_size``, ``num_classes``, ``downloadable``.

    Example:
        >>> [d["name"] for d in available_datasets()][:2]
        ['fashion-mnist-sample', 'fashion-mnist']
    """
    out = []
    for name, e in _REGISTRY.items():
        if e.sample:
            try:
                sample_files(True), sample_files(False)
                found = str(EMBEDDED_DIR)
            except FileNotFoundError:
                found = None
            sizes = SAMPLE_SIZES
        elif e.generated:
            found, sizes = "(generated)", e.cls.sizes
        else:
            files = e.cls.find(root, True)
            found = str(files[0].parent) if files and e.cls.find(root, False) else None
            sizes = e.cls.sizes
        out.append({"name": name, "description": e.description, "found": found,
                    "train_size": sizes[True], "test_size": sizes[False],
                    "num_classes": len(e.cls.classes), "downloadable": e.downloadable})
    return out
