"""``mpirun -np 2 filterbank train ... --distributed``: one progress bar, one run folder
written by rank 0, a checkpoint evaluate reads; and the launch errors. Skipped only when Open
MPI's mpirun or mpi4py is missing (``make test`` installs both)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import cli, error_line

needs_mpi = pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs Open MPI's mpirun and mpi4py (apt-get install openmpi-bin libopenmpi-dev; "
           "pip install filterbank[mpi])")
EXE = str(Path(sys.executable).with_name("filterbank"))


@needs_mpi
def test_mpirun_two_ranks_train_from_the_command_line(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               FILTERBANK_DATA=str(empty), XDG_CACHE_HOME=str(empty))
    run = tmp_path / "run"
    cmd = ["mpirun", "--oversubscribe", "-np", "2", EXE, "train", "--model", "lenet5",
           "--dataset", "fashion-mnist-sample", "--epochs", "1", "--limit", "800",
           "--batch-size", "32", "--distributed", "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True, cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"mpirun hung:\n{out}\n{err}")
    assert proc.returncode == 0, out + err
    assert out.count("test accuracy:") == 1 and out.count("Total params") == 1  # rank 0 only
    assert err.count("Epoch 1/1") >= 1 and err.count("training lenet5 on") == 1
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["ranks"] == 2
    # 720 training images: 360 a rank, 12 steps of 32 (the last one partial)
    assert config["training"]["batch_size"] == 32
    history = json.loads((run / "model.json").read_text())
    assert history["epoch"] == 1 and history["global_step"] == 12
    assert (run / "checkpoints" / "last.json").is_file()
    # the weights have no "module." prefix: evaluate and a plain load read them
    code, stdout, stderr = cli(["evaluate", run])
    assert code == 0, stderr
    assert "test accuracy:" in stdout
    last = json.loads((run / "checkpoints" / "last.json").read_text())
    assert last["epoch"] == 1


def test_distributed_without_an_mpi_launcher_is_one_clear_line(tmp_path, monkeypatch):
    for var in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = cli(["train", "--model", "lenet5", "--dataset", "fashion-mnist-sample",
                        "--distributed", "--out", tmp_path / "r"])
    assert code == 1
    assert "needs the processes started by an MPI launcher: mpirun -np N" in error_line(err)
    assert not (tmp_path / "r").exists()


def test_distributed_without_mpi4py_names_the_extra(tmp_path, monkeypatch):
    from filterbank.distributed import comm

    monkeypatch.setattr(comm, "launched_by_mpi", lambda: True)  # as under mpirun
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # ... but mpi4py not installed
    code, _, err = cli(["train", "--model", "lenet5", "--dataset", "fashion-mnist-sample",
                        "--distributed", "--out", tmp_path / "r"])
    assert code == 1
    assert "distributed training needs mpi4py: pip install 'filterbank[mpi]'" in error_line(err)
    assert not (tmp_path / "r").exists()
