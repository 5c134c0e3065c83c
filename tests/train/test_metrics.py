"""Metrics against brute-force references (and torch.topk for top-k)."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.train.metrics import (
    Accuracy,
    BinaryAccuracy,
    Mean,
    TopKAccuracy,
    accuracy,
    binary_accuracy,
    classification_report,
    confusion_matrix,
    default_metrics,
    get_metric,
    loss_kind,
    precision_recall_f1,
    top_k_accuracy,
)


def data(n=200, c=6, seed=0):
    g = np.random.default_rng(seed)
    logits = g.standard_normal((n, c)).astype(np.float32)
    target = g.integers(0, c, n)
    return logits, target


def ref_cm(t, p, k):
    cm = np.zeros((k, k), np.int64)
    for a, b in zip(t, p):
        cm[a, b] += 1
    return cm


def test_accuracy_from_logits_labels_tensors_and_one_hot():
    logits, t = data()
    want = np.mean(np.argmax(logits, 1) == t)
    assert accuracy(logits, t) == pytest.approx(want)
    assert accuracy(fb.tensor(logits), fb.tensor(t)) == pytest.approx(want)
    assert accuracy(np.argmax(logits, 1), t) == pytest.approx(want)
    assert accuracy(logits, np.eye(6, dtype=np.float32)[t]) == pytest.approx(want)
    seg = np.zeros((2, 3, 4, 4), np.float32)
    seg[:, 1] = 1
    assert accuracy(seg, np.ones((2, 4, 4), np.int64)) == 1.0  # pixel-wise (N, C, H, W)
    with pytest.raises(ValueError, match="output has 200 samples but target has 3"):
        accuracy(logits, t[:3])
    with pytest.raises(TypeError, match="integer labels"):
        accuracy(np.zeros(3, np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="one column .* for regression pass metrics=\\[\\]"):
        Accuracy().update(np.zeros((3, 1), np.float32), np.zeros((3, 1), np.float32))


@pytest.mark.parametrize("k", [1, 2, 3, 6, 10])
def test_top_k_matches_torch(k):
    torch = pytest.importorskip("torch")
    logits, t = data(seed=k)
    top = torch.topk(torch.from_numpy(logits), min(k, 6), dim=1).indices.numpy()
    want = np.mean((top == t[:, None]).any(axis=1))
    assert top_k_accuracy(logits, t, k) == pytest.approx(want)
    if k == 1:
        assert top_k_accuracy(logits, t, 1) == pytest.approx(accuracy(logits, t))


def test_confusion_matrix_and_prf_against_reference():
    logits, t = data()
    p = np.argmax(logits, 1)
    cm = confusion_matrix(t, logits)
    np.testing.assert_array_equal(cm, ref_cm(t, p, 6))
    assert cm.dtype == np.int64 and cm.sum() == 200
    np.testing.assert_array_equal(confusion_matrix(t, p, num_classes=8)[:6, :6], cm)
    r = precision_recall_f1(t, p)
    for c in range(6):
        tp = np.sum((p == c) & (t == c))
        prec = tp / max(np.sum(p == c), 1)
        rec = tp / max(np.sum(t == c), 1)
        f1 = 0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
        assert r["precision"][c] == pytest.approx(prec)
        assert r["recall"][c] == pytest.approx(rec)
        assert r["f1"][c] == pytest.approx(f1)
    assert r["macro_f1"] == pytest.approx(np.mean(r["f1"]))
    assert r["accuracy"] == pytest.approx(accuracy(logits, t))
    np.testing.assert_array_equal(r["support"], np.bincount(t, minlength=6))


def test_zero_division_is_zero_and_label_range_checked():
    r = precision_recall_f1(cm=np.array([[0, 0], [3, 0]]))
    assert r["precision"].tolist() == [0.0, 0.0] and r["recall"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"pred labels must lie in \[0, 2\), got range \[0, 5\]"):
        confusion_matrix([0, 1], [0, 5], num_classes=2)


def test_classification_report_text():
    text = classification_report([0, 1, 1, 2], [0, 0, 1, 2], class_names=["cat", "dog", "emu"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["cat", "0.500", "1.000", "0.667", "1"]
    assert lines[3].split() == ["dog", "1.000", "0.500", "0.667", "2"]
    assert lines[-2].split() == ["accuracy", "0.750", "4"]
    assert lines[-1].split()[:2] == ["macro", "avg"]
    with pytest.raises(ValueError, match="3 classes but 2 class names"):
        classification_report([0, 1, 2], [0, 1, 2], class_names=["a", "b"], num_classes=3)


def test_streaming_metrics_equal_whole_epoch_values():
    logits, t = data(n=103)
    acc, top3, mean = Accuracy(), TopKAccuracy(3), Mean(accuracy, name="acc2")
    for i in range(0, 103, 10):
        for m in (acc, top3, mean):
            m.update(logits[i:i + 10], t[i:i + 10])
    assert acc.compute() == pytest.approx(accuracy(logits, t))
    assert top3.compute() == pytest.approx(top_k_accuracy(logits, t, 3))
    assert mean.compute() == pytest.approx(accuracy(logits, t))
    acc.reset()
    assert acc.compute() == 0.0
    assert get_metric("top5_accuracy").name == "top5_accuracy"
    assert get_metric("acc").name == "accuracy"
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        get_metric("f2")
    with pytest.raises(ValueError, match=r"Accuracy: predictions have shape \(3,\)"):
        Accuracy().update(np.zeros((3, 2)), np.zeros((3, 1), np.int64))


def test_binary_accuracy_by_hand_and_streaming():
    p = np.array([[0.9], [0.2], [0.6], [0.5]], np.float32)  # 0.5 is not > 0.5: predicts 0
    t = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    assert binary_accuracy(p, t) == 0.5
    assert binary_accuracy(p, t, threshold=0.55) == 0.5
    assert binary_accuracy(p, t, threshold=0.1) == 0.5  # all ones
    multi = np.array([[0.9, 0.1, 0.8], [0.4, 0.7, 0.2]])  # multi-label: per element
    assert binary_accuracy(multi, np.array([[1, 0, 0], [0, 1, 0]])) == pytest.approx(5 / 6)
    logits = np.log(p / (1 - p))
    streamed = BinaryAccuracy(from_logits=True)
    for i in range(4):
        streamed.update(fb.tensor(logits[i:i + 1]), t[i:i + 1])
    # logit(0.5) = 0 is not > 0 either: the same decisions as on the probabilities
    assert (streamed.compute(), streamed.name) == (0.5, "binary_accuracy")
    assert get_metric("binary_accuracy").threshold == 0.5
    with pytest.raises(ValueError, match=r"BinaryAccuracy: output has 4 elements \(shape "
                                         r"\(4, 1\)\) but target has 3"):
        BinaryAccuracy().update(p, t[:3])


@pytest.mark.parametrize("loss, kind, names", [
    (fb.nn.CrossEntropyLoss(label_smoothing=0.1), "classification", ["accuracy"]),
    (fb.nn.NLLLoss(), "classification", ["accuracy"]),
    (fb.functional.nll_loss, "classification", ["accuracy"]),
    (fb.nn.BCELoss(), "binary", ["accuracy"]),
    (fb.functional.binary_cross_entropy_with_logits, "binary_logits", ["accuracy"]),
    (fb.nn.HuberLoss(), "regression", []), (fb.functional.l1_loss, "regression", []),
    (abs, None, []),
])
def test_loss_kind_and_default_metrics(loss, kind, names):
    assert loss_kind(loss) == kind
    metrics = default_metrics(loss)
    assert [m.name for m in metrics] == names
    if kind == "binary_logits":
        assert isinstance(metrics[0], BinaryAccuracy) and metrics[0].threshold == 0.0
