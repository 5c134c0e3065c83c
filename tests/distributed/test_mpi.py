"""DistributedDataParallel across two processes: ``mpirun -np 2`` running mpi_script.py.

Skipped only when Open MPI's ``mpirun`` or mpi4py is missing (``make test`` installs both).
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("mpi_script.py")

pytestmark = pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs Open MPI's mpirun and mpi4py (apt-get install openmpi-bin libopenmpi-dev; "
           "pip install filterbank[mpi])")


def mpirun(*args: str, np: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run mpi_script.py on ``np`` ranks; a job still running after ``timeout`` s (a hang) is
    killed with all its ranks and fails the test."""
    # root in a container needs the two ALLOW_RUN_AS_ROOT variables; --oversubscribe lets two
    # ranks share fewer cores
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "--oversubscribe", "-np", str(np), sys.executable, str(SCRIPT), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpirun and the ranks it started
        out, err = proc.communicate()
        pytest.fail(f"mpirun {' '.join(args)} hung for {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize("bucket_mb", ["0.001", "25"], ids=["5-buckets", "1-bucket"])
def test_two_ranks_train_identical_weights_equal_to_one_process(bucket_mb):
    r = mpirun("train", bucket_mb)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK identical on all ranks" in r.stdout
    assert "OK equals single-process training" in r.stdout
    assert ("buckets 1" in r.stdout) == (bucket_mb == "25")


def test_a_rank_that_raises_ends_the_job_with_its_message():
    r = mpirun("raise", timeout=60)  # a hang would raise TimeoutExpired here
    assert r.returncode != 0
    assert "ValueError: rank 1 failed on purpose" in r.stderr
    assert "rank 1 of 2 raised an exception" in r.stderr


def assert_raised_on_every_rank(r: subprocess.CompletedProcess, message: str) -> None:
    """The job ended normally and each of its two ranks printed ``rank R raised: message``
    (mpi_script.py catches the error on every rank)."""
    assert r.returncode == 0, r.stdout + r.stderr
    # mpirun may join the ranks' lines: look for the messages, not for lines
    for rank in (0, 1):
        assert f"rank {rank} raised: {message}" in r.stdout, r.stdout


def test_different_models_raise_on_every_rank():
    r = mpirun("mismatch", timeout=60)
    assert_raised_on_every_rank(r, "DistributedDataParallel: the ranks hold different models")
    assert r.stdout.count("rank 0 '0.weight (2, 4) float32', rank 1 '0.weight (3, 4) "
                          "float32'") == 2, r.stdout


def test_trainer_fit_agrees_on_every_rank():
    r = mpirun("trainer")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK trainer: losses" in r.stdout


def test_a_parameter_without_gradient_raises_at_the_next_forward_on_every_rank():
    r = mpirun("unused", timeout=60)
    assert_raised_on_every_rank(r, "DistributedDataParallel: the previous backward did not "
                                   "produce gradients for 2 parameter(s) (1.weight, 1.bias)")


def test_no_sync_accumulates_locally_then_averages_the_sums():
    r = mpirun("accumulate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("no_sync accumulation equals one process") == 2
