"""Fixtures shared by the tests of filterbank.train."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real run folder: ``train`` for one epoch on 32 images of the embedded Fashion-MNIST
    sample, with a tiny simple_cnn. Tests that change it copy it first."""
    from filterbank.train.run import train

    out = tmp_path_factory.mktemp("run") / "run"
    train("simple_cnn", "fashion-mnist-sample", epochs=1, limit=32, out=out,
          model_args={"width": 2, "hidden": 4}, progress=False, log=lambda *a: None,
          echo=lambda *a: None)
    return out
