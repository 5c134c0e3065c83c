"""get_dataset / available_datasets: the names the CLI uses."""

from __future__ import annotations

import numpy as np
import pytest

from filterbank.data.datasets import (
    CIFAR10,
    MNIST,
    FashionMNIST,
    FashionMNISTSample,
    available_datasets,
    get_dataset,
    write_idx,
)
from filterbank.data.datasets import fashion_mnist as fm


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTERBANK_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    monkeypatch.setattr(MNIST, "sizes", {True: 4, False: 2})


def test_names_and_sample():
    names = [d["name"] for d in available_datasets()]
    assert names == ["fashion-mnist-sample", "fashion-mnist", "mnist", "cifar10", "cifar100",
                     "shapes"]
    for alias in ("fashion-mnist-sample", "Fashion_MNIST-sample", "FashionMNIST-sample"):
        ds = get_dataset(alias, train=False, transform=lambda a: a[..., 0])
        assert isinstance(ds, FashionMNISTSample) and len(ds) == 1000
        assert ds[0][0].shape == (28, 28)
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; available: fashion-mnist"):
        get_dataset("imagenet")


def test_available_reports_where_found(tmp_path):
    info = {d["name"]: d for d in available_datasets()}
    assert info["fashion-mnist-sample"]["found"] == str(fm.EMBEDDED_DIR)
    assert (info["fashion-mnist-sample"]["train_size"],
            info["fashion-mnist-sample"]["test_size"]) == (6000, 1000)
    assert info["mnist"]["found"] is None and info["mnist"]["downloadable"]
    assert info["cifar100"]["num_classes"] == 100 and info["cifar100"]["downloadable"]
    assert (CIFAR10.sizes[True], CIFAR10.sizes[False]) == (50000, 10000)

    d = tmp_path / "env" / "mnist"
    d.mkdir(parents=True)
    for train, n in ((True, 4), (False, 2)):
        images, labels = fm._FILES[train]
        write_idx(d / f"{images}.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(d / f"{labels}.gz", np.arange(n, dtype=np.uint8))
    assert {x["name"]: x for x in available_datasets()}["mnist"]["found"] == str(d)
    ds = get_dataset("MNIST", train=False)
    assert isinstance(ds, MNIST) and ds.targets.tolist() == [0, 1]
