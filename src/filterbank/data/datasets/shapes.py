"""``Shapes``: a synthetic detection and segmentation data set, generated on the fly.

Every image holds a few coloured shapes (circles, squares, triangles, ellipses, crosses, and
optionally diamonds and stars) of random size, colour, position and orientation on a textured
background (a smooth two-colour gradient plus a few low-frequency waves), with Gaussian pixel
noise over everything. Nothing is stored: sample ``i`` is drawn from its own generator,
``np.random.default_rng([seed, split, i])`` (split 0 for ``train=True``, 1 for the test
split), so it is the same whatever order, process or batch it is read in, and the two splits
never share an image.

Geometry (pixels, as everywhere in filterbank's box code): pixel ``(row r, column c)`` is the
unit square ``[c, c+1) x [r, r+1)`` and belongs to a shape when its centre ``(c + 0.5,
r + 0.5)`` does. A shape's *size* is the diameter of the circle it is drawn inside (so every
kind of a given size fits the same disc); whole shapes always lie inside the image.

Occlusion: shapes are painted in order, a later one over the earlier ones. The class mask shows
the shape that is visible at each pixel; a box is the bounding box of its shape's *whole*
raster, also where another shape hides part of it (``(x1, y1, x2, y2) = (min c, min r,
max c + 1, max r + 1)``, so a box is always tight around whole pixels). A new shape that would
leave an earlier one with less than ``min_visible`` of its pixels visible is placed again
elsewhere (up to 20 tries, else left out), so every labelled object keeps at least that
fraction in view; rarely, a crowded image ends up with fewer than ``min_objects`` shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from filterbank.data.dataset import Dataset
from filterbank.data.loader import collate_numpy

__all__ = ["SHAPE_KINDS", "Shapes", "StandardShapes", "collate_detection"]

#: Every shape kind :class:`Shapes` can draw.
SHAPE_KINDS = ("circle", "square", "triangle", "ellipse", "cross", "diamond", "star")
#: The kinds drawn by default (class ``i`` is ``DEFAULT_SHAPES[i]``).
DEFAULT_SHAPES = ("circle", "square", "triangle", "ellipse", "cross")
#: Target keys that hold one entry per object; :func:`collate_detection` keeps them as lists.
PER_OBJECT_KEYS = frozenset({"boxes", "labels", "masks", "iscrowd", "area"})
_MAX_TRIES = 20
_MIN_SIZE_PX = 4.0


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


# ----------------------------------------------------------------------- rasterising
def _polygon_inside(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Pixel centres ``(px, py)`` inside the convex polygon ``verts`` (V, 2): on the inner
    side of every edge's half-plane (edges count as inside)."""
    x0, y0 = verts[:, 0, None, None], verts[:, 1, None, None]
    nxt = np.roll(verts, -1, axis=0)
    dx, dy = nxt[:, 0, None, None] - x0, nxt[:, 1, None, None] - y0
    cross = dx * (py - y0) - dy * (px - x0)  # (V, h, w)
    x, y = verts[:, 0], verts[:, 1]
    orientation = 1.0 if np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) >= 0 else -1.0
    return np.all(orientation * cross >= -1e-9, axis=0)


def _rotated(points: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    x, y = points[:, 0], points[:, 1]
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _regular(n: int, radius: float, angle: float, cx: float, cy: float) -> np.ndarray:
    t = angle + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _geometry(kind: str, cx: float, cy: float, r: float, g: np.random.Generator) -> dict:
    """The shape's parameters: ``polygons`` (a union of convex polygons, each (V, 2) in
    pixels) or an ``ellipse`` (semi-axes and angle); ``vertices`` for polygon kinds."""
    angle = float(g.uniform(0, 2 * np.pi))
    geo: dict = {"angle": angle}
    if kind == "circle":
        geo["ellipse"] = (r, r, 0.0)
    elif kind == "ellipse":
        geo["ellipse"] = (r, r * float(g.uniform(0.4, 0.65)), angle)
    elif kind == "square":  # axis-aligned, to stay distinct from the diamond
        a = r / math.sqrt(2)
        geo["vertices"] = np.array([[cx - a, cy - a], [cx + a, cy - a], [cx + a, cy + a],
                                    [cx - a, cy + a]])
        geo["polygons"] = [geo["vertices"]]
    elif kind == "diamond":
        geo["vertices"] = np.array([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]])
        geo["polygons"] = [geo["vertices"]]
    elif kind == "triangle":  # near-equilateral: vertex angles jittered by up to 0.25 rad
        t = angle + 2 * np.pi * np.arange(3) / 3 + g.uniform(-0.25, 0.25, 3)
        geo["vertices"] = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)
        geo["polygons"] = [geo["vertices"]]
    elif kind == "star":  # a hexagram: two opposed triangles
        geo["vertices"] = _regular(6, r, angle, cx, cy)
        geo["polygons"] = [_regular(3, r, angle, cx, cy),
                           _regular(3, r, angle + np.pi / 3, cx, cy)]
    elif kind == "cross":  # two bars whose corners lie inside the disc of radius r
        a, t = 0.92 * r, 0.3 * r
        bar = np.array([[-a, -t], [a, -t], [a, t], [-a, t]])
        geo["polygons"] = [_rotated(bar, angle, cx, cy), _rotated(bar[:, ::-1], angle, cx, cy)]
    else:  # pragma: no cover - kinds are validated in Shapes.__init__
        raise ValueError(f"Shapes: unknown shape kind {kind!r}")
    return geo


def _raster(geo: dict, cx: float, cy: float, r: float, h: int, w: int):
    """``(row0, col0, window)``: the shape's pixels as a boolean window of the image."""
    r0, r1 = max(0, math.floor(cy - r) - 1), min(h, math.ceil(cy + r) + 1)
    c0, c1 = max(0, math.floor(cx - r) - 1), min(w, math.ceil(cx + r) + 1)
    py = (np.arange(r0, r1, dtype=np.float64) + 0.5)[:, None]
    px = (np.arange(c0, c1, dtype=np.float64) + 0.5)[None, :]
    if "ellipse" in geo:
        a, b, t = geo["ellipse"]
        dx, dy = px - cx, py - cy
        u = dx * math.cos(t) + dy * math.sin(t)
        v = -dx * math.sin(t) + dy * math.cos(t)
        window = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    else:
        window = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        for verts in geo["polygons"]:
            window |= _polygon_inside(px, py, verts)
    return r0, c0, window


# -------------------------------------------------------------------------- data set
class Shapes(Dataset):
    """Synthetic images of coloured shapes with boxes, labels and a class mask, made on the fly.

    Item ``i`` is ``(image, target)``:

    - ``image``: ``(C, H, W)`` float32 in ``[0, 1]`` (then ``transform``);
    - ``target["boxes"]``: ``(K, 4)`` float32, ``(x1, y1, x2, y2)`` in pixels, each the
      bounding box of its shape's whole raster (also where the shape is partly hidden);
    - ``target["labels"]``: ``(K,)`` int64, the 0-based class of each box
      (``classes[label]``), in painting order (later ones lie on top);
    - ``target["mask"]``: ``(H, W)`` int64, the class of the visible shape at each pixel
      **plus one**, and 0 for the background (so ``num_classes + 1`` values in all).

    See the module docstring for the geometry and occlusion rules, and :meth:`objects` for
    each shape's parameters (centre, size, vertices, whole raster).

    Args:
        n: number of images in the split.
        image_size: height and width of the square images, in pixels (>= 16).
        min_objects, max_objects: each image draws a count uniformly in this range
            (inclusive).
        shapes: the kinds to draw, in class order; any of :data:`SHAPE_KINDS` (default the
            first five: circle, square, triangle, ellipse, cross).
        size_range: ``(min, max)`` shape size (diameter of its enclosing disc) as fractions
            of ``image_size``, drawn uniformly; the smallest must be at least 4 pixels.
        min_visible: every kept shape keeps at least this fraction of its pixels visible
            (0 allows complete occlusion, 1 forbids any overlap).
        noise: standard deviation of the Gaussian noise added to every pixel.
        texture: amplitude of the background's low-frequency waves (0: a plain gradient).
        channels: 3 (colour) or 1 (grey).
        grid: if set, no two boxes have their centres in the same cell of a ``grid x grid``
            division of the image (cell row ``floor(cy / H * grid)``, column
            ``floor(cx / W * grid)``, as YOLO v1 assigns objects: one per cell). A shape
            that lands in a taken cell is placed again, as for ``min_visible``.
        seed: the data set's seed (an int >= 0).
        train: the training split if True, else the test split (other images).
        transform: applied to each image (after generation); it must not move pixels, as
            the boxes and mask are not changed.
        target_transform: applied to each target dict.

    Attributes:
        classes: shape kinds in label order; ``num_classes``: their number.

    Example:
        >>> ds = Shapes(n=100, image_size=64, seed=0)
        >>> image, target = ds[0]
        >>> image.shape, image.dtype, target["mask"].shape, ds.num_classes
        ((3, 64, 64), dtype('float32'), (64, 64), 5)
        >>> bool(np.all(target["boxes"][:, 2:] > target["boxes"][:, :2]))
        True
    """

    def __init__(self, n: int = 1000, image_size: int = 64, min_objects: int = 1,
                 max_objects: int = 4, shapes: Sequence[str] = DEFAULT_SHAPES,
                 size_range: tuple[float, float] = (0.2, 0.5), min_visible: float = 0.5,
                 noise: float = 0.05, texture: float = 0.15, channels: int = 3,
                 grid: int | None = None, seed: int = 0, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None):
        for name, v, lo in (("n", n, 1), ("image_size", image_size, 16),
                            ("min_objects", min_objects, 0), ("max_objects", max_objects, 0),
                            ("seed", seed, 0)):
            if not _is_int(v) or v < lo:
                raise ValueError(f"Shapes: {name} must be an int >= {lo}, got {v!r}")
        if max_objects < min_objects:
            raise ValueError(f"Shapes: max_objects must be >= min_objects ({min_objects}), "
                             f"got {max_objects}")
        if isinstance(shapes, str) or not isinstance(shapes, Sequence) or len(shapes) == 0:
            raise TypeError(f"Shapes: shapes must be a non-empty sequence of shape names from "
                            f"{SHAPE_KINDS}, got {shapes!r}")
        unknown = [s for s in shapes if s not in SHAPE_KINDS]
        if unknown:
            raise ValueError(f"Shapes: unknown shape kind(s) {unknown}; expected names from "
                             f"{SHAPE_KINDS}")
        if len(set(shapes)) != len(shapes):
            raise ValueError(f"Shapes: shapes must not repeat a kind, got {list(shapes)}")
        if not isinstance(size_range, Sequence) or len(size_range) != 2 \
                or not all(_is_number(v) and math.isfinite(v) for v in size_range):
            raise TypeError(f"Shapes: size_range must be a pair (min, max) of numbers, got "
                            f"{size_range!r}")
        lo, hi = float(size_range[0]), float(size_range[1])
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"Shapes: size_range must satisfy 0 < min <= max <= 1 (fractions "
                             f"of image_size), got {size_range!r}")
        if lo * image_size < _MIN_SIZE_PX:
            raise ValueError(f"Shapes: the smallest shape would be {lo * image_size:g} pixels "
                             f"across; size_range[0] * image_size must be >= {_MIN_SIZE_PX:g}")
        for name, v, top in (("min_visible", min_visible, 1.0), ("noise", noise, math.inf),
                             ("texture", texture, math.inf)):
            if not _is_number(v) or not math.isfinite(v) or not 0 <= v <= top:
                bound = "in [0, 1]" if top == 1.0 else ">= 0 and finite"
                raise ValueError(f"Shapes: {name} must be a number {bound}, got {v!r}")
        if grid is not None and (not _is_int(grid) or grid < 1):
            raise ValueError(f"Shapes: grid must be None or an int >= 1, got {grid!r}")
        if grid is not None and grid * grid < max_objects:
            raise ValueError(f"Shapes: a {grid}x{grid} grid has fewer cells than max_objects "
                             f"({max_objects}), one object per cell")
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ValueError(f"Shapes: channels must be 1 or 3, got {channels!r}")
        if not isinstance(train, bool | np.bool_):
            raise TypeError(f"Shapes: train must be a bool, got {type(train).__name__}")
        for name, f in (("transform", transform), ("target_transform", target_transform)):
            if f is not None and not callable(f):
                raise TypeError(f"Shapes: {name} must be callable or None, got "
                                f"{type(f).__name__}")
        self.n, self.image_size = int(n), int(image_size)
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.classes = list(shapes)
        self.size_range = (lo, hi)
        self.min_visible, self.noise, self.texture = float(min_visible), float(noise), \
            float(texture)
        self.channels, self.seed, self.train = int(channels), int(seed), bool(train)
        self.grid = None if grid is None else int(grid)
        self.transform, self.target_transform = transform, target_transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.n

    def _index(self, index) -> int:
        if not _is_int(index):
            raise TypeError(f"Shapes: index must be an int, got {type(index).__name__}")
        i = int(index) + (self.n if index < 0 else 0)
        if not 0 <= i < self.n:
            raise IndexError(f"Shapes: index {index} out of range for {self.n} images")
        return i

    def generator(self, index: int) -> np.random.Generator:
        """The generator that draws image ``index`` (from ``seed``, the split and the index)."""
        return np.random.default_rng([self.seed, 0 if self.train else 1, self._index(index)])

    # --------------------------------------------------------------------- drawing
    def _background(self, g: np.random.Generator) -> np.ndarray:
        s, ch = self.image_size, self.channels
        c0, c1 = g.uniform(0, 1, (2, ch, 1, 1))
        phi = g.uniform(0, 2 * np.pi)
        coords = (np.arange(s) + 0.5) / s
        x, y = coords[None, :], coords[:, None]
        t = (math.cos(phi) * (x - 0.5) + math.sin(phi) * (y - 0.5)) / math.sqrt(2) + 0.5
        image = c0 + (c1 - c0) * t  # (C, S, S) gradient
        if self.texture > 0:
            freq = g.uniform(1, 4, (3, 2)) * (2 * g.integers(0, 2, (3, 2)) - 1)
            phase, amp = g.uniform(0, 2 * np.pi, 3), g.uniform(0.5, 1, 3)
            # sum_k amp_k sin(u_k + v_k), with sin(u + v) = sin u cos v + cos u sin v: one
            # (S, 6) @ (6, S) product of sines and cosines of the rows and the columns
            u = 2 * np.pi * freq[:, 0, None] * coords + phase[:, None]  # (3, S) columns
            v = 2 * np.pi * freq[:, 1, None] * coords  # (3, S) rows
            rows = np.concatenate([np.cos(v), np.sin(v)]).T
            waves = rows @ np.concatenate([amp[:, None] * np.sin(u), amp[:, None] * np.cos(u)])
            tint = g.uniform(0.5, 1, (ch, 1, 1))
            image = image + self.texture * tint * waves / amp.sum()
        return image

    def _draw(self, index: int):
        """Image (C, H, W) float64 before noise, the kept objects, and the instance map."""
        g = self.generator(index)
        s = self.image_size
        image = self._background(g)
        count = int(g.integers(self.min_objects, self.max_objects + 1))
        instance = np.full((s, s), -1, dtype=np.int64)  # top object per pixel
        objects: list[dict] = []
        visible = np.zeros(0, dtype=np.int64)
        cells: set = set()
        for _ in range(count):
            label = int(g.integers(len(self.classes)))
            for _try in range(_MAX_TRIES):
                r = float(g.uniform(*self.size_range)) * s / 2
                cx, cy = g.uniform(r, s - r, 2)
                geo = _geometry(self.classes[label], float(cx), float(cy), r, g)
                r0, c0, win = _raster(geo, float(cx), float(cy), r, s, s)
                region = instance[r0:r0 + win.shape[0], c0:c0 + win.shape[1]]
                covered = np.bincount(region[win & (region >= 0)], minlength=len(objects))
                left = visible - covered
                areas = np.array([o["area"] for o in objects], dtype=np.int64)
                cell = self._cell(r0, c0, win) if self.grid else None
                if win.any() and np.all(left >= self.min_visible * areas) \
                        and cell not in cells:
                    break
            else:
                continue  # no room for this one
            if cell is not None:
                cells.add(cell)
            region[win] = len(objects)
            visible = np.append(left, int(win.sum()))
            colour = (image[:, int(cy), int(cx)] + g.uniform(0.3, 0.7, self.channels)) % 1.0
            objects.append({"kind": self.classes[label], "label": label,
                            "centre": (float(cx), float(cy)), "size": 2 * r,
                            "angle": geo["angle"], "colour": colour,
                            "vertices": geo.get("vertices"), "window": (r0, c0, win),
                            "area": int(win.sum())})
        for k, o in enumerate(objects):
            r0, c0, win = o["window"]
            sub = image[:, r0:r0 + win.shape[0], c0:c0 + win.shape[1]]
            top = instance[r0:r0 + win.shape[0], c0:c0 + win.shape[1]] == k
            sub[:, top] = o["colour"][:, None]
        return g, image, objects, instance

    def _cell(self, r0: int, c0: int, win: np.ndarray) -> tuple[int, int]:
        """(row, column) of the grid cell holding the centre of the window's box."""
        x1, y1, x2, y2 = self._box({"window": (r0, c0, win)}) if win.any() else (0, 0, 0, 0)
        s, n = self.image_size, self.grid
        return (min(n - 1, math.floor((y1 + y2) / 2 / s * n)),
                min(n - 1, math.floor((x1 + x2) / 2 / s * n)))

    def _finish(self, g: np.random.Generator, image: np.ndarray) -> np.ndarray:
        image = image.astype(np.float32)
        if self.noise > 0:
            image += np.float32(self.noise) * g.standard_normal(image.shape, dtype=np.float32)
        return np.clip(image, 0, 1, out=image)

    @staticmethod
    def _box(o: dict) -> list[int]:
        r0, c0, win = o["window"]
        rows, cols = np.flatnonzero(win.any(axis=1)), np.flatnonzero(win.any(axis=0))
        return [c0 + cols[0], r0 + rows[0], c0 + cols[-1] + 1, r0 + rows[-1] + 1]

    def __getitem__(self, index):
        g, image, objects, instance = self._draw(self._index(index))
        image = self._finish(g, image)
        labels = np.array([o["label"] for o in objects], dtype=np.int64)
        boxes = np.array([self._box(o) for o in objects], dtype=np.float32).reshape(-1, 4)
        mask = np.where(instance >= 0, np.append(labels, 0)[instance] + 1, 0)
        target = {"boxes": boxes, "labels": labels, "mask": mask.astype(np.int64)}
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def objects(self, index: int) -> list[dict]:
        """Each shape of image ``index`` in painting order, as drawn (no transforms):
        ``kind``, ``label``, ``centre`` ``(cx, cy)`` and ``size`` (diameter of the enclosing
        disc) in pixels, ``angle`` (radians), ``colour`` (C,), ``vertices`` ((V, 2) ``(x, y)``
        pixel coordinates for the polygon kinds -- square, diamond, triangle, star's six
        points -- else None), ``box`` (as in the target) and ``raster``, the whole shape as an
        (H, W) bool array (occluded parts included)."""
        _, _, objects, _ = self._draw(self._index(index))
        s = self.image_size
        out = []
        for o in objects:
            r0, c0, win = o["window"]
            raster = np.zeros((s, s), dtype=bool)
            raster[r0:r0 + win.shape[0], c0:c0 + win.shape[1]] = win
            item = {k: v for k, v in o.items() if k not in ("window", "area")}
            item["box"] = np.array(self._box(o), dtype=np.float32)
            item["raster"] = raster
            out.append(item)
        return out

    def get_batch(self, indices) -> tuple:
        """Items ``indices`` collated by :func:`collate_detection` (the DataLoader's fast
        path, so a plain ``DataLoader(Shapes(...))`` works without a ``collate_fn``)."""
        return collate_detection([self[int(i)] for i in np.asarray(indices).reshape(-1)])

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (f"Shapes(split={split!r}, n={self.n}, image_size={self.image_size}, "
                f"objects={self.min_objects}..{self.max_objects}, classes={self.classes}, "
                f"seed={self.seed})")


class StandardShapes(Shapes):
    """The registered data set ``"shapes"`` (``get_dataset("shapes")``, ``--dataset shapes``):
    :class:`Shapes` in one fixed configuration, so that runs, README figures and tests all
    mean the same images.

    64x64 colour images with 2 to 4 of the five default kinds each (sizes 0.2-0.5 of the
    image), one box centre per cell of a 4x4 grid (YOLO v1 at stride 16 has one object per
    cell), shapes overlapping so that each keeps at least 75% of its pixels in view; 6,000
    training and 1,000 test images from seed 0. Any of :class:`Shapes`' arguments can be
    overridden (``n``, ``image_size`` -- the grid follows it, one cell per 16 pixels --,
    ``min_objects`` ...).

    Example:
        >>> ds = StandardShapes(train=False)
        >>> len(ds), ds.image_size, ds.grid, ds.classes[:2]
        (1000, 64, 4, ['circle', 'square'])
    """

    #: the images of each split (``sizes[train]``)
    sizes = {True: 6000, False: 1000}
    #: what :class:`StandardShapes` sets, before overrides
    config = {"image_size": 64, "min_objects": 2, "max_objects": 4, "min_visible": 0.75,
              "seed": 0}
    #: pixels per grid cell (``grid = image_size // 16``)
    cell = 16
    classes = list(DEFAULT_SHAPES)

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, **overrides):
        kw = {**self.config, "n": self.sizes[bool(train)], **overrides}
        if "grid" not in overrides:
            size = kw["image_size"]
            kw["grid"] = max(1, size // self.cell) if _is_int(size) else None
        super().__init__(train=train, transform=transform, target_transform=target_transform,
                         **kw)


# --------------------------------------------------------------------------- collate
def collate_detection(batch: Sequence) -> tuple:
    """Batch ``(image, target)`` samples whose targets hold different numbers of objects.

    Images are stacked into one array ``(B, C, H, W)`` (they must share a shape). Target keys
    with one entry per object (``boxes``, ``labels``, ``masks``, ``iscrowd``, ``area``) become
    lists with one array per image; the others (``mask``, ``image_id``) are stacked. Use it as
    ``DataLoader(dataset, batch_size, collate_fn=collate_detection)``; the result stays NumPy
    (the Trainer converts inputs to Tensors).

    Returns:
        ``(images, targets)``: ``targets`` a dict, e.g. ``targets["boxes"][b]`` the (K_b, 4)
        boxes of image ``b`` and ``targets["mask"]`` the (B, H, W) class masks.

    Example:
        >>> ds = Shapes(n=8, image_size=32, seed=1)
        >>> images, targets = collate_detection([ds[0], ds[1]])
        >>> images.shape, len(targets["boxes"]), targets["mask"].shape
        ((2, 3, 32, 32), 2, (2, 32, 32))
    """
    if isinstance(batch, str | bytes) or not isinstance(batch, Sequence) or len(batch) == 0:
        raise ValueError(f"collate_detection: expected a non-empty list of (image, target) "
                         f"samples, got {type(batch).__name__} of length "
                         f"{len(batch) if hasattr(batch, '__len__') else '?'}")
    for i, sample in enumerate(batch):
        if not isinstance(sample, tuple | list) or len(sample) != 2 \
                or not isinstance(sample[1], dict):
            raise TypeError(f"collate_detection: sample {i} must be a pair (image, target "
                            f"dict), got {type(sample).__name__}")
    keys = list(batch[0][1])
    for i, (_, target) in enumerate(batch):
        if list(target) != keys:
            raise ValueError(f"collate_detection: sample {i}'s target has keys "
                             f"{sorted(target)}, sample 0's has {sorted(keys)}")
    images = collate_numpy([image for image, _ in batch])
    targets = {k: [t[k] for _, t in batch] if k in PER_OBJECT_KEYS
               else collate_numpy([t[k] for _, t in batch]) for k in keys}
    return images, targets
