"""Anomaly mode names the first op whose backward produced NaN or Inf."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.autograd import detect_anomaly, is_anomaly_enabled, set_detect_anomaly


def test_anomaly_names_the_op_and_output_index():
    x = fb.tensor([0.0, 1.0], requires_grad=True)
    loss = fb.sqrt(x).sum()  # d sqrt / dx at 0 is inf
    with detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Function 'Sqrt' returned inf values in its "
                                               r"0th output"):
            with np.errstate(divide="ignore"):
                loss.backward()


def test_anomaly_reports_nan_and_the_first_offender():
    x = fb.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = fb.log(x) * 0.0  # forward -inf * 0 = nan; Log's backward 0/0 = nan
        with set_detect_anomaly(True):
            with pytest.raises(RuntimeError, match=r"Function 'Log' returned nan values in its "
                                                   r"0th output"):
                y.sum().backward()


def test_anomaly_reports_the_right_input_index():
    a = fb.tensor([1.0])  # a constant: Div's 0th gradient is None, its 1st is -1/0
    b = fb.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = fb.div(a, b)
        with detect_anomaly():
            with pytest.raises(RuntimeError, match=r"Function 'Div' returned inf values in its "
                                                   r"1th output"):
                y.sum().backward()


def test_without_anomaly_mode_nan_flows_silently():
    x = fb.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        (fb.log(x) * 0.0).sum().backward()
    assert np.isnan(x.grad.item())


def test_modes_restore():
    assert not is_anomaly_enabled()
    with detect_anomaly():
        assert is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def f():
        return is_anomaly_enabled()

    assert f() and not is_anomaly_enabled()


def test_finite_backward_passes_in_anomaly_mode():
    x = fb.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        (x.log() * x).sum().backward()
    assert np.isfinite(x.grad.data).all()
