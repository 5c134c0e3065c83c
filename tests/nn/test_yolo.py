"""YOLO v1: the loss against a loop reference written from the paper's formula, float64
gradcheck, a hand-computed 2x2 grid, target encoding and decoding (round trip, NMS), errors."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import filterbank as fb
from filterbank import nn
from filterbank.train.yolo import decode, encode_targets

PARTS = ("coord", "size", "obj", "noobj", "class")


# ------------------------------------------------------------------ reference (loops allowed)
def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _corners(cx, cy, w, h):
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def reference(pred, target, S, B, C, lc=5.0, ln=0.5, rescore=True, frozen=None):
    """The lecture's five sums, cell by cell and predictor by predictor, divided by N.

    ``frozen[(n, i, j)]`` replaces the responsible predictor's confidence target (to
    differentiate with the IoU held constant). Returns (parts, {cell: (responsible, target)}).
    """
    N = pred.shape[0]
    parts = dict.fromkeys(PARTS, 0.0)
    chosen = {}
    for n in range(N):
        for i in range(S):
            for j in range(S):
                t, p = target[n, i, j], pred[n, i, j]
                has = t[4] == 1
                gt = _corners((j + t[0]) / S, (i + t[1]) / S, t[2], t[3])
                ious = []
                for b in range(B):
                    x, y, sw, sh = p[5 * b : 5 * b + 4]
                    ious.append(_iou(_corners((j + x) / S, (i + y) / S, sw**2, sh**2), gt))
                r = -1
                if has:
                    r = 0
                    for b in range(1, B):
                        if ious[b] > ious[r]:
                            r = b
                for b in range(B):
                    x, y, sw, sh, conf = p[5 * b : 5 * b + 5]
                    if b == r:
                        parts["coord"] += lc * ((x - t[0]) ** 2 + (y - t[1]) ** 2)
                        parts["size"] += lc * (
                            (sw - np.sqrt(t[2])) ** 2 + (sh - np.sqrt(t[3])) ** 2
                        )
                        c_hat = ious[b] if rescore else 1.0
                        if frozen is not None:
                            c_hat = frozen[(n, i, j)][1]
                        parts["obj"] += (conf - c_hat) ** 2
                        chosen[(n, i, j)] = (r, c_hat)
                    else:
                        parts["noobj"] += ln * conf**2
                if has:
                    parts["class"] += sum((p[5 * B + c] - t[5 + c]) ** 2 for c in range(C))
    return {k: v / N for k, v in parts.items()}, chosen


def _random_case(rng, N, S, B, C, per_image=4):
    """Random boxes encoded to targets, and predictions near them so IoUs are mostly > 0."""
    boxes, labels = [], []
    for _ in range(N):
        c = rng.uniform(0.1, 0.9, (per_image, 2))
        wh = rng.uniform(0.05, 0.4, (per_image, 2))
        boxes.append(np.clip(np.concatenate([c - wh / 2, c + wh / 2], axis=1), 0, 1))
        labels.append(rng.integers(0, C, per_image))
    target = encode_targets(boxes, labels, S, C).astype(np.float64)
    pred = np.empty((N, S, S, 5 * B + C))
    box = pred[..., : 5 * B].reshape(N, S, S, B, 5)
    box[..., 0:2] = rng.uniform(0, 1, (N, S, S, B, 2))
    box[..., 2:4] = rng.uniform(0.1, 0.7, (N, S, S, B, 2))
    box[..., 4] = rng.uniform(-0.2, 1.2, (N, S, S, B))
    pred[..., 5 * B :] = rng.standard_normal((N, S, S, C))
    return pred, target


# ------------------------------------------------------------------ loss: values and gradients
@pytest.mark.parametrize("rescore", [True, False])
@pytest.mark.parametrize("S,B,C,seed", [(2, 2, 2, 0), (3, 2, 3, 1), (3, 3, 2, 2), (4, 2, 2, 3)])
def test_loss_matches_formula_reference(S, B, C, seed, rescore):
    rng = np.random.default_rng(seed)
    pred, target = _random_case(rng, 2, S, B, C)
    loss_fn = nn.YOLOv1Loss(S=S, B=B, C=C, rescore=rescore)
    loss, parts = loss_fn(fb.tensor(pred, dtype="float64"), target, return_parts=True)
    ref, _ = reference(pred, target, S, B, C, rescore=rescore)
    assert loss.dtype == np.float64
    assert abs(loss.item() - sum(ref.values())) <= 1e-6
    for k in PARTS:
        assert abs(parts[k] - ref[k]) <= 1e-6, k
    assert loss_fn.parts == parts


def test_reference_cases_pick_both_predictors():
    """The random cases exercise the choice (every predictor is responsible somewhere) and
    the IoU target (mostly strictly between 0 and 1)."""
    pred, target = _random_case(np.random.default_rng(2), 2, 3, 3, 2)
    _, chosen = reference(pred, target, 3, 3, 2)
    assert {r for r, _ in chosen.values()} == {0, 1, 2}
    assert sum(0 < iou < 1 for _, iou in chosen.values()) >= len(chosen) - 1


@pytest.mark.parametrize("S,C,seed", [(2, 2, 0), (3, 3, 1)])
def test_gradcheck_float64_without_rescore(S, C, seed):
    rng = np.random.default_rng(seed)
    pred, target = _random_case(rng, 2, S, 2, C)
    p = fb.tensor(pred, dtype="float64", requires_grad=True)
    loss_fn = nn.YOLOv1Loss(S=S, B=2, C=C, rescore=False)
    assert fb.gradcheck(lambda x: loss_fn(x, target), (p,))


def test_rescore_gradient_holds_the_iou_constant():
    """With rescore the IoU target moves with the prediction, so finite differences of the
    loss differ from its gradient by design; the gradient is that of the reference with the
    responsible predictor's confidence target frozen at its IoU."""
    S, B, C = 2, 2, 2
    pred, target = _random_case(np.random.default_rng(4), 2, S, B, C)
    p = fb.tensor(pred, dtype="float64", requires_grad=True)
    nn.YOLOv1Loss(S=S, B=B, C=C)(p, target).backward()
    _, frozen = reference(pred, target, S, B, C)
    numeric = np.zeros_like(pred)
    eps = 1e-6
    for idx in np.ndindex(pred.shape):
        hi, lo = pred.copy(), pred.copy()
        hi[idx] += eps
        lo[idx] -= eps
        f_hi = sum(reference(hi, target, S, B, C, frozen=frozen)[0].values())
        f_lo = sum(reference(lo, target, S, B, C, frozen=frozen)[0].values())
        numeric[idx] = (f_hi - f_lo) / (2 * eps)
    np.testing.assert_allclose(p.grad.numpy(), numeric, atol=1e-6)


# A 2x2 grid, B = 2, C = 2, by hand. Image 0 has one object in cell (row 0, column 0):
# target (x, y, w, h) = (0.5, 0.5, 0.25, 0.25), class 1: the box [0.125, 0.125, 0.375, 0.375].
#   predictor 0: (0.6, 0.5, sqrt_w 0.5, sqrt_h 0.6, conf 0.8): centre (0.3, 0.25), w 0.25,
#     h 0.36: [0.175, 0.07, 0.425, 0.43]; intersection 0.2 * 0.25 = 0.05; union
#     0.0625 + 0.09 - 0.05 = 0.1025; IoU = 0.05 / 0.1025 = 20/41.
#   predictor 1: (0.5, 0.5, 0.25, 0.25, conf 0.4): w = h = 0.0625 inside the truth:
#     IoU = 0.0625^2 / 0.25^2 = 1/16 < 20/41, so predictor 0 is responsible.
#   coord = 5 (0.1^2 + 0^2) = 0.05        size = 5 ((0.5 - 0.5)^2 + (0.6 - 0.5)^2) = 0.05
#   obj = (0.8 - 1)^2 = 0.04 (rescore=False), (0.8 - 20/41)^2 = (12.8/41)^2 (rescore=True)
#   noobj = 0.5 (0.4^2 [predictor 1 of cell (0,0)] + 0.2^2 [cell (0,1)] + 0.2^2 [cell (1,0)])
#         = 0.5 * 0.24 = 0.12
#   class = (0.1 - 0)^2 + (0.7 - 1)^2 = 0.1 (other cells' class scores do not count)
# total = 0.36 (rescore=False). Image 1 is empty with an all-zero prediction: 0. Divided by
# the batch size 2: 0.18.
def _hand_case():
    target = np.zeros((2, 2, 2, 7))
    target[0, 0, 0] = [0.5, 0.5, 0.25, 0.25, 1, 0, 1]
    pred = np.zeros((2, 2, 2, 12))
    pred[0, 0, 0] = [0.6, 0.5, 0.5, 0.6, 0.8, 0.5, 0.5, 0.25, 0.25, 0.4, 0.1, 0.7]
    pred[0, 0, 1, 4] = 0.2
    pred[0, 1, 0, 9] = -0.2
    pred[0, 0, 1, 10:] = [0.9, 0.3]
    pred[0, 1, 1, 10:] = [-0.5, 2.0]
    return pred, target


@pytest.mark.parametrize("rescore,obj", [(False, 0.04), (True, (12.8 / 41) ** 2)])
def test_hand_computed_2x2_grid(rescore, obj):
    pred, target = _hand_case()
    loss_fn = nn.YOLOv1Loss(S=2, B=2, C=2, rescore=rescore)
    loss = loss_fn(fb.tensor(pred, dtype="float64"), target)
    want = {"coord": 0.05, "size": 0.05, "obj": obj, "noobj": 0.12, "class": 0.1}
    assert loss.item() == pytest.approx((0.32 + obj) / 2, abs=1e-12)
    assert loss_fn.parts == pytest.approx({k: v / 2 for k, v in want.items()}, abs=1e-12)


def test_hand_computed_gradient():
    """dL/dP = 2 W (P - T) / N, at a few entries of the hand case (rescore=False)."""
    pred, target = _hand_case()
    p = fb.tensor(pred, dtype="float64", requires_grad=True)
    nn.YOLOv1Loss(S=2, B=2, C=2, rescore=False)(p, target).backward()
    g = p.grad.numpy()
    assert g[0, 0, 0, 0] == pytest.approx(2 * 5 * 0.1 / 2)  # x of the responsible box
    assert g[0, 0, 0, 3] == pytest.approx(2 * 5 * 0.1 / 2)  # sqrt_h
    assert g[0, 0, 0, 4] == pytest.approx(2 * (0.8 - 1) / 2)  # its confidence
    assert g[0, 0, 0, 9] == pytest.approx(2 * 0.5 * 0.4 / 2)  # the other one's confidence
    assert g[0, 0, 0, 5:9].tolist() == [0, 0, 0, 0]  # its box: no term
    assert g[0, 0, 0, 11] == pytest.approx(2 * (0.7 - 1) / 2)
    assert g[0, 0, 1, 10:].tolist() == [0, 0]  # class scores of a cell without object


def test_ties_go_to_the_lowest_predictor():
    target = np.zeros((1, 1, 1, 6))
    target[0, 0, 0] = [0.5, 0.5, 0.5, 0.5, 1, 1]
    pred = np.zeros((1, 1, 1, 11))
    pred[0, 0, 0, :10] = [0.5, 0.5, 0.5, 0.5, 0.3] * 2  # the same box twice, IoU 0.25 each
    pred[0, 0, 0, 9] = 0.6
    loss_fn = nn.YOLOv1Loss(S=1, B=2, C=1, rescore=False)
    loss_fn(fb.tensor(pred, dtype="float64"), target)
    assert loss_fn.parts["obj"] == pytest.approx(0.7**2)  # predictor 0, confidence 0.3
    assert loss_fn.parts["noobj"] == pytest.approx(0.5 * 0.6**2)


def test_float32_by_default_and_backward_reaches_pred():
    pred, target = _random_case(np.random.default_rng(5), 2, 2, 2, 2)
    p = fb.tensor(pred, requires_grad=True)
    loss = nn.YOLOv1Loss(S=2, B=2, C=2)(p, fb.tensor(target))
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert p.grad.dtype == np.float32 and np.abs(p.grad.numpy()).sum() > 0


def test_repr():
    assert repr(nn.YOLOv1Loss()) == (
        "YOLOv1Loss(S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5, rescore=True)"
    )


# ------------------------------------------------------------------ encoding
def test_encode_places_boxes_in_cells():
    boxes = [np.array([[0.6, 0.1, 0.9, 0.3], [0.0, 0.5, 1.0, 1.0]]), np.zeros((0, 4))]
    t = encode_targets(boxes, [np.array([2, 0]), np.zeros(0, np.int64)], S=2, C=3)
    assert t.shape == (2, 2, 2, 8) and t.dtype == np.float32
    # centre (0.75, 0.2): row 0, column 1, offset (0.5, 0.4); centre (0.5, 0.75): row 1, col 1
    np.testing.assert_allclose(t[0, 0, 1], [0.5, 0.4, 0.3, 0.2, 1, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(t[0, 1, 1], [0.0, 0.5, 1.0, 0.5, 1, 1, 0, 0], atol=1e-6)
    assert t[0, :, 0].sum() == 0 and t[1].sum() == 0
    labels = [fb.tensor(np.array([2, 0])), fb.tensor(np.zeros(0, np.int64))]
    as_tensors = encode_targets([fb.tensor(b) for b in boxes], labels, 2, 3)  # float32 boxes
    np.testing.assert_allclose(as_tensors, t, atol=1e-6)


def test_encode_keeps_the_larger_box_of_a_cell():
    small, large = [0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.45, 0.4]  # both centred in cell (0, 0)
    for boxes, labels in (([small, large], [0, 1]), ([large, small], [1, 0])):
        t = encode_targets([np.array(boxes)], [np.array(labels)], S=2, C=2)
        np.testing.assert_allclose(t[0, 0, 0], [0.45, 0.4, 0.45, 0.4, 1, 0, 1], atol=1e-6)
    # equal areas: the first listed
    t = encode_targets([np.array([[0.125, 0.125, 0.375, 0.375], [0.25, 0.25, 0.5, 0.5]])],
                       [np.array([1, 0])], S=2, C=2)
    assert t[0, 0, 0, 5:].tolist() == [0, 1]


def test_encode_centre_on_the_far_edge_goes_to_the_last_cell():
    t = encode_targets([np.array([[1.0, 1.0, 1.0, 1.0]])], [np.array([0])], S=3, C=1)
    assert t[0, 2, 2].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]


# ------------------------------------------------------------------ decoding
def _grid_boxes(rng, S, C, n_images):
    """Boxes centred near the middle of distinct cells, small enough not to overlap much."""
    boxes, labels = [], []
    for _ in range(n_images):
        cells = rng.choice(S * S, size=rng.integers(1, S * S + 1), replace=False)
        r, c = np.divmod(cells, S)
        cx = (c + rng.uniform(0.4, 0.6, len(cells))) / S
        cy = (r + rng.uniform(0.4, 0.6, len(cells))) / S
        w, h = rng.uniform(0.3, 0.8, (2, len(cells))) / S
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        labels.append(rng.integers(0, C, len(cells)))
    return boxes, labels


def _perfect_prediction(target, B, C):
    n, S = target.shape[:2]
    pred = np.zeros((n, S, S, 5 * B + C), np.float32)
    pred[..., 0:2] = target[..., 0:2]
    pred[..., 2:4] = np.sqrt(target[..., 2:4])
    pred[..., 4] = target[..., 4]
    pred[..., 5 * B :] = target[..., 5:]
    return pred


def _sorted(boxes, labels):
    order = np.lexsort((boxes[:, 1], boxes[:, 0], labels))
    return boxes[order], labels[order]


@pytest.mark.parametrize("S,C,seed", [(3, 2, 0), (5, 4, 1)])
def test_encode_decode_round_trip(S, C, seed):
    boxes, labels = _grid_boxes(np.random.default_rng(seed), S, C, 3)
    pred = _perfect_prediction(encode_targets(boxes, labels, S, C), 2, C)
    as_output = fb.tensor(pred, requires_grad=True) * 1  # a network's output, with a graph
    out = decode(as_output, conf_threshold=0.5, iou_threshold=0.5, B=2, C=C)
    assert len(out) == 3
    for det, b, lab in zip(out, boxes, labels):
        assert det["boxes"].dtype == np.float32 and det["labels"].dtype == np.int64
        np.testing.assert_allclose(det["scores"], 1.0)
        got_b, got_l = _sorted(det["boxes"], det["labels"])
        want_b, want_l = _sorted(b, lab)
        np.testing.assert_array_equal(got_l, want_l)
        np.testing.assert_allclose(got_b, want_b, atol=1e-6)
    pixels = decode(pred, 0.5, 0.5, image_size=(40, 80))
    np.testing.assert_allclose(pixels[0]["boxes"], out[0]["boxes"] * [80, 40, 80, 40], atol=1e-4)


def test_decode_scores_threshold_order_and_clipping():
    pred = np.zeros((1, 2, 2, 12), np.float32)
    pred[0, 0, 0, :5] = [0.5, 0.5, 0.5, 0.5, 0.9]  # class scores (0.2, 0.5): score 0.45
    pred[0, 0, 0, 10:] = [0.2, 0.5]
    pred[0, 1, 1, :5] = [0.9, 0.9, 0.8, 0.8, 0.8]  # overhangs the image; score 0.8 * 0.7
    pred[0, 1, 1, 10:] = [0.7, 0.1]
    pred[0, 0, 1, :5] = [0.5, 0.5, 0.5, 0.5, 0.5]  # score 0.5 * 0.5 = 0.25: below 0.3
    pred[0, 0, 1, 10:] = [0.5, 0.0]
    det = decode(pred, conf_threshold=0.3, iou_threshold=0.5)[0]
    np.testing.assert_allclose(det["scores"], [0.56, 0.45], atol=1e-6)
    assert det["labels"].tolist() == [0, 1]
    # centre (0.95, 0.95), size 0.64: clipped to [0.63, 0.63, 1, 1]
    np.testing.assert_allclose(det["boxes"], [[0.63, 0.63, 1, 1], [0.125, 0.125, 0.375, 0.375]],
                               atol=1e-6)


def test_decode_nms_suppresses_within_a_class_only():
    pred = np.zeros((1, 1, 1, 12), np.float32)
    pred[0, 0, 0, :10] = [0.5, 0.5, 0.6, 0.6, 0.9, 0.52, 0.5, 0.6, 0.6, 0.8]  # IoU 0.89
    pred[0, 0, 0, 10:] = [1.0, 0.0]
    det = decode(pred, 0.1, 0.5)[0]
    assert det["scores"].tolist() == pytest.approx([0.9])
    assert len(decode(pred, 0.1, 0.9)[0]["scores"]) == 2  # IoU below the threshold: both kept
    # the same two boxes in two cells of a wider grid with different classes: both kept
    pred2 = np.zeros((1, 2, 2, 12), np.float32)
    pred2[0, 0, 0, :5] = [0.9, 0.5, 0.6, 0.6, 0.9]
    pred2[0, 0, 0, 10:] = [1.0, 0.0]
    pred2[0, 0, 1, :5] = [0.1, 0.5, 0.6, 0.6, 0.8]
    pred2[0, 0, 1, 10:] = [0.0, 1.0]
    assert decode(pred2, 0.1, 0.5)[0]["labels"].tolist() == [0, 1]
    pred2[0, 0, 1, 10:] = [1.0, 0.0]
    assert decode(pred2, 0.1, 0.5)[0]["labels"].tolist() == [0]


def test_decode_equal_scores_keep_grid_order():
    """Ties in score come out in row, column, predictor order (batched_nms is stable)."""
    pred = np.zeros((1, 2, 2, 12), np.float32)
    for (i, j), cls in (((1, 1), [1.0, 0.0]), ((0, 1), [0.0, 1.0]), ((1, 0), [0.0, 1.0])):
        pred[0, i, j, :5] = [0.5, 0.5, 0.5, 0.5, 0.8]
        pred[0, i, j, 5:10] = [0.5, 0.5, 0.45, 0.45, 0.8]  # IoU 0.66 with predictor 0
        pred[0, i, j, 10:] = cls
    det = decode(pred, 0.1, 0.5)[0]
    np.testing.assert_allclose(det["boxes"][:, :2], [[0.625, 0.125], [0.125, 0.625],
                                                     [0.625, 0.625]])
    assert det["labels"].tolist() == [1, 1, 0]


def test_decode_empty_when_nothing_passes():
    out = decode(np.zeros((2, 3, 3, 13), np.float32), 0.1, 0.5, B=2, C=3)
    assert [d["boxes"].shape for d in out] == [(0, 4), (0, 4)]
    assert out[0]["labels"].dtype == np.int64


# ------------------------------------------------------------------ errors
def test_encode_errors():
    ok = np.array([[0.1, 0.1, 0.2, 0.2]])
    with pytest.raises(ValueError, match=r"encode_targets: image 0: boxes must be xyxy with "
                                         r"x2 >= x1.*\[0\.3, 0\.1, 0\.2, 0\.2\]"):
        encode_targets([np.array([[0.3, 0.1, 0.2, 0.2]])], [np.array([0])], 2, 2)
    with pytest.raises(ValueError, match=r"encode_targets: image 1: .*y2 >= y1"):
        encode_targets([ok, np.array([[0.1, 0.3, 0.2, 0.2]])], [[0], [0]], 2, 2)
    with pytest.raises(ValueError, match=r"encode_targets: image 0: labels must be in "
                                         r"\[0, C\) = \[0, 2\), got 2"):
        encode_targets([ok], [np.array([2])], 2, 2)
    with pytest.raises(ValueError, match=r"encode_targets: image 0: labels must be in .*got -1"):
        encode_targets([ok], [np.array([-1])], 2, 2)
    with pytest.raises(ValueError, match=r"in \[0, 1\], got box 0"):
        encode_targets([ok * 10], [np.array([0])], 2, 2)
    with pytest.raises(ValueError, match=r"one entry per image, got 1 and 2"):
        encode_targets([ok], [[0], [0]], 2, 2)
    with pytest.raises(ValueError, match=r"boxes must have shape \(K, 4\), got \(1, 3\)"):
        encode_targets([ok[:, :3]], [[0]], 2, 2)
    with pytest.raises(TypeError, match=r"labels must be integers, got dtype float64"):
        encode_targets([ok], [np.array([0.0])], 2, 2)
    with pytest.raises(ValueError, match=r"encode_targets: S must be a positive int, got 0"):
        encode_targets([ok], [[0]], 0, 2)


def test_loss_errors():
    loss_fn = nn.YOLOv1Loss(S=2, B=2, C=3)
    target = np.zeros((1, 2, 2, 8))
    with pytest.raises(ValueError, match=r"YOLOv1Loss: pred's last dimension must be B\*5 \+ C"
                                         r" = 2\*5 \+ 3 = 13.*got shape \(1, 2, 2, 12\)"):
        loss_fn(fb.zeros(1, 2, 2, 12), target)
    with pytest.raises(ValueError, match=r"YOLOv1Loss: pred must have shape .*\(N, 2, 2, 13\), "
                                         r"got \(1, 3, 3, 13\)"):
        loss_fn(fb.zeros(1, 3, 3, 13), np.zeros((1, 3, 3, 8)))
    with pytest.raises(ValueError, match=r"YOLOv1Loss: target must have shape .*\(1, 2, 2, 8\)"
                                         r".*got \(1, 3, 3, 8\)"):
        loss_fn(fb.zeros(1, 2, 2, 13), np.zeros((1, 3, 3, 8)))
    with pytest.raises(ValueError, match=r"target must have shape .*got \(2, 2, 2, 8\)"):
        loss_fn(fb.zeros(1, 2, 2, 13), np.zeros((2, 2, 2, 8)))
    bad = target.copy()
    bad[0, 0, 0, 4] = 0.5
    with pytest.raises(ValueError, match=r"YOLOv1Loss: target\[\.\.\., 4\] .* must be 0 or 1"):
        loss_fn(fb.zeros(1, 2, 2, 13), bad)
    bad = target.copy()
    bad[0, 0, 0, 2] = -0.1
    with pytest.raises(ValueError, match=r"YOLOv1Loss: target \(x, y, w, h\) must lie in"):
        loss_fn(fb.zeros(1, 2, 2, 13), bad)
    with pytest.raises(TypeError, match=r"YOLOv1Loss: pred must be floating point, got dtype"):
        loss_fn(fb.tensor(np.zeros((1, 2, 2, 13), np.int64)), target)
    for kwargs, match in (({"S": 0}, "S must be a positive int, got 0"),
                          ({"B": 1.5}, "B must be a positive int, got 1.5"),
                          ({"lambda_coord": -1}, "lambda_coord must be a finite number >= 0"),
                          ({"lambda_noobj": float("nan")}, "lambda_noobj must be a finite")):
        with pytest.raises(ValueError, match=f"YOLOv1Loss: {match}"):
            nn.YOLOv1Loss(**kwargs)
    with pytest.raises(TypeError, match="YOLOv1Loss: rescore must be a bool, got 'yes'"):
        nn.YOLOv1Loss(rescore="yes")


def test_decode_errors():
    with pytest.raises(ValueError, match=r"decode: pred's last dimension must be B\*5 \+ C = "
                                         r"2\*5 \+ 3 = 13, got shape \(1, 2, 2, 12\)"):
        decode(np.zeros((1, 2, 2, 12), np.float32), 0.5, 0.5, B=2, C=3)
    with pytest.raises(ValueError, match=r"decode: pred's last dimension .* at least 11"):
        decode(np.zeros((1, 2, 2, 10), np.float32), 0.5, 0.5)
    with pytest.raises(ValueError, match=r"decode: pred must have shape \(N, S, S, B\*5 \+ C\)"):
        decode(np.zeros((2, 2, 13), np.float32), 0.5, 0.5)
    with pytest.raises(ValueError, match=r"decode: iou_threshold must be in \[0, 1\], got 2"):
        decode(np.zeros((1, 2, 2, 13), np.float32), 0.5, 2)
    with pytest.raises(ValueError, match=r"decode: image_size must be an int or \(H, W\)"):
        decode(np.zeros((1, 2, 2, 13), np.float32), 0.5, 0.5, image_size="big")


@pytest.mark.parametrize("name", ["filterbank.nn.detection", "filterbank.train.yolo"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
