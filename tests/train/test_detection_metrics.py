"""mean_average_precision: agreement with pycocotools' COCOeval and hand-computed cases."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import filterbank as fb
from filterbank.train.metrics import mean_average_precision

H = 220.0  # random boxes live in [0, H)^2: small, medium and large by COCO's areas


def _cocoeval(preds, targets, iou_thr=None, rec_thr=None, max_det=100, area_rng=None):
    """COCOeval on in-memory COCO dicts (xywh boxes; ids from 1; area = box area)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reason = "pycocotools (the test oracle) cannot be imported: pip install -e '.[dev]'"
        coco = pytest.importorskip("pycocotools.coco", reason=reason, exc_type=ImportError)
        cocoeval = pytest.importorskip("pycocotools.cocoeval", reason=reason,
                                       exc_type=ImportError)
    images = [{"id": i + 1} for i in range(len(targets))]
    anns, dets, cats = [], [], set()
    for i, t in enumerate(targets):
        for b, lab in zip(np.asarray(t["boxes"], float).reshape(-1, 4), t["labels"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(lab),
                         "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
            cats.add(int(lab))
    for i, p in enumerate(preds):
        for b, s, lab in zip(np.asarray(p["boxes"], float).reshape(-1, 4), p["scores"],
                             p["labels"]):
            dets.append({"image_id": i + 1, "category_id": int(lab), "score": float(s),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
            cats.add(int(lab))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        gt = coco.COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": c} for c in sorted(cats)]}
        gt.createIndex()
        ev = cocoeval.COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.params.maxDets = sorted({1, 10, max_det})
        if iou_thr is not None:
            ev.params.iouThrs = np.asarray(iou_thr, float)
        if rec_thr is not None:
            ev.params.recThrs = np.asarray(rec_thr, float)
        if area_rng is not None:
            ev.params.areaRngLbl = list(area_rng)
            ev.params.areaRng = [list(v) for v in area_rng.values()]
        ev.evaluate()
        ev.accumulate()
        if iou_thr is None and rec_thr is None and area_rng is None and max_det == 100:
            ev.summarize()
    m = ev.params.maxDets.index(max_det)
    ev.precision, ev.recall = ev.eval["precision"][..., m], ev.eval["recall"][..., m]
    return ev


def _random_set(seed, n_images=8, n_classes=5):
    """GT with jittered detections around it (matches at many IoUs), false positives,
    quantised scores (ties), an image without GT, a class without detections (class 5 only
    in GT), a class without GT (class 9 only in detections) and an image with more than 100
    detections (150 of class 0, 60 of class 1)."""
    g = np.random.default_rng(seed)
    preds, targets = [], []

    def boxes(n):
        xy = g.uniform(0, H - 20, (n, 2))
        wh = g.uniform(3, 150, (n, 2)) * g.choice([0.15, 0.5, 1.0], (n, 1))
        return np.concatenate([xy, xy + wh], axis=1)

    for i in range(n_images):
        n_gt = 0 if i == 2 else int(g.integers(1, 7))
        gb, gl = boxes(n_gt), g.integers(0, n_classes, n_gt)
        db, dl = [], []
        for b, lab in zip(gb, gl):
            for _ in range(int(g.integers(0, 3))):
                size = np.r_[b[2:] - b[:2], b[2:] - b[:2]]
                db.append(b + g.normal(0, 0.12, 4) * size)
                dl.append(lab if g.random() < 0.85 else g.integers(0, n_classes))
        n_fp = int(g.integers(0, 4))
        db.extend(boxes(n_fp))
        dl.extend(g.integers(0, n_classes, n_fp))
        if i == 3:
            db.extend(boxes(2))
            dl.extend([9, 9])
        if i == 4:
            gb = np.concatenate([gb, boxes(2)])
            gl = np.concatenate([gl, [5, 5]])
        if i == 5:
            extra = np.concatenate([gb[:1] + g.normal(0, 3, (150, 4)), boxes(60)]) \
                if len(gb) else boxes(210)
            db.extend(extra)
            dl.extend([0] * 150 + [1] * 60)
        db = np.array(db, float).reshape(-1, 4)
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2])  # keep x1 <= x2
        scores = np.round(g.random(len(db)), 1)  # few distinct values: many ties
        preds.append({"boxes": db, "scores": scores, "labels": np.array(dl, np.int64)})
        targets.append({"boxes": gb, "labels": np.array(gl, np.int64)})
    return preds, targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_cocoeval_on_random_sets(seed):
    preds, targets = _random_set(seed)
    ev = _cocoeval(preds, targets)
    r = mean_average_precision(preds, targets)
    assert list(r["classes"]) == ev.params.catIds
    np.testing.assert_allclose(r["precision"], ev.precision, atol=1e-6, rtol=0)
    np.testing.assert_allclose(r["recall"], ev.recall, atol=1e-6, rtol=0)
    got = [r[k] for k in ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")]
    np.testing.assert_allclose(got, ev.stats[:6], atol=1e-6, rtol=0)
    assert r["mar"] == pytest.approx(ev.stats[8], abs=1e-6)
    # the set exercises what it claims to: matches, undefined classes, a class without dets
    assert 0.05 < r["map"] < 0.95
    assert r["map_per_class"][list(r["classes"]).index(9)] == -1
    assert r["map_per_class"][list(r["classes"]).index(5)] == 0
    per_class = ev.precision[:, :, :, 0]
    ref = [per_class[:, :, k].mean() if (per_class[:, :, k] > -1).all() else -1
           for k in range(per_class.shape[2])]
    np.testing.assert_allclose(r["map_per_class"], ref, atol=1e-6, rtol=0)
    for k, c in enumerate(r["classes"]):
        if ref[k] > -1:
            np.testing.assert_allclose(r["pr_curve"][int(c)]["precision"],
                                       ev.precision[0, :, k, 0], atol=1e-6)
        else:
            assert int(c) not in r["pr_curve"]


def test_agrees_with_cocoeval_with_custom_parameters():
    preds, targets = _random_set(3)
    iou_thr = [0.3, 0.5, 0.6, 0.75, 0.9]
    rec_thr = np.linspace(0, 1, 11)
    areas = {"all": (0, 1e10), "tiny": (0, 20.0 ** 2), "big": (20.0 ** 2, 60.0 ** 2),
             "huge": (60.0 ** 2, 1e10)}
    ev = _cocoeval(preds, targets, iou_thr, rec_thr, max_det=4, area_rng=areas)
    r = mean_average_precision(preds, targets, iou_thresholds=iou_thr, rec_thresholds=rec_thr,
                               max_detections=4, area_ranges=areas)
    np.testing.assert_allclose(r["precision"], ev.precision, atol=1e-6, rtol=0)
    np.testing.assert_allclose(r["recall"], ev.recall, atol=1e-6, rtol=0)
    p = ev.precision[..., 0]
    assert r["map"] == pytest.approx(p[p > -1].mean(), abs=1e-6)
    for a, name in enumerate(areas):
        if name != "all":
            pa = ev.precision[..., a]
            assert r[f"map_{name}"] == pytest.approx(pa[pa > -1].mean(), abs=1e-6)
    assert r["area_ranges"] == list(areas)


def one(boxes, labels, scores=None):
    d = {"boxes": np.array(boxes, float).reshape(-1, 4), "labels": np.array(labels, np.int64)}
    if scores is not None:
        d["scores"] = np.array(scores, float)
    return d


SQ = [0, 0, 10, 10]


def test_hand_computed_tp_fp_sequence():
    # 3 GT, detections TP FP TP FP TP by score: precision 1 .5 .67 .5 .6, recall 1/3 .. 1;
    # monotone 1 .67 .67 .6 .6; at recall r = 0..0.33 (34 points) 1, 0.34..0.66 (33) 2/3,
    # 0.67..1 (34) 0.6
    gts = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]
    dets = [gts[0], [100, 100, 110, 110], gts[1], [200, 200, 210, 210], gts[2]]
    r = mean_average_precision([one(dets, [0] * 5, [0.9, 0.8, 0.7, 0.6, 0.5])],
                               [one(gts, [0] * 3)])
    expected = (34 * 1 + 33 * 2 / 3 + 34 * 0.6) / 101
    assert r["map"] == pytest.approx(expected, abs=1e-12)
    assert r["map_50"] == pytest.approx(expected, abs=1e-12)
    assert r["mar"] == pytest.approx(1.0)
    assert r["map_small"] == pytest.approx(expected)  # 10x10 boxes are all small
    assert r["map_medium"] == -1 and r["map_large"] == -1


def test_hand_computed_iou_thresholds():
    # IoU 0.62: a TP at 0.50, 0.55, 0.60 and a FP at the 7 higher thresholds
    r = mean_average_precision([one([[0, 0, 10, 6.2]], [1], [0.5])], [one([SQ], [1])])
    assert r["map"] == pytest.approx(0.3)
    assert r["map_50"] == pytest.approx(1.0) and r["map_75"] == 0.0
    # thresholds not containing 0.5 or 0.75 still give map_50, map_75 and the curves
    r = mean_average_precision([one([[0, 0, 10, 6.2]], [1], [0.5])], [one([SQ], [1])],
                               iou_thresholds=[0.6, 0.7])
    assert r["map"] == pytest.approx(0.5)
    assert r["map_50"] == pytest.approx(1.0) and r["map_75"] == 0.0
    np.testing.assert_allclose(r["pr_curve"][1]["precision"], np.ones(101))
    assert r["precision"].shape == (2, 101, 1, 4)
    # IoU exactly 0.5 passes the 0.5 threshold (IoU >= t)
    r = mean_average_precision([one([[0, 0, 10, 5]], [1], [0.5])], [one([SQ], [1])])
    assert r["map_50"] == pytest.approx(1.0) and r["map"] == pytest.approx(0.1)


def test_stable_order_of_tied_scores_across_images():
    # equal scores: image 1's FP comes before image 2's TP (COCO's mergesort): precision 0
    # then 1/2, AP 0.5; the other order would give 1
    preds = [one([[50, 50, 60, 60]], [0], [0.5]), one([SQ], [0], [0.5])]
    targets = [one([], []), one([SQ], [0])]
    assert mean_average_precision(preds, targets)["map"] == pytest.approx(0.5)
    assert mean_average_precision(preds[::-1], targets[::-1])["map"] == pytest.approx(1.0)
    ev = _cocoeval(preds, targets)
    assert ev.stats[0] == pytest.approx(0.5)


def test_greedy_matching_by_score_to_the_best_unmatched_gt():
    # two GT; the higher-scored detection overlaps both and takes the better one (IoU 1 with
    # gt 0); the second detection then only has gt 1 left, at IoU 0.68: TP at 0.5..0.65
    gts = [[0, 0, 10, 10], [0, 0, 10, 6.8]]
    dets = [[0, 0, 10, 10], [0, 0, 10, 10]]
    r = mean_average_precision([one(dets, [0, 0], [0.9, 0.8])], [one(gts, [0, 0])])
    # thresholds 0.5..0.65 (4): AP 1; 0.7..0.95 (6): recall 1/2 at precision 1: 51 points
    assert r["map"] == pytest.approx((4 * 1 + 6 * 51 / 101) / 10)


def test_equal_ious_go_to_the_last_ground_truth_as_coco():
    # det 1 overlaps gt A and gt B with IoU 1/3 each and takes B (COCO keeps the last of equal
    # IoUs); det 2, exactly B, then finds B taken: TP, FP, recall 1/2 -> AP 51/101 at IoU 0.3
    # (taking A would leave B to det 2: AP 1)
    gts = [[0, 0, 10, 10], [10, 0, 20, 10]]
    preds = [one([[5, 0, 15, 10], [10, 0, 20, 10]], [0, 0], [0.9, 0.8])]
    r = mean_average_precision(preds, [one(gts, [0, 0])], iou_thresholds=[0.3])
    assert r["map"] == pytest.approx(51 / 101)
    ev = _cocoeval(preds, [one(gts, [0, 0])], iou_thr=[0.3])
    np.testing.assert_allclose(r["precision"], ev.precision, atol=1e-6, rtol=0)

def test_max_detections_per_image_and_class():
    # the true positive is class 0's third detection in the image: cut off by
    # max_detections=2, kept with 3; class 1's detections do not count against class 0's limit
    dets = [[50, 50, 60, 60], [70, 70, 80, 80], SQ, [90, 90, 95, 95], [0, 20, 5, 25]]
    preds = [one(dets, [0, 0, 0, 1, 1], [0.9, 0.8, 0.7, 0.95, 0.99])]
    targets = [one([SQ], [0])]
    r = mean_average_precision(preds, targets, max_detections=2)
    assert r["map"] == 0.0
    r = mean_average_precision(preds, targets, max_detections=3)
    assert r["map"] == pytest.approx(1 / 3)  # FP FP TP: precision 1/3 at every recall
    assert list(r["classes"]) == [0, 1] and list(r["map_per_class"]) == [r["map"], -1]


def test_area_range_ignores_gt_outside_it():
    # small range (<= 32^2): the 50x50 GT is ignored, and its detection (matched to it) is
    # neither TP nor FP; the small GT is found
    gts = [[0, 0, 50, 50], [100, 100, 110, 110]]
    dets = [[0, 0, 50, 50], [100, 100, 110, 110]]
    r = mean_average_precision([one(dets, [0, 0], [0.9, 0.1])], [one(gts, [0, 0])])
    assert r["map"] == pytest.approx(1.0) and r["map_small"] == pytest.approx(1.0)
    assert r["map_medium"] == pytest.approx(1.0)
    assert r["map_large"] == -1
    # an unmatched large detection is ignored in 'small' but is a FP in 'all'
    dets2 = [[0, 0, 100, 100], [100, 100, 110, 110]]
    r = mean_average_precision([one(dets2, [0, 0], [0.9, 0.1])], [one(gts[1:], [0])])
    assert r["map_small"] == pytest.approx(1.0)
    assert r["map"] == pytest.approx(0.5)  # FP then TP: precision 1/2 at every recall


def test_area_range_prefers_a_ground_truth_inside_it_and_includes_the_bounds():
    # S (30x30, small) and L (34x34, medium); the detection has IoU 0.826 with S and 0.942
    # with L. In 'small' it takes S at thresholds <= 0.8 though L overlaps more (L is
    # ignored there): AP 1 at 7 of 10 thresholds. In 'medium' it takes L up to 0.9. In
    # 'all' it takes L (the higher IoU), so S is missed: AP 51/101 at 9 thresholds
    gts, det = [[0, 0, 30, 30], [0, 0, 34, 34]], [[0, 0, 33, 33]]
    preds, targets = [one(det, [0], [0.9])], [one(gts, [0, 0])]
    r = mean_average_precision(preds, targets)
    assert r["map_small"] == pytest.approx(0.7)
    assert r["map_medium"] == pytest.approx(0.9)
    assert r["map"] == pytest.approx(0.9 * 51 / 101)
    # bounds are included: a 32x32 box is both small and medium, as in COCO
    r32 = mean_average_precision([one([[0, 0, 32, 32]], [0], [0.9])],
                                 [one([[0, 0, 32, 32]], [0])])
    assert r32["map_small"] == pytest.approx(1.0) and r32["map_medium"] == pytest.approx(1.0)
    assert r32["map_large"] == -1
    ev = _cocoeval(preds, targets)
    np.testing.assert_allclose(r["precision"], ev.precision, atol=1e-6, rtol=0)

def test_classes_and_images_without_ground_truth_or_detections():
    preds = [one([SQ], [3], [0.9]), one([], [], []), one([SQ], [0], [0.4])]
    targets = [one([], []), one([SQ], [2]), one([SQ], [0])]
    r = mean_average_precision(preds, targets)
    assert list(r["classes"]) == [0, 2, 3]
    np.testing.assert_allclose(r["map_per_class"], [1.0, 0.0, -1.0])
    assert r["map"] == pytest.approx(0.5) and set(r["pr_curve"]) == {0, 2}
    empty = mean_average_precision([one([], [], [])], [one([], [])])
    assert empty["map"] == -1 and empty["classes"].size == 0
    assert mean_average_precision([], [])["map"] == -1


def test_tensors_and_lists_give_the_same_result():
    preds, targets = _random_set(4, n_images=4)
    ref = mean_average_precision(preds, targets)
    tp = [{k: fb.Tensor(v) for k, v in p.items()} for p in preds]
    tt = [{k: v.tolist() for k, v in t.items()} for t in targets]
    assert mean_average_precision(tp, tt)["map"] == pytest.approx(ref["map"], abs=1e-6)


@pytest.mark.parametrize("preds, targets, match", [
    ([one([SQ], [0], [1])], [one([[5, 0, 1, 10]], [0])], r"targets\[0\]\['boxes'\]\[0\].*x2 < x1"),
    ([one([[0, 5, 10, 1]], [0], [1])], [one([SQ], [0])], r"preds\[0\].*y2 < y1"),
    ([one([SQ], [0], [1])], [], "1 images in preds but 0 in targets"),
    ([{"boxes": np.zeros((1, 4)), "labels": [0]}], [one([SQ], [0])], "no 'scores'"),
    ([one([SQ], [0], [1])], [{"boxes": np.zeros((1, 3)), "labels": [0]}], r"shape \(N, 4\)"),
    ([one([SQ], [0], [1])], [one([SQ], [0, 1])], "1 boxes but 2 labels"),
    ([one([SQ], [0], [np.nan])], [one([SQ], [0])], "non-finite"),
])
def test_bad_input_is_named(preds, targets, match):
    with pytest.raises(ValueError, match=f"mean_average_precision: .*{match}"):
        mean_average_precision(preds, targets)


def test_bad_arguments_are_named():
    p, t = [one([SQ], [0], [1])], [one([SQ], [0])]
    with pytest.raises(TypeError, match="integer class labels"):
        mean_average_precision(p, [{"boxes": [SQ], "labels": [0.5]}])
    with pytest.raises(TypeError, match="one dict per image"):
        mean_average_precision(p[0], t[0])
    with pytest.raises(ValueError, match="max_detections must be an int >= 1, got 0"):
        mean_average_precision(p, t, max_detections=0)
    with pytest.raises(ValueError, match="iou_thresholds"):
        mean_average_precision(p, t, iou_thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="area_ranges"):
        mean_average_precision(p, t, area_ranges={"small": (100, 0)})
