"""mean_iou / MeanIoU / PixelAccuracy: a per-pixel confusion-matrix reference and hand cases."""

from __future__ import annotations

import numpy as np
import pytest

import filterbank as fb
from filterbank.train.metrics import MeanIoU, PixelAccuracy, get_metric, mean_iou

VOID = 255


def reference(pred_labels, target, k, ignore_index=None):
    """Pixel by pixel: the confusion matrix, then IoU per class present somewhere."""
    cm = np.zeros((k, k), np.int64)
    for p, t in zip(np.ravel(pred_labels), np.ravel(target)):
        if t != ignore_index:
            cm[t, p] += 1
    iou = np.full(k, np.nan)
    for c in range(k):
        union = cm[c, :].sum() + cm[:, c].sum() - cm[c, c]
        if union:
            iou[c] = cm[c, c] / union
    return cm, iou, np.nanmean(iou), np.trace(cm) / cm.sum()


def data(seed=0, n=3, k=5, hw=(6, 7), void=0.15):
    g = np.random.default_rng(seed)
    logits = g.standard_normal((n, k, *hw)).astype(np.float32)
    target = g.integers(0, k - 1, (n, *hw))  # class k-1 never in the target
    target[g.random(target.shape) < void] = VOID
    return logits, target


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_confusion_matrix_reference_with_ignore_index(seed):
    logits, target = data(seed)
    labels = logits.argmax(axis=1)
    cm, iou, miou, acc = reference(labels, target, 5, VOID)
    for pred in (logits, labels, fb.Tensor(logits)):
        r = mean_iou(pred, fb.Tensor(target), 5, ignore_index=VOID)
        np.testing.assert_array_equal(r["confusion_matrix"], cm)
        np.testing.assert_allclose(r["iou_per_class"], iou, rtol=1e-12)
        assert r["miou"] == pytest.approx(miou, rel=1e-12)
        assert r["pixel_accuracy"] == pytest.approx(acc, rel=1e-12)
    assert cm.sum() < target.size  # void pixels were dropped


def test_hand_computed_and_absent_classes_excluded():
    # target 0 0 1 1 / pred 0 1 1 1 -> class 0: 1/(2+1-1) = 1/2, class 1: 2/(2+3-2) = 2/3,
    # class 2 in neither: NaN and not in the mean; pixel accuracy 3/4
    r = mean_iou(np.array([[0, 1, 1, 1]]), np.array([[0, 0, 1, 1]]), 3)
    np.testing.assert_allclose(r["iou_per_class"], [1 / 2, 2 / 3, np.nan])
    assert r["miou"] == pytest.approx(7 / 12)
    assert r["pixel_accuracy"] == pytest.approx(3 / 4)
    # a class only predicted (a false positive everywhere) counts, with IoU 0
    r = mean_iou(np.array([[0, 2]]), np.array([[0, 0]]), 3)
    np.testing.assert_allclose(r["iou_per_class"], [1 / 2, np.nan, 0.0])
    assert r["miou"] == pytest.approx(1 / 4)
    # void pixels do not count whatever is predicted there
    r = mean_iou(np.array([[0, 2, 2]]), np.array([[0, VOID, VOID]]), 3, ignore_index=VOID)
    assert r["miou"] == 1.0 and r["pixel_accuracy"] == 1.0
    # no pixel counted at all
    r = mean_iou(np.array([[1]]), np.array([[VOID]]), 2, ignore_index=VOID)
    assert r["miou"] == 0.0 and r["pixel_accuracy"] == 0.0
    assert np.isnan(r["iou_per_class"]).all()


def test_streaming_is_one_confusion_matrix_over_the_data_set():
    logits, target = data(2, n=6)
    whole = mean_iou(logits, target, 5, ignore_index=VOID)
    m, acc = MeanIoU(5, ignore_index=VOID), PixelAccuracy(ignore_index=VOID)
    per_batch = []
    for b in range(0, 6, 2):
        m.update(fb.Tensor(logits[b:b + 2]), target[b:b + 2])
        acc.update(logits[b:b + 2], fb.Tensor(target[b:b + 2]))
        per_batch.append(mean_iou(logits[b:b + 2], target[b:b + 2], 5, VOID)["miou"])
    assert m.compute() == pytest.approx(whole["miou"], rel=1e-12)
    assert acc.compute() == pytest.approx(whole["pixel_accuracy"], rel=1e-12)
    np.testing.assert_array_equal(m.result()["confusion_matrix"], whole["confusion_matrix"])
    assert abs(np.mean(per_batch) - whole["miou"]) > 1e-4  # not a mean of per-batch values
    assert acc.num_classes == 5  # taken from the scores
    m.reset()
    assert m.compute() == 0.0
    m.update(logits[:1], target[:1])
    assert m.compute() == pytest.approx(mean_iou(logits[:1], target[:1], 5, VOID)["miou"])


def test_trainer_reports_miou_and_pixel_accuracy():
    logits, target = data(3, n=4, k=3, void=0.0)
    x = logits[:, :1].copy()
    model = fb.nn.Conv2d(1, 3, 1)
    trainer = fb.train.Trainer(model, fb.optim.SGD(model.parameters(), lr=0.1),
                               fb.nn.CrossEntropyLoss(), metrics=["miou", "pixel_accuracy"])
    res = trainer.evaluate(x, target, batch_size=3)
    out = trainer.predict(x)
    ref = mean_iou(out, target, 3)
    assert res["miou"] == pytest.approx(ref["miou"], rel=1e-6)
    assert res["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], rel=1e-6)
    assert isinstance(get_metric("mean_iou"), MeanIoU)


@pytest.mark.parametrize("pred, target, kw, err, match", [
    (np.zeros((1, 2, 2), int), np.array([[[0, 3], [0, 0]]]), {}, ValueError,
     r"target holds class 3; expected classes in \[0, 3\)"),
    (np.zeros((1, 2, 2), int), np.array([[[0, 3], [0, 0]]]), {"ignore_index": VOID}, ValueError,
     r"target holds class 3.*or ignore_index=255"),
    (np.array([[[0, 7]]]), np.array([[[0, 0]]]), {}, ValueError, "prediction holds class 7"),
    (np.zeros((1, 2, 2), int), np.zeros((1, 2, 3), int), {}, ValueError,
     r"prediction has shape \(1, 2, 2\) but target has shape \(1, 2, 3\)"),
    (np.zeros((1, 4, 2, 2)), np.zeros((1, 2, 2), int), {}, ValueError,
     r"scores of shape \(1, 4, 2, 2\).*expected scores \(1, 3, 2, 2\)"),
    (np.zeros((1, 2, 2), int), np.zeros((1, 2, 2)), {}, TypeError, "integer class labels"),
    (np.zeros((1, 2, 2)), np.zeros((1, 2, 2), int), {}, TypeError, "integer labels"),
])
def test_errors_name_the_function_and_the_values(pred, target, kw, err, match):
    with pytest.raises(err, match=f"mean_iou: .*{match}"):
        mean_iou(pred, target, 3, **kw)


def test_streaming_errors():
    with pytest.raises(ValueError, match="MeanIoU: target holds class 5"):
        MeanIoU(3).update(np.zeros((1, 3, 2, 2)), np.full((1, 2, 2), 5))
    with pytest.raises(ValueError, match="MeanIoU: without num_classes"):
        MeanIoU().update(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match="MeanIoU: num_classes must be an int >= 1"):
        MeanIoU(0)
    # ignore_index pixels pass whatever their label, others are checked
    m = MeanIoU(3, ignore_index=-1)
    m.update(np.zeros((1, 3, 1, 2)), np.array([[[-1, 0]]]))
    assert m.compute() == 1.0
