"""Data sets by name, for the command line: ``get_dataset(name, train)`` and
``available_datasets()``."""

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


@dataclass(frozen=True)
class _Entry:
    cls: type
    description: str
    sample: bool = False
    downloadable: bool = False


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
}


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    aliases = {"fashionmnist": "fashion-mnist", "fashionmnist-sample": "fashion-mnist-sample",
               "cifar-10": "cifar10", "cifar-100": "cifar100"}
    return aliases.get(key, key)


def get_dataset(name: str, train: bool = True, root: str | os.PathLike | None = None,
                download: bool = False, transform: Callable | None = None,
                target_transform: Callable | None = None):
    """The split ``train`` of the data set called ``name`` (see :func:`available_datasets`).

    Args:
        name: ``"fashion-mnist-sample"``, ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"`` or
            ``"cifar100"`` (case and ``-``/``_`` do not matter).
        train: training split if True, else the test split.
        root: directory searched first (and downloaded into, where downloading is supported).
        download: fetch missing files (checksums verified).
        transform, target_transform: per-item functions, as for the data set classes.

    Example:
        >>> ds = get_dataset("fashion-mnist-sample", train=False)
        >>> len(ds), ds.classes[0]
        (1000, 'T-shirt/top')
    """
    key = _canonical(name)
    entry = _REGISTRY.get(key)
    if entry is None:
        raise ValueError(f"get_dataset: unknown data set {name!r}; available: "
                         f"{', '.join(_REGISTRY)}")
    if entry.sample:
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
        else:
            files = e.cls.find(root, True)
            found = str(files[0].parent) if files and e.cls.find(root, False) else None
            sizes = e.cls.sizes
        out.append({"name": name, "description": e.description, "found": found,
                    "train_size": sizes[True], "test_size": sizes[False],
                    "num_classes": len(e.cls.classes), "downloadable": e.downloadable})
    return out
