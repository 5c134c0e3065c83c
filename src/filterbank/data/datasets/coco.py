"""``CocoDetection``: boxes, labels and polygon masks from a COCO-format ``instances.json`` and
an image folder, so that your own annotated images train filterbank's detectors.

The file (https://cocodataset.org/#format-data, "object detection")::

    {"images":      [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}, ...],
     "annotations": [{"id": 7, "image_id": 1, "category_id": 3,
                      "bbox": [x, y, width, height],                # pixels, top-left corner
                      "segmentation": [[x1, y1, x2, y2, ...], ...], # optional polygons
                      "iscrowd": 0}, ...],                          # optional
     "categories":  [{"id": 3, "name": "cat"}, ...]}

Category ids may be any integers; labels are their positions in increasing id order
(``cat_ids[label]`` is the id, ``cat_id_to_label`` the inverse), so a model sees contiguous
0-based classes. Boxes become ``(x1, y1, x2, y2) = (x, y, x + width, y + height)``.

Masks: each polygon is rasterised with the **even-odd** rule (a pixel, the unit square
``[c, c+1) x [r, r+1)``, is inside when its centre ``(c + 0.5, r + 0.5)`` is crossed by an odd
number of the polygon's edges to its right; a self-intersecting polygon leaves holes where it
overlaps itself), and an object's polygons are joined (union), as pycocotools does. Pixels on
an edge may differ from pycocotools' rasteriser by one. An annotation without segmentation gets
its box as its mask. RLE masks (``{"counts": ..., "size": ...}``, COCO's crowd regions) are not
read: they are an error unless ``rle="skip"`` leaves those annotations out.

Hostile files: the JSON must be a regular file of at most ``max_bytes`` and 100 levels deep;
every field is checked before use (required keys, types, unique ids, known image and category
ids, finite boxes with non-negative sizes inside the image give or take 5% + 1 pixel, then
clipped to it); an image's ``file_name`` must be a relative path below ``root`` with no ``..``
part (links inside ``root`` are followed, as :class:`ImageFolder` does). Every error is one
``ValueError`` line naming the file and the field: ``CocoDetection: data/instances.json:
annotations[3].bbox: expected a list of 4 numbers, got "abc" (a string)``. Images are decoded
lazily, one per item, with Pillow (the ``images`` extra), refusing decompression bombs and
files whose size differs from the declared ``width`` x ``height``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from filterbank.data.dataset import Dataset
from filterbank.data.datasets import image_folder as _image_folder
from filterbank.data.datasets.image_folder import _pil, _size_pair, load_image
from filterbank.serialization import MAX_DEPTH, parse_json, read_regular_file

__all__ = ["CocoDetection", "MAX_COCO_JSON_BYTES", "polygon_mask"]

#: Default size limit of an annotation file (COCO 2017's train instances are ~470 MB).
MAX_COCO_JSON_BYTES = 1 << 30
#: Boxes and polygon points may stick out of their image by this fraction of its size plus
#: one pixel (annotation tools round); further out is an error.
BOUNDS_TOLERANCE = 0.05
_RLE = ("error", "skip")


# ------------------------------------------------------------------------ rasterising
def polygon_mask(polygons: Sequence, height: int, width: int) -> np.ndarray:
    """The union of polygons as an ``(height, width)`` bool mask, each by the even-odd rule.

    Args:
        polygons: a list of flat coordinate lists ``[x1, y1, x2, y2, ...]`` (COCO's
            ``segmentation``) or of ``(V, 2)`` arrays, in pixels.
        height, width: the mask's size.

    Every row's pixel centres are crossed with every edge at once: an edge from ``(x1, y1)``
    to ``(x2, y2)`` crosses the row ``y`` when ``y1 <= y < y2`` (or the reverse; horizontal
    edges never do), at ``x = x1 + (y - y1) (x2 - x1) / (y2 - y1)``; a pixel is inside when
    an odd number of crossings lie to the right of its centre (suffix sums of a per-row
    histogram of crossings).

    Example:
        >>> polygon_mask([[1, 1, 4, 1, 4, 3, 1, 3]], 4, 5).astype(int)
        array([[0, 0, 0, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 0, 0, 0]])
    """
    out = np.zeros((height, width), dtype=bool)
    ys = np.arange(height, dtype=np.float64) + 0.5
    for poly in polygons:
        p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            continue
        q = np.roll(p, -1, axis=0)
        x1, y1, x2, y2 = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
        lo, hi = np.minimum(y1, y2), np.maximum(y1, y2)
        rows = np.flatnonzero((ys >= lo.min()) & (ys < hi.max()))
        if len(rows) == 0:
            continue
        y = ys[rows, None]  # (R, 1) against (E,) edges
        crosses = (y >= lo) & (y < hi)
        dy = np.where(y2 != y1, y2 - y1, 1.0)
        x = x1 + (y - y1) * (x2 - x1) / dy
        # pixel c's centre c + 0.5 lies left of x for c < ceil(x - 0.5): count those
        k = np.clip(np.ceil(x - 0.5), 0, width).astype(np.int64)
        r_idx, e_idx = np.nonzero(crosses)
        hist = np.zeros((len(rows), width + 1), dtype=np.int64)
        np.add.at(hist, (r_idx, k[r_idx, e_idx]), 1)
        right = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # crossings with k > c
        out[rows] |= (right % 2).astype(bool)
    return out


# ------------------------------------------------------------------------- validation
def _fail(where: str, field: str, message: str):
    raise ValueError(f"{where}: {field}: {message}")


def _check_name(where: str, field: str, name: str) -> None:
    posix, win = PurePosixPath(name), PureWindowsPath(name)
    if not name or "\x00" in name:
        _fail(where, field, f"expected a file name, got {name!r}")
    if posix.is_absolute() or win.is_absolute() or win.drive or name.startswith(("/", "\\")):
        _fail(where, field, f"expected a path relative to the image folder, got the absolute "
                            f"path {name!r}")
    if ".." in posix.parts or ".." in win.parts:
        _fail(where, field, f"expected a path inside the image folder, got {name!r} (a '..' "
                            f"part leads out of it)")


def _in_bounds(values: np.ndarray, size: float) -> bool:
    slack = BOUNDS_TOLERANCE * size + 1
    return bool(np.all(np.isfinite(values)) and np.all(values >= -slack)
                and np.all(values <= size + slack))


def _parse(obj, where: str, rle: str):
    from filterbank.train.schema import INT, NUMBER, POSITIVE, STR, ListOf, Obj, validate

    validate(obj, Obj("a COCO instances object", {
        "images": ListOf(Obj("an image object", {"id": INT, "file_name": STR,
                                                 "width": POSITIVE, "height": POSITIVE})),
        "annotations": ListOf(Obj("an annotation object", {
            "image_id": INT, "category_id": INT,
            "bbox": ListOf(NUMBER, "a list of 4 numbers [x, y, width, height]", length=4)},
            {"iscrowd": INT})),
        "categories": ListOf(Obj("a category object", {"id": INT}, {"name": STR}),
                             min_length=1),
    }), where)
    images, image_index = obj["images"], {}
    for i, im in enumerate(images):
        if im["id"] in image_index:
            _fail(where, f"images[{i}].id", f"duplicate image id {im['id']} (also "
                                            f"images[{image_index[im['id']]}])")
        image_index[im["id"]] = i
        limit = _image_folder.MAX_IMAGE_PIXELS
        if im["width"] * im["height"] > limit:
            _fail(where, f"images[{i}]", f"{im['width']}x{im['height']} is more than "
                                         f"MAX_IMAGE_PIXELS = {limit:,} pixels")
        _check_name(where, f"images[{i}].file_name", im["file_name"])
    cat_ids: dict[int, int] = {}
    for i, c in enumerate(obj["categories"]):
        if c["id"] in cat_ids:
            _fail(where, f"categories[{i}].id", f"duplicate category id {c['id']}")
        cat_ids[c["id"]] = i
    per_image: list[list] = [[] for _ in images]
    skipped = 0
    for i, a in enumerate(obj["annotations"]):
        field = f"annotations[{i}]"
        if a["image_id"] not in image_index:
            _fail(where, f"{field}.image_id", f"unknown image id {a['image_id']} (not in "
                                              f"images)")
        if a["category_id"] not in cat_ids:
            _fail(where, f"{field}.category_id", f"unknown category id {a['category_id']} "
                                                 f"(not in categories)")
        im = images[image_index[a["image_id"]]]
        w, h = im["width"], im["height"]
        try:
            x, y, bw, bh = (float(v) for v in a["bbox"])
        except OverflowError:  # an integer literal beyond float range
            x = y = bw = bh = math.inf
        if not all(math.isfinite(v) for v in (x, y, bw, bh)) or bw < 0 or bh < 0:
            _fail(where, f"{field}.bbox", f"expected finite [x, y, width, height] with width, "
                                          f"height >= 0, got {a['bbox']}")
        if not (_in_bounds(np.array([x, x + bw]), w) and _in_bounds(np.array([y, y + bh]), h)):
            _fail(where, f"{field}.bbox", f"{a['bbox']} lies outside its {w}x{h} image "
                                          f"(images[{image_index[a['image_id']]}])")
        seg = a.get("segmentation")
        polygons = None
        if isinstance(seg, dict):
            if rle == "skip":
                skipped += 1
                continue
            _fail(where, f"{field}.segmentation", "RLE masks ({\"counts\", \"size\"}) are not "
                                                  "supported; convert them to polygons, drop "
                                                  "the field, or pass rle='skip'")
        elif seg is not None and seg != []:
            if not isinstance(seg, list) or not all(isinstance(p, list) for p in seg):
                _fail(where, f"{field}.segmentation", f"expected a list of polygons [[x1, y1, "
                                                      f"x2, y2, ...], ...], got "
                                                      f"{type(seg).__name__}")
            polygons = []
            for j, p in enumerate(seg):
                ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
                try:
                    arr = np.asarray(p, dtype=np.float64) if ok else None
                except OverflowError:
                    arr = np.full(len(p), np.inf)
                if arr is None or len(p) < 6 or len(p) % 2:
                    _fail(where, f"{field}.segmentation[{j}]", f"expected an even number (>= 6)"
                                                               f" of numbers x1, y1, x2, y2, "
                                                               f"..., got {str(p)[:40]}")
                if not (_in_bounds(arr[0::2], w) and _in_bounds(arr[1::2], h)):
                    _fail(where, f"{field}.segmentation[{j}]", f"points outside the {w}x{h} "
                                                               f"image or not finite")
                polygons.append(arr)
        box = [min(max(x, 0.0), w), min(max(y, 0.0), h), min(max(x + bw, 0.0), w),
               min(max(y + bh, 0.0), h)]
        per_image[image_index[a["image_id"]]].append(
            (box, cat_ids[a["category_id"]], polygons, int(a.get("iscrowd", 0))))
    return images, obj["categories"], per_image, skipped


# --------------------------------------------------------------------------- data set
class CocoDetection(Dataset):
    """Images and their annotations from a COCO ``instances.json``; images read lazily.

    Item ``i`` (the ``i``-th entry of ``images``) is ``(image, target)``:

    - ``image``: ``(C, H, W)`` float32 in ``[0, 1]`` (C = 3 for ``mode="RGB"``, 1 for
      ``"L"``), resized to ``size`` if given, then ``transform``;
    - ``target["boxes"]``: ``(K, 4)`` float32 ``(x1, y1, x2, y2)`` pixels (scaled with the
      image), clipped to the image; ``target["labels"]``: ``(K,)`` int64 contiguous labels;
    - ``target["masks"]``: ``(K, H, W)`` bool, one per object (polygons, or the box);
      ``target["mask"]``: ``(H, W)`` int64, label + 1 of the last annotation covering each
      pixel, 0 elsewhere (as :class:`~filterbank.data.datasets.Shapes`); both only with
      ``masks=True``;
    - ``target["iscrowd"]``: ``(K,)`` int64; ``target["image_id"]``: the image's id.

    Annotations keep their order in the file. Images without annotations are kept (K = 0).
    Batch with :func:`~filterbank.data.datasets.collate_detection` (images must share a size:
    pass ``size``).

    Args:
        root: the folder that holds the images (``file_name`` is relative to it).
        annotation_file: the ``instances.json``.
        transform: applied to each image; it must not move pixels (boxes are not changed).
        target_transform: applied to each target dict.
        masks: rasterise the polygon masks (False: boxes and labels only, faster).
        size: ``(h, w)`` (or an int) to resize every image to (Pillow's bilinear filter),
            with boxes and polygons scaled to match; None keeps each image's size.
        mode: ``"RGB"`` or ``"L"``.
        rle: ``"error"`` (default) or ``"skip"`` for annotations with RLE masks.
        max_bytes: largest annotation file accepted.

    Attributes:
        classes: category names in label order; ``num_classes``; ``cat_ids``: category id
        of each label; ``cat_id_to_label``; ``ids``: image ids in item order; ``skipped_rle``:
        the number of annotations ``rle="skip"`` left out.

    Raises:
        ValueError: a file or field that breaks the rules above (one line naming the file
            and the field).
        FileNotFoundError: no annotation file.

    Example:
        >>> ds = CocoDetection("photos", "photos/instances.json", size=128)  # doctest: +SKIP
        >>> image, target = ds[0]  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, annotation_file: str | os.PathLike,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 masks: bool = True, size: int | tuple[int, int] | None = None,
                 mode: str = "RGB", rle: str = "error", max_bytes: int = MAX_COCO_JSON_BYTES):
        if mode not in ("RGB", "L"):
            raise ValueError(f"CocoDetection: mode must be 'RGB' or 'L', got {mode!r}")
        if rle not in _RLE:
            raise ValueError(f"CocoDetection: rle must be one of {_RLE}, got {rle!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"CocoDetection: max_bytes must be a positive int, got "
                             f"{max_bytes!r}")
        for name, f in (("transform", transform), ("target_transform", target_transform)):
            if f is not None and not callable(f):
                raise TypeError(f"CocoDetection: {name} must be callable or None, got "
                                f"{type(f).__name__}")
        self.size = _size_pair(size, "CocoDetection")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"CocoDetection: root {str(root)!r} is not a folder")
        self.annotation_file = Path(annotation_file)
        where = f"CocoDetection: {annotation_file}"
        try:
            data = read_regular_file(annotation_file, max_bytes, ValueError,
                                     "COCO annotation file (max_bytes=)")
        except ValueError as e:
            raise ValueError(f"CocoDetection: {e}") from None
        obj = parse_json(data, where, ValueError, MAX_DEPTH)
        del data
        images, categories, per_image, skipped = _parse(obj, where, rle)
        order = sorted(range(len(categories)), key=lambda i: categories[i]["id"])
        self.cat_ids = [categories[i]["id"] for i in order]
        self.classes = [categories[i].get("name", str(categories[i]["id"])) for i in order]
        self.cat_id_to_label = {c: label for label, c in enumerate(self.cat_ids)}
        remap = {i: label for label, i in enumerate(order)}  # file position -> label
        self._images = [(im["id"], im["file_name"], im["width"], im["height"]) for im in images]
        self._annotations = [[(box, remap[c], polys, crowd) for box, c, polys, crowd in anns]
                             for anns in per_image]
        self.ids = [im[0] for im in self._images]
        self.skipped_rle = skipped
        self.masks, self.mode = bool(masks), mode
        self.transform, self.target_transform = transform, target_transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self._images)

    def _load(self, index: int) -> np.ndarray:
        image_id, name, w, h = self._images[index]
        path = self.root / name
        arr = load_image(path, self.mode)
        if arr.shape[:2] != (h, w):
            raise ValueError(f"CocoDetection: {path}: the image is {arr.shape[1]}x"
                             f"{arr.shape[0]}, but {self.annotation_file} declares "
                             f"{w}x{h} (image id {image_id})")
        if self.size is not None and self.size != (h, w):
            image_mod = _pil()
            img = image_mod.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
            arr = np.asarray(img.resize((self.size[1], self.size[0]),
                                        image_mod.Resampling.BILINEAR))
            arr = arr[..., None] if arr.ndim == 2 else arr
        return arr.transpose(2, 0, 1).astype(np.float32) / np.float32(255)

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"CocoDetection: index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"CocoDetection: index {index} out of range for {len(self)} "
                             f"images")
        index = int(index) % len(self)
        image = self._load(index)
        target = self.target(index)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def target(self, index: int) -> dict:
        """The target of item ``index`` without reading its image (no transforms)."""
        image_id, _, w, h = self._images[index]
        out_h, out_w = self.size if self.size is not None else (h, w)
        sx, sy = out_w / w, out_h / h
        anns = self._annotations[index]
        scale = np.array([sx, sy, sx, sy])
        boxes = (np.array([a[0] for a in anns], dtype=np.float64).reshape(-1, 4) * scale)
        target = {"boxes": boxes.astype(np.float32),
                  "labels": np.array([a[1] for a in anns], dtype=np.int64),
                  "iscrowd": np.array([a[3] for a in anns], dtype=np.int64),
                  "image_id": np.int64(image_id)}
        if self.masks:
            masks = np.zeros((len(anns), out_h, out_w), dtype=bool)
            semantic = np.zeros((out_h, out_w), dtype=np.int64)
            for k, (_box, label, polygons, _) in enumerate(anns):
                if polygons is None:  # the box: pixels whose centres lie inside it
                    x1, y1, x2, y2 = boxes[k]
                    cols = (np.arange(out_w) + 0.5 >= x1) & (np.arange(out_w) + 0.5 < x2)
                    rows = (np.arange(out_h) + 0.5 >= y1) & (np.arange(out_h) + 0.5 < y2)
                    masks[k] = rows[:, None] & cols[None, :]
                else:
                    scaled = [(p.reshape(-1, 2) * (sx, sy)) for p in polygons]
                    masks[k] = polygon_mask(scaled, out_h, out_w)
                semantic[masks[k]] = label + 1
            target["masks"], target["mask"] = masks, semantic
        return target

    def __repr__(self) -> str:
        return (f"CocoDetection(root={str(self.root)!r}, images={len(self)}, "
                f"classes={self.num_classes})")
