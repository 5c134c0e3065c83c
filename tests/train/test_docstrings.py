"""The docstring examples of the data, training and clipping modules run and are right."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "filterbank.data.dataset", "filterbank.data.loader", "filterbank.data.transforms",
    "filterbank.train.metrics", "filterbank.train.trainer", "filterbank.nn.utils",
    "filterbank.train.embed", "filterbank.viz.interpret",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"
