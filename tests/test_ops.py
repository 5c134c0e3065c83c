"""filterbank.ops box operations against plain references of torchvision's documented
algorithms (torchvision itself cannot be installed beside the torch oracle): box_convert,
box_area and box_iou through the op registry (reference, float64 gradcheck, float32, PyTorch
autograd of torchvision's formula), then NMS and batched NMS on random cases with tied scores,
identical and degenerate boxes and IoUs exactly at the threshold, then the degenerate-box
policy, empty inputs, NumPy/Tensor in and out, speed and errors."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from harness import OpCase, check_float32, check_gradcheck, check_reference, check_torch

import filterbank as fb
from filterbank.ops import batched_nms, box_area, box_convert, box_iou, nms

try:
    import torch
except ImportError:  # the torch checks skip themselves
    torch = None

rng = np.random.default_rng(17)
FORMATS = ("xyxy", "xywh", "cxcywh")


# ------------------------------------------------------------------ references (torchvision)
def ref_convert(boxes, in_fmt, out_fmt):
    """torchvision.ops.box_convert, box by box: via xyxy."""
    out = []
    for a, b, c, d in np.asarray(boxes, np.float64).reshape(-1, 4):
        if in_fmt == "xywh":
            a, b, c, d = a, b, a + c, b + d
        elif in_fmt == "cxcywh":
            a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
        if out_fmt == "xywh":
            a, b, c, d = a, b, c - a, d - b
        elif out_fmt == "cxcywh":
            a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
        out.append((a, b, c, d))
    return np.array(out, np.float64).reshape(np.shape(boxes))


def tv_area(box):
    """torchvision.ops.box_area: the signed product."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x2 - x1) * (y2 - y1)


def degenerate(box):
    return not (box[2] > box[0] and box[3] > box[1])


def ref_area(boxes):
    """torchvision's area on proper boxes, the documented 0 on degenerate ones."""
    return np.array([0.0 if degenerate(b) else tv_area(b) for b in np.reshape(boxes, (-1, 4))]
                    ).reshape(np.shape(boxes)[:-1])


def tv_iou(a, b):
    """torchvision's IoU of two boxes (inter / (area_a + area_b - inter), signed areas);
    0/0 is NaN as in torch."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = float(iw) * float(ih)
    union = tv_area(a) + tv_area(b) - inter
    if union == 0:
        return math.nan if inter == 0 else math.copysign(math.inf, inter)
    return inter / union


def ref_iou(boxes1, boxes2):
    """The documented policy: torchvision's IoU for proper boxes, 0 if either is degenerate."""
    return np.array([[0.0 if degenerate(a) or degenerate(b) else tv_iou(a, b) for b in boxes2]
                     for a in boxes1], np.float64).reshape(len(boxes1), len(boxes2))


def ref_nms(boxes, scores, thr):
    """torchvision's CPU kernel (nms_kernel.cpp) as plain loops: stable descending order,
    suppress j when IoU(i, j) > thr (a NaN IoU suppresses nothing)."""
    boxes = np.asarray(boxes, np.float64)
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # sorted() is stable
    suppressed = [False] * len(order)
    keep = []
    for pi, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[pi + 1:]:
            if not suppressed[j] and tv_iou(boxes[i], boxes[j]) > thr:
                suppressed[j] = True
    return np.array(keep, np.int64)


def ref_batched_nms(boxes, scores, idxs, thr):
    """NMS per class (torchvision's _batched_nms_vanilla), merged by score (ties: index)."""
    kept = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        kept += [int(members[k]) for k in ref_nms(boxes[members], scores[members], thr)]
    return np.array(sorted(kept, key=lambda i: (-float(scores[i]), i)), np.int64)


def tv_coordinate_trick(boxes, scores, idxs, thr):
    """torchvision's other batched_nms path: shift each class out of the others' way."""
    offsets = idxs.astype(np.float64) * (boxes.max() + 1)
    return ref_nms(boxes + offsets[:, None], scores, thr)


# ---------------------------------------------------------------------------- random boxes
def proper_boxes(n, lo=0.0, hi=5.0, wmin=1.0, wmax=4.0, r=rng):
    xy = r.uniform(lo, hi, (n, 2))
    return np.concatenate([xy, xy + r.uniform(wmin, wmax, (n, 2))], axis=1)


def grid_boxes(n, r, size=6, degenerate_share=0.15):
    """Integer boxes on a small grid: many identical boxes, shared edges and IoUs that are
    exact ratios (so a threshold can equal an IoU exactly); some degenerate ones."""
    xy = r.integers(0, size, (n, 2))
    wh = r.integers(1, 4, (n, 2))
    bad = r.random(n) < degenerate_share
    wh[bad] = r.integers(-2, 1, (int(bad.sum()), 2))  # zero or inverted sides
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float64)


def _torch_iou(a, b):
    """torchvision's box_iou formula in torch ops (for the autograd comparison)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[:, :2])
    rb = torch.min(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b - inter)


def _torch_convert(b, i, o):
    x = b
    if i == "xywh":
        x = torch.cat([b[..., :2], b[..., :2] + b[..., 2:]], -1)
    elif i == "cxcywh":
        x = torch.cat([b[..., :2] - 0.5 * b[..., 2:], b[..., :2] + 0.5 * b[..., 2:]], -1)
    if o == "xywh":
        return torch.cat([x[..., :2], x[..., 2:] - x[..., :2]], -1)
    if o == "cxcywh":
        return torch.cat([(x[..., :2] + x[..., 2:]) / 2, x[..., 2:] - x[..., :2]], -1)
    return x.clone()


# ------------------------------------------------------------------------- op registry
CASES = []
for _i, _o in itertools.product(FORMATS, FORMATS):
    for _shape in ((5, 4), (2, 3, 4)):
        CASES.append(OpCase(
            f"box_convert_{_i}_to_{_o}_{'x'.join(map(str, _shape))}",
            lambda b, i=_i, o=_o: box_convert(b, i, o), [rng.standard_normal(_shape)],
            reference=lambda b, i=_i, o=_o: ref_convert(b, i, o),
            torch_fn=lambda b, i=_i, o=_o: _torch_convert(b, i, o)))
CASES += [
    OpCase("box_area", box_area, [proper_boxes(6)], reference=ref_area,
           torch_fn=lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])),
    OpCase("box_area_batched_2x3", box_area, [proper_boxes(6).reshape(2, 3, 4)],
           reference=ref_area,
           torch_fn=lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])),
    # overlapping, disjoint and nested pairs (continuous coordinates: no kinks near)
    OpCase("box_iou_5x4", box_iou, [proper_boxes(5), proper_boxes(4)], reference=ref_iou,
           torch_fn=_torch_iou),
    OpCase("box_iou_nested", box_iou,
           [np.array([[0.0, 0.0, 4.0, 4.0], [0.3, 0.2, 5.1, 3.3]]),
            np.array([[1.0, 1.1, 2.2, 2.5], [-1.0, -0.5, 6.1, 7.3], [3.3, 3.1, 4.9, 6.2]])],
           reference=ref_iou, torch_fn=_torch_iou),
    OpCase("box_iou_self", lambda a: box_iou(a, a), [proper_boxes(4)],
           reference=lambda a: ref_iou(a, a), torch_fn=lambda a: _torch_iou(a, a)),
    OpCase("box_iou_one_side_constant", box_iou, [proper_boxes(3), proper_boxes(6)],
           reference=ref_iou, torch_fn=_torch_iou, grad=[True, False]),
]
IDS = [str(c) for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reference(case):
    check_reference(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case):
    check_float32(case)


@pytest.mark.skipif(torch is None, reason="torch is the test oracle")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vs_torch_autograd(case):
    check_torch(case)


def test_registry_boxes_overlap():
    """The IoU cases exercise the interesting part: some pairs overlap, some do not."""
    iou = ref_iou(CASES[-4].inputs[0], CASES[-4].inputs[1])
    assert (iou > 0).any() and (iou == 0).any()
    assert np.isclose(ref_iou(*CASES[-3].inputs)[0, 0], 1.2 * 1.4 / 16)  # nested: |small| / |big|


# ----------------------------------------------------------------- hand-computed answers
def test_hand_computed():
    assert np.array_equal(box_convert(np.array([[10.0, 20.0, 4.0, 6.0]]), "cxcywh", "xyxy"),
                          [[8.0, 17.0, 12.0, 23.0]])
    assert np.array_equal(box_convert(np.array([[1.0, 2.0, 4.0, 7.0]]), "xyxy", "xywh"),
                          [[1.0, 2.0, 3.0, 5.0]])
    assert np.array_equal(box_area(np.array([[0.0, 0.0, 2.0, 3.0]])), [6.0])
    iou = box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0]]))
    assert np.isclose(iou[0, 0], 2 / 6)
    keep = nms(np.array([[0.0, 0, 2, 2], [0, 0, 2, 1.9], [5, 5, 6, 6]]),
               np.array([0.9, 0.8, 0.95]), 0.5)
    assert keep.tolist() == [2, 0] and keep.dtype == np.int64


def test_round_trips():
    b = proper_boxes(7)
    for fmt in FORMATS:
        back = box_convert(box_convert(b, "xyxy", fmt), fmt, "xyxy")
        np.testing.assert_allclose(back, b, rtol=1e-12, atol=1e-12)
    same = box_convert(b, "xywh", "xywh")
    assert np.array_equal(same, b) and same is not b and not np.shares_memory(same, b)


@pytest.mark.skipif(torch is None, reason="torch is the test oracle")
def test_iou_gradient_ties_are_shared():
    """Where both boxes give the same corner, each gets half of its gradient (PyTorch's
    rule for max/min ties); identical boxes: d IoU / d box = 0 (IoU stays 1 for any joint
    move, and the halves of the intersection cancel against the union)."""
    a = fb.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=fb.float64, requires_grad=True)
    b = fb.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=fb.float64, requires_grad=True)
    box_iou(a, b).sum().backward()
    ta = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    _torch_iou(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), atol=1e-12)
    # shared left edge only: x1 ties, the other corners do not
    a = fb.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=fb.float64, requires_grad=True)
    box_iou(a, np.array([[0.0, 0.5, 3.0, 1.5]])).sum().backward()
    ta = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    _torch_iou(ta, torch.tensor([[0.0, 0.5, 3.0, 1.5]], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), atol=1e-12)


# ------------------------------------------------------------------------ degenerate boxes
DEGENERATE = np.array([
    [1.0, 1.0, 1.0, 3.0],   # zero width
    [1.0, 1.0, 3.0, 1.0],   # zero height
    [1.0, 1.0, 1.0, 1.0],   # a point
    [3.0, 1.0, 1.0, 3.0],   # inverted width
    [3.0, 3.0, 1.0, 1.0],   # both sides inverted (torchvision: positive area 4)
])


def test_degenerate_area_is_zero():
    assert np.array_equal(box_area(DEGENERATE), np.zeros(5))


def test_degenerate_iou_is_zero_never_nan():
    proper = np.array([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0]])
    both = np.concatenate([DEGENERATE, proper])
    iou = box_iou(both, both)  # pytest's filterwarnings=error: no 0/0 warning either
    assert not np.isnan(iou).any()
    assert np.array_equal(iou[:5], np.zeros((5, 7))) and np.array_equal(iou[:, :5], 0 * iou[:, :5])
    assert np.array_equal(iou[5:, 5:], [[1.0, 0.25], [0.25, 1.0]])
    with np.errstate(all="ignore"):
        assert np.isnan(tv_iou(DEGENERATE[2], DEGENERATE[2]))  # what the policy replaces


def test_degenerate_iou_gradient_is_zero_and_finite():
    d = fb.tensor(DEGENERATE, dtype=fb.float64, requires_grad=True)
    p = fb.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=fb.float64, requires_grad=True)
    (box_iou(d, p).sum() + box_iou(d, d).sum() + box_area(d).sum()).backward()
    assert np.array_equal(d.grad, np.zeros((5, 4)))
    assert np.array_equal(p.grad, np.zeros((1, 4)))


def test_nan_coordinates_propagate():
    iou = box_iou(np.array([[0.0, 0.0, np.nan, 1.0]]), np.array([[0.0, 0.0, 1.0, 1.0]]))
    assert np.isnan(iou).all()


def test_nms_degenerate_boxes_neither_suppressed_nor_suppressing():
    boxes = np.concatenate([DEGENERATE, DEGENERATE, [[0.0, 0.0, 4.0, 4.0]]])
    scores = np.arange(11, dtype=np.float64)
    for thr in (0.0, 0.5):
        keep = nms(boxes, scores, thr)
        assert keep.tolist() == list(range(10, -1, -1))
        assert keep.tolist() == ref_nms(boxes, scores, thr).tolist()  # as torchvision's NaNs


# ----------------------------------------------------------------------------------- NMS
def test_iou_equal_to_threshold_is_kept():
    """Suppression is strictly greater: exact-ratio IoUs (1/3, 1/2, 1/4) at the threshold are
    kept, just below it they are suppressed, in float32 and float64."""
    pairs = [([0, 0, 2, 1], [1, 0, 3, 1], 1 / 3), ([0, 0, 2, 2], [0, 1, 2, 3], 1 / 3),
             ([0, 0, 4, 4], [0, 0, 4, 2], 0.5), ([0, 0, 4, 4], [1, 1, 3, 3], 0.25),
             ([0.25, 0, 0.75, 0.5], [0.5, 0, 1.0, 0.5], 1 / 3)]
    for a, b, iou in pairs:
        for dtype in (np.float32, np.float64):
            boxes = np.array([a, b], dtype)
            scores = np.array([0.5, 0.9], dtype)
            assert nms(boxes, scores, iou).tolist() == [1, 0], (a, b, dtype)
            assert nms(boxes, scores, np.nextafter(iou, 0)).tolist() == [1], (a, b, dtype)
            assert batched_nms(boxes, scores, np.zeros(2, np.int64), iou).tolist() == [1, 0]


def test_ties_keep_the_lower_index():
    boxes = np.array([[0.0, 0, 2, 2]] * 4 + [[10.0, 10, 12, 12]])
    scores = np.array([0.3, 0.7, 0.7, 0.7, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 4]
    assert batched_nms(boxes, scores, np.array([0, 1, 0, 1, 0]), 0.5).tolist() == [1, 2, 4]


@pytest.mark.parametrize("seed", range(12))
def test_nms_random_vs_reference(seed):
    r = np.random.default_rng(seed)
    n = int(r.integers(1, 60))
    boxes = grid_boxes(n, r) if seed % 3 else proper_boxes(n, 0, 8, 0.5, 4, r)
    scores = r.integers(0, 6, n) / 5 if seed % 2 else r.random(n)  # ties when seed is odd
    for thr in (0.0, 0.25, 1 / 3, 0.5, 0.7, 1.0):
        want = ref_nms(boxes, scores, thr)
        got = nms(boxes, scores, thr)
        assert got.dtype == np.int64
        assert got.tolist() == want.tolist(), (seed, thr)
        got32 = nms(boxes.astype(np.float32), scores.astype(np.float32), thr)
        if seed % 3:  # integer coordinates: float32 holds them exactly
            assert got32.tolist() == want.tolist(), (seed, thr)


@pytest.mark.parametrize("seed", range(12))
def test_batched_nms_random_vs_reference(seed):
    r = np.random.default_rng(100 + seed)
    n = int(r.integers(1, 60))
    boxes = grid_boxes(n, r) if seed % 3 else proper_boxes(n, 0, 8, 0.5, 4, r)
    scores = r.integers(0, 6, n) / 5 if seed % 2 else r.random(n)
    idxs = r.integers(0, 1 + seed % 4, n)
    for thr in (0.0, 1 / 3, 0.5, 0.9):
        want = ref_batched_nms(boxes, scores, idxs, thr)
        got = batched_nms(boxes, scores, idxs, thr)
        assert got.tolist() == want.tolist(), (seed, thr)
        if seed % 3 and (boxes >= 0).all():  # exact on integers: the offset trick agrees
            assert got.tolist() == tv_coordinate_trick(boxes, scores, idxs, thr).tolist()


def test_batched_nms_classes_do_not_interact():
    boxes = np.array([[0.0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]])
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, np.array([4, 1, 2], np.uint8), 0.5).tolist() == [0, 1, 2]


def iou_matrix_walk(boxes, scores, thr):
    """A second, vectorised reference for large N: the whole IoU matrix, then the walk."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    over = inter / (area[:, None] + area[None, :] - inter) > thr
    suppressed = np.zeros(len(b), bool)
    keep = []
    for i in range(len(b)):
        if not suppressed[i]:
            keep.append(order[i])
            suppressed |= over[i]
    return np.array(keep, np.int64)


def test_thousands_of_boxes_fast_and_right():
    r = np.random.default_rng(5)
    n = 3000
    sparse = proper_boxes(n, 0, 1000, 1, 10, r)  # few overlaps: one walk step per box
    dense = proper_boxes(n, 0, 200, 20, 80, r)  # many overlaps
    scores = r.random(n)
    for boxes in (sparse, dense):
        start = time.perf_counter()
        keep = nms(boxes, scores, 0.5)
        elapsed = time.perf_counter() - start
        assert keep.tolist() == iou_matrix_walk(boxes, scores, 0.5).tolist()
        # ~0.1 s here; a Python double loop over pairs takes tens of seconds
        assert elapsed < 3.0, elapsed
    start = time.perf_counter()
    batched_nms(sparse, scores, r.integers(0, 10, n), 0.5)
    assert time.perf_counter() - start < 3.0


# ------------------------------------------------------------------ NumPy / Tensor, empty
def test_numpy_in_numpy_out_tensor_in_tensor_out():
    b = proper_boxes(3).astype(np.float32)
    t = fb.tensor(b)
    for out in (box_convert(b, "xyxy", "cxcywh"), box_area(b), box_iou(b, b)):
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
    for out in (box_convert(t, "xyxy", "cxcywh"), box_area(t), box_iou(t, t), box_iou(b, t)):
        assert isinstance(out, fb.Tensor) and out.dtype == np.float32
    assert box_iou(b.astype(np.float64), b).dtype == np.float64
    s = np.array([0.1, 0.2, 0.3], np.float32)
    keep = nms(b, s, 0.5)
    assert isinstance(keep, np.ndarray) and keep.dtype == np.int64
    for args in ((t, s), (b, fb.tensor(s))):
        keep = nms(*args, 0.5)
        assert isinstance(keep, fb.Tensor) and keep.dtype == np.int64
        assert not keep.requires_grad
    keep = batched_nms(b, s, fb.tensor(np.zeros(3, np.int64)), 0.5)
    assert isinstance(keep, fb.Tensor) and keep.dtype == np.int64


def test_integer_boxes_become_float32():
    b = np.array([[0, 0, 2, 2], [1, 0, 3, 2]])
    assert box_area(b).dtype == np.float32
    assert box_convert(b, "xyxy", "cxcywh").dtype == np.float32
    np.testing.assert_allclose(box_convert(b, "xyxy", "cxcywh"), [[1, 1, 2, 2], [2, 1, 2, 2]])
    iou = box_iou(fb.tensor(b), b)
    assert isinstance(iou, fb.Tensor) and iou.dtype == np.float32
    assert np.isclose(iou.numpy()[0, 1], 1 / 3)
    assert nms(b, np.array([1, 2]), 0.3).tolist() == [1]


def test_tensor_gradient_reaches_through_convert_and_iou():
    """A prediction in cxcywh, converted and compared with a target: the gradient flows."""
    pred = fb.tensor([[1.0, 1.0, 2.0, 2.0]], requires_grad=True)
    target = np.array([[0.5, 0.5, 2.5, 2.5]], np.float32)
    loss = (1 - box_iou(box_convert(pred, "cxcywh", "xyxy"), target)).sum()
    loss.backward()
    assert pred.grad is not None and pred.grad.dtype == np.float32
    assert pred.grad[0, 2] < 0 and pred.grad[0, 3] < 0  # growing the box raises the IoU


def test_empty_inputs():
    e = np.zeros((0, 4))
    b = proper_boxes(3)
    assert box_convert(e, "xyxy", "cxcywh").shape == (0, 4)
    assert box_area(e).shape == (0,)
    assert box_iou(e, b).shape == (0, 3) and box_iou(b, e).shape == (3, 0)
    assert box_iou(e, e).shape == (0, 0)
    t = fb.tensor(b, requires_grad=True)
    box_iou(t, e).sum().backward()
    assert np.array_equal(t.grad, np.zeros((3, 4)))
    for keep in (nms(e, np.zeros(0), 0.5), batched_nms(e, np.zeros(0), np.zeros(0, int), 0.5)):
        assert keep.shape == (0,) and keep.dtype == np.int64
    keep = nms(fb.tensor(e), fb.tensor(np.zeros(0)), 0.5)
    assert isinstance(keep, fb.Tensor) and keep.shape == (0,) and keep.dtype == np.int64
    assert nms(b[:1], np.ones(1), 0.5).tolist() == [0]


def test_exported():
    assert fb.ops.box_iou is box_iou and fb.ops.nms is nms
    assert set(fb.ops.__all__) == {"box_convert", "box_area", "box_iou", "nms", "batched_nms"}


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, exc, words", [
    (lambda: box_convert(np.zeros((3, 5)), "xyxy", "xywh"), ValueError,
     ["box_convert", "(N, 4)", "(3, 5)"]),
    (lambda: box_convert(np.zeros(4), "xyxy", "xywh"), ValueError, ["box_convert", "(4,)"]),
    (lambda: box_convert(np.zeros((3, 4)), "xyxy", "yxyx"), ValueError,
     ["box_convert", "out_fmt", "'yxyx'", "'cxcywh'"]),
    (lambda: box_convert(np.zeros((3, 4)), None, "xyxy"), ValueError, ["in_fmt", "None"]),
    (lambda: box_area(np.zeros((2, 3))), ValueError, ["box_area", "(2, 3)"]),
    (lambda: box_area(np.zeros((2, 4), complex)), TypeError, ["box_area", "complex"]),
    (lambda: box_area(np.zeros((2, 4), bool)), TypeError, ["box_area", "bool"]),
    (lambda: box_area("boxes"), TypeError, ["box_area", "str"]),
    (lambda: box_iou(np.zeros((2, 4)), np.zeros((2, 2, 4))), ValueError,
     ["box_iou", "boxes2", "(N, 4)", "(2, 2, 4)"]),
    (lambda: box_iou(None, np.zeros((2, 4))), TypeError, ["box_iou", "boxes1", "NoneType"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros(2), 0.5), ValueError,
     ["nms", "scores", "(3,)", "(2,)"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros((3, 1)), 0.5), ValueError, ["nms", "(3, 1)"]),
    (lambda: nms(np.zeros((3, 3)), np.zeros(3), 0.5), ValueError, ["nms", "boxes", "(3, 3)"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), float("nan")), ValueError,
     ["nms", "iou_threshold", "finite", "nan"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), float("inf")), ValueError, ["finite", "inf"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), "0.5"), TypeError, ["iou_threshold", "str"]),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), True), TypeError, ["iou_threshold", "bool"]),
    (lambda: nms(np.full((1, 4), np.inf), np.zeros(1), 0.5), ValueError, ["nms", "finite"]),
    (lambda: nms(np.zeros((1, 4)), np.full(1, np.nan), 0.5), ValueError, ["nms", "NaN"]),
    (lambda: batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(2, int), 0.5), ValueError,
     ["batched_nms", "idxs", "(3,)", "(2,)"]),
    (lambda: batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(3), 0.5), TypeError,
     ["batched_nms", "idxs", "integers", "float64"]),
    (lambda: batched_nms(np.zeros((3, 4)), np.zeros(3), None, 0.5), TypeError,
     ["batched_nms", "idxs", "None"]),
    (lambda: batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(3, int), math.inf),
     ValueError, ["batched_nms", "iou_threshold"]),
])
def test_errors(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_docstring_examples():
    import doctest

    import filterbank.ops.boxes as module

    names = {n: getattr(module, n) for n in fb.ops.__all__}
    result = doctest.testmod(module, extraglobs={"np": np, **names})
    assert result.attempted >= 5 and result.failed == 0
