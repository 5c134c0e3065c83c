"""``dim=`` everywhere: every public function of ``filterbank`` and ``filterbank.functional``
that takes NumPy's ``axis`` also takes PyTorch's ``dim`` (and ``keepdims`` / ``keepdim``)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import filterbank as fb
import filterbank.functional as F


def _spellings(fn) -> set[str]:
    """The names ``fn`` accepts among dim/axis/keepdim/keepdims."""
    own = set(inspect.signature(fn).parameters)  # follows the wrapper to the real function
    return (own | set(getattr(fn, "dim_aliases", {}))) & {"axis", "dim", "keepdim", "keepdims"}


FUNCTIONS = {}
for _mod in (fb, F):
    for _name in dir(_mod):
        _obj = getattr(_mod, _name)
        if not _name.startswith("_") and inspect.isfunction(_obj) and _spellings(_obj):
            FUNCTIONS[f"{_mod.__name__}.{_name}"] = _obj


def test_the_registry_found_the_reductions():
    names = {q.split(".")[-1] for q in FUNCTIONS}
    assert {"sum", "mean", "max", "softmax", "log_softmax", "cat", "stack", "argmax",
            "topk", "std", "squeeze", "split"} <= names


@pytest.mark.parametrize("qual", sorted(FUNCTIONS))
def test_axis_functions_also_take_dim(qual):
    names = _spellings(FUNCTIONS[qual])
    if "axis" in names:
        assert "dim" in names, f"{qual} takes axis= but not dim="
    if "keepdims" in names:
        assert "keepdim" in names, f"{qual} takes keepdims= but not keepdim="


@pytest.mark.parametrize("fn", [F.sum, F.mean, F.amax, F.amin, F.argmax, F.argmin, F.logsumexp,
                                F.var, F.std, fb.norm])
def test_dim_keepdim_calls_match_axis_keepdims(fn):
    x = fb.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    a = fn(x, dim=1, keepdim=True)
    b = fn(x, axis=1, keepdims=True)
    assert a.shape == b.shape == (2, 1, 4)
    np.testing.assert_array_equal(a.data, b.data)
