"""train.metrics.average_precision: scikit-learn's AP (the precision-recall step sum) against
a brute-force reference over every threshold, ties, unknown labels and errors."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.train.metrics import average_precision


def _reference_ap(scores, targets):
    """AP from its definition: every distinct score, highest first, is a threshold."""
    ap, prev_recall = 0.0, 0.0
    positives = targets.sum()
    for thr in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= thr
        tp = targets[chosen].sum()
        recall = tp / positives
        ap += (recall - prev_recall) * tp / chosen.sum()
        prev_recall = recall
    return ap


def test_scikit_learn_documentation_example():
    # sklearn.metrics.average_precision_score's docstring: 0.83...
    assert average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", range(6))
def test_random_columns_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    n, c = 40, 4
    targets = (rng.random((n, c)) < 0.35).astype(np.int64)
    targets[0] = 1  # every column has a positive
    # rounded scores give ties, also across positives and negatives
    scores = np.round(rng.standard_normal((n, c)) + targets, 1)
    got = average_precision(scores, targets)
    assert got.shape == (c,) and got.dtype == np.float64
    want = [_reference_ap(scores[:, k], targets[:, k]) for k in range(c)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert average_precision(scores[:, 1], targets[:, 1]) == pytest.approx(want[1], rel=1e-12)


def test_perfect_worst_and_tied_rankings():
    t = np.array([1, 0, 1, 0, 0])
    assert average_precision(np.array([5.0, 1, 4, 2, 3]), t) == 1.0
    # positives ranked last: precisions 1/4 and 2/5 at recalls 1/2 and 1
    assert average_precision(np.array([1.0, 5, 2, 4, 3]), t) == pytest.approx(
        0.5 * 1 / 4 + 0.5 * 2 / 5)
    assert average_precision(np.zeros(5), t) == pytest.approx(2 / 5)  # one tie group: P = 2/5


def test_unknown_labels_are_left_out_and_absent_classes_are_nan():
    s = fb.tensor([[0.9, 0.2], [0.8, 0.1], [0.1, 0.3]])
    t = np.array([[-1, 0], [1, 0], [np.nan, 0]])
    got = average_precision(s, t, ignore_index=-1)
    assert got[0] == 1.0  # only the known sample 1 counts
    assert np.isnan(got[1])  # no positive: undefined
    with pytest.raises(ValueError, match=r"targets must be 0 or 1 \(or ignore_index=-1\), "
                                         r"got 2"):
        average_precision([0.1, 0.2], [1, 2], ignore_index=-1)
    with pytest.raises(ValueError, match=r"targets must be 0 or 1, got -1"):
        average_precision([0.1, 0.2], [1, -1])


def test_shape_errors():
    with pytest.raises(ValueError, match=r"average_precision: expected scores and targets of "
                                         r"one shape, \(N,\) or \(N, C\), got \(3,\) and \(2,\)"):
        average_precision([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match=r"got \(1, 2, 2\) and \(1, 2, 2\)"):
        average_precision(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
