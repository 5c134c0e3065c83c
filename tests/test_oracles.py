"""Without PyTorch only the tests that compare against it skip (issue 15, item 14), and with
FILTERBANK_REQUIRE_ORACLES=1 (``make test``) a missing oracle stops the session loudly.

Each check runs pytest in a subprocess where ``import torch`` fails (``sys.modules['torch'] =
None``, which also makes ``importlib.util.find_spec`` answer None, as when it is absent)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # pytest in subprocesses

ROOT = Path(__file__).resolve().parents[1]
#: the modules that used to skip whole (module-level importorskip) without torch
MODULES = ["tests/nn/test_activation.py", "tests/nn/test_conv.py", "tests/nn/test_linear.py",
           "tests/nn/test_init.py", "tests/nn/test_pool.py", "tests/nn/test_upsample.py",
           "tests/functional/test_conv.py", "tests/functional/test_pool.py",
           "tests/functional/test_upsample.py"]


def _pytest_without_torch(*args: str, require: bool = False) -> subprocess.CompletedProcess:
    code = ("import sys; sys.modules['torch'] = None; import pytest; "
            f"sys.exit(pytest.main({list(args)!r}))")
    env = {k: v for k, v in os.environ.items() if k != "FILTERBANK_REQUIRE_ORACLES"}
    if require:
        env["FILTERBANK_REQUIRE_ORACLES"] = "1"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _counts(out: str) -> dict[str, int]:
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed|errors?)", out)}


def test_modules_collect_every_test_without_torch():
    r = _pytest_without_torch("--collect-only", "-q", "-p", "no:cacheprovider", *MODULES)
    assert r.returncode == 0, r.stdout + r.stderr
    per_module = {m: 0 for m in MODULES}
    for line in r.stdout.splitlines():
        module = line.split("::")[0]
        if module in per_module:
            per_module[module] += 1
    assert all(n > 0 for n in per_module.values()), per_module


def test_non_torch_tests_run_and_pass_without_torch():
    # the lecture examples, float64 gradchecks and error checks of two quick modules run
    r = _pytest_without_torch("-q", "-p", "no:cacheprovider", "-o", "addopts=",
                              "tests/nn/test_linear.py", "tests/nn/test_upsample.py")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    counts = _counts(r.stdout)
    assert counts.get("passed", 0) >= 20 and counts.get("skipped", 0) > 0, counts
    assert "failed" not in counts and "error" not in counts and "errors" not in counts


def test_required_oracles_fail_the_session_with_one_clear_message():
    r = _pytest_without_torch("-q", "-p", "no:cacheprovider", "tests/nn/test_linear.py",
                              require=True)
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error: nothing ran
    assert "FILTERBANK_REQUIRE_ORACLES" in r.stderr and "torch" in r.stderr, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert "passed" not in r.stdout and "skipped" not in r.stdout
