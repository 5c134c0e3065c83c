"""Session-wide test setup: the oracles.

Tests that compare against PyTorch (or need Pillow or matplotlib) skip one by one where it is
not installed, so the rest of the suite still runs anywhere. ``make test`` installs them all
and sets ``FILTERBANK_REQUIRE_ORACLES=1``: then a missing or broken one stops the session
before any test runs, instead of turning hundreds of checks into quiet skips.
"""

from __future__ import annotations

import importlib
import os
import shutil

import pytest

#: module -> what the tests use it for
ORACLES = {
    "torch": "PyTorch, the reference of every *_vs_torch / *_matches_torch test",
    "PIL": "Pillow, for the image-file tests",
    "matplotlib": "matplotlib, for the plotting tests",
    "onnx": "onnx, to build the ONNX import/export test models and run the conformance harness",
    "onnxruntime": "ONNX Runtime, the reference of the ONNX import/export tests",
    "mpi4py": "mpi4py, for the distributed tests run under mpirun",
}
#: program -> what the tests use it for (make test installs them as root with apt-get)
PROGRAMS = {
    "mpirun": "Open MPI's launcher, for the distributed tests (Debian: openmpi-bin)",
    "chromium": "a headless browser, for the dashboard's page test (Debian: chromium)",
}


def missing_oracles() -> list[str]:
    """The oracles that do not import, each with why."""
    missing = []
    for module, use in ORACLES.items():
        try:
            importlib.import_module(module)
        except Exception as e:  # an ImportError, or a broken install failing as it loads
            missing.append(f"{module} ({use}): {type(e).__name__}: {e}")
    for program, use in PROGRAMS.items():
        if shutil.which(program) is None:
            missing.append(f"{program} ({use}): not on PATH")
    return missing


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("FILTERBANK_REQUIRE_ORACLES", "") in ("", "0"):
        return
    missing = missing_oracles()
    if missing:
        raise pytest.UsageError(
            "FILTERBANK_REQUIRE_ORACLES is set (make test sets it) but these test oracles do "
            "not import, so their tests would be skipped: " + "; ".join(missing)
            + ". Install them (make test installs them into .venv: delete .venv/.installed-dev "
            "to reinstall) or unset FILTERBANK_REQUIRE_ORACLES to run without them.")


@pytest.fixture(scope="module")
def sample_only(tmp_path_factory):
    """No full Fashion-MNIST anywhere (empty $FILTERBANK_DATA and cache, no system folder):
    ``fashion-mnist`` resolves to the embedded sample, as on a machine without the data set.
    Modules that train on it say ``pytestmark = pytest.mark.usefixtures("sample_only")``."""
    from filterbank.data.datasets import FashionMNIST

    empty = tmp_path_factory.mktemp("nodata")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILTERBANK_DATA", str(empty))
        mp.setenv("XDG_CACHE_HOME", str(empty / "cache"))
        mp.setattr(FashionMNIST, "system_dirs", ())
        yield empty
