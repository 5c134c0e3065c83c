"""Using a trained run: ``evaluate`` (accuracy, per-class report, confusion matrix on a test
set) and ``predict`` (top-k classes of image files), plus the test report ``train`` writes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import filterbank as fb
from filterbank import nn
from filterbank.data import DataLoader, Subset
from filterbank.serialization import check_regular
from filterbank.train.metrics import classification_report, confusion_matrix, precision_recall_f1
from filterbank.train.recipe import (
    IMAGE_SUFFIXES,
    Log,
    _limit,
    _stderr,
    image_geometry,
    load_data,
    make_transform,
)
from filterbank.train.runs import load_run_model, run_folder, write_json


def report_test_set(net, trainer, loader, targets, classes, out: Path, stem: str,
                    log: Log) -> dict:
    """Predict a test set; write ``<stem>.json`` (matrix, per-class precision, recall, F1) and
    ``<stem>.png`` into ``out``; return accuracy, correct count, report text and matrix."""
    logits = trainer.predict(loader) if trainer is not None else predict_logits(net, loader)
    targets = np.asarray(targets)
    pred = logits.argmax(axis=1)
    cm = confusion_matrix(targets, pred, num_classes=len(classes))
    stats = precision_recall_f1(cm=cm)
    report = classification_report(targets, pred, class_names=classes)
    correct = int(np.sum(pred == targets))
    acc = correct / len(targets) if len(targets) else 0.0
    write_json(out / f"{stem}.json", {
        "classes": classes, "matrix": cm.tolist(), "accuracy": acc, "images": len(targets),
        "precision": stats["precision"].tolist(), "recall": stats["recall"].tolist(),
        "f1": stats["f1"].tolist(), "support": stats["support"].tolist()})
    try:
        from filterbank.viz import plot_confusion_matrix

        plot_confusion_matrix(cm, classes, out / f"{stem}.png",
                              title=f"Confusion matrix (accuracy {acc:.4f})")
    except ImportError as e:
        log(f"filterbank: no {stem}.png ({e})")
    return {"accuracy": acc, "correct": correct, "report": report, "matrix": cm}


def save_plots(history, net, out: Path, log: Log,
               metrics: Sequence[str] = ("loss", "accuracy")) -> None:
    """``curves.png`` (``metrics`` per epoch, training and validation) and ``filters.png``
    (the first convolution's filters)."""
    try:
        from filterbank.viz import save_history_plot

        save_history_plot(history, out / "curves.png", metrics=list(metrics))
    except ImportError as e:
        log(f"filterbank: no curves.png ({e})")
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is not None:
        try:
            from filterbank.viz import save_filters_plot

            save_filters_plot(conv.weight, out / "filters.png")
        except ImportError as e:
            log(f"filterbank: no filters.png ({e})")


def predict_logits(net, loader) -> np.ndarray:
    outs = []
    net.eval()
    with fb.no_grad():
        for batch in loader:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            outs.append(np.asarray(net(x).data))
    return np.concatenate(outs, axis=0)


# ------------------------------------------------------------------------ evaluate
def abbreviate(names: Sequence[str], width: int = 5) -> list[str]:
    """Unique short column labels for class names: the first ``width`` characters of each
    (spaces removed), more (up to 8) if that does not tell them apart, else their indices."""
    clean = [str(n).replace(" ", "") or str(i) for i, n in enumerate(names)]
    for k in range(width, 9):
        short = [c[:k] for c in clean]
        if len(set(short)) == len(short):
            return short
    return [str(i) for i in range(len(names))]


def confusion_table(matrix: np.ndarray, classes: Sequence[str], max_classes: int = 20) -> str:
    """The confusion matrix as text: one row per true class (full name), one column per
    predicted class (abbreviated, see :func:`abbreviate`), counts in the cells.

    Example:
        >>> print(confusion_table(np.array([[5, 1], [0, 4]]), ["T-shirt/top", "Trouser"]))
        confusion matrix (rows: true class, columns: predicted)
                    T-shi Trous
        T-shirt/top     5     1
        Trouser         0     4
    """
    m = np.asarray(matrix)
    if len(classes) > max_classes:
        return (f"confusion matrix: {len(classes)} classes, too many for a table (see the "
                f".json/.png files)")
    short = abbreviate(classes)
    w = max(3, *(len(a) for a in short), len(str(int(m.max()) if m.size else 0))) + 1
    label = max(len(str(c)) for c in classes)
    lines = ["confusion matrix (rows: true class, columns: predicted)",
             " " * label + "".join(a.rjust(w) for a in short)]
    for name, row in zip(classes, m):
        lines.append(str(name).ljust(label) + "".join(str(int(v)).rjust(w) for v in row))
    return "\n".join(lines)


def evaluate(path: str | os.PathLike, dataset: str | None = None, model: str | None = None,
             data_root: str | os.PathLike | None = None, download: bool = False,
             batch_size: int = 512, limit: int | None = None,
             out: str | os.PathLike | None = None, log: Log = _stderr,
             echo: Log = print) -> dict:
    """Accuracy, per-class report and confusion matrix of a run's model on a test set.

    The test images go through the run's own preprocessing (resized if the data set's size
    differs from the model's). Prints the report and the confusion matrix as a table (rows:
    true class, columns: predicted, names abbreviated). Writes ``eval-<dataset>.json``
    (matrix, per-class precision, recall, F1) and ``eval-<dataset>.png`` into ``out``
    (default: the run folder).

    Args:
        path: run folder or checkpoint.
        dataset: test set name (default: the one the run was trained on).
        model: rebuild this model instead of the configured one.
        data_root, download, batch_size, limit: as for :func:`train`.
        out: folder for the confusion matrix files.

    Returns:
        dict with ``accuracy``, ``matrix`` and ``out``.

    Example:
        >>> evaluate("runs/demo")["accuracy"]  # doctest: +SKIP
        0.913
    """
    net, config, ckpt = load_run_model(path, model)
    folder = Path(out) if out is not None else run_folder(ckpt)
    if config.get("task", "classify") != "classify":
        return _evaluate_task(net, config, dataset, limit, folder, log, echo)
    resolved, _, _, test_set = load_data(dataset or config["requested_dataset"], data_root,
                                         download, config["preprocessing"]["size"], log)
    classes = config["classes"]
    channels, size = image_geometry(test_set)
    pre = config["preprocessing"]
    if channels != pre["channels"] or len(test_set.classes) != len(classes):
        raise ValueError(f"data set {resolved!r} ({channels} channel(s), "
                         f"{len(test_set.classes)} classes) does not fit the model of {ckpt} "
                         f"({pre['channels']} channel(s), {len(classes)} classes)")
    pre = dict(pre, resize=tuple(size) != tuple(pre["size"]))
    idx = _limit(len(test_set), limit, np.random.default_rng(0))
    loader = DataLoader(Subset(test_set, idx), batch_size=batch_size,
                        transform=make_transform(pre))
    folder.mkdir(parents=True, exist_ok=True)
    result = report_test_set(net, None, loader, test_set.targets[idx], classes, folder,
                             f"eval-{resolved}", log)
    echo(result["report"])
    echo("")
    echo(confusion_table(result["matrix"], classes))
    echo(f"test accuracy: {result['accuracy']:.4f} ({result['correct']:,}/{len(idx):,} "
         f"{resolved} test images)")
    echo(f"confusion matrix: {folder / f'eval-{resolved}.json'}")
    return {"accuracy": result["accuracy"], "matrix": result["matrix"], "out": folder}


def _evaluate_task(net, config: dict, dataset: str | None, limit: int | None, folder: Path,
                   log: Log, echo: Log) -> dict:
    """``evaluate`` of a detection, segmentation, regression or multi-label run: its task's
    test report on the test split of its data set (``shapes`` drawn again from its seed) or
    of ``dataset``."""
    from filterbank.train.tasks import get_task
    from filterbank.train.tasks.splits import check_dataset

    job = get_task(config["task"])
    name = config["dataset"]
    if dataset is not None:
        kind = check_dataset(job.name, dataset, job.reads_coco)
        name = "shapes" if kind == "shapes" else Path(dataset).expanduser().resolve().name
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{name}"
    report = job.evaluate_run(net, config, folder, stem, limit, log, dataset)
    for line in report["lines"]:
        echo(line)
    echo(f"report: {folder / f'{stem}.json'} (and its pictures beside it)")
    return {**report["results"], "out": folder}


# ------------------------------------------------------------------------- predict
def image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named directly, plus those in named folders (recursively, sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{p}: no image files in this folder "
                                        f"({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif p.is_file():
            files.append(p)
        elif p.exists():  # a FIFO, a device or a link to one: named as such, never opened
            check_regular(p, ValueError)
        elif p.is_symlink():
            raise FileNotFoundError(f"{p}: a link to {os.path.realpath(p)}, which does not "
                                    f"exist")
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    if not files:
        raise ValueError("predict: no images given")
    return files


def load_images(files: Sequence[Path], pre: dict) -> np.ndarray:
    """Images as the model saw them in training: converted to its channels (grey 'L' or
    'RGB'), resized to its input size (bilinear), as uint8 (N, H, W, C).

    Raises:
        ValueError: a file that is not an image, is truncated or corrupt, or has more than
            ``MAX_IMAGE_PIXELS`` pixels (see :mod:`filterbank.data.datasets.image_folder`);
            the message names the file.
    """
    from filterbank.data.datasets.image_folder import load_image

    h, w = pre["size"]
    mode = {1: "L", 3: "RGB"}.get(pre["channels"])
    if mode is None:
        raise ValueError(f"predict: models with {pre['channels']} input channels cannot read "
                         f"image files (1 or 3 only)")
    out = np.empty((len(files), h, w, pre["channels"]), np.uint8)
    for i, f in enumerate(files):  # one decode per file; the arithmetic is batched below
        # header checked first (pixel limit), decode errors name the file
        out[i] = load_image(f, mode, (h, w)).reshape(h, w, pre["channels"])
    return out


def predict(paths: Sequence[str | os.PathLike], checkpoint: str | os.PathLike, top_k: int = 3,
            as_json: bool = False, model: str | None = None, batch_size: int = 256,
            out: str | os.PathLike | None = None, echo: Log = print) -> list[dict]:
    """Top-k classes with probabilities for image files (or folders of them); for a run of
    another task, its predictions drawn on each image.

    Each image is converted to the model's channels and size with Pillow, scaled by 1/255 and
    standardised with the training mean and std; probabilities are ``softmax(logits)``.

    A detection, segmentation, regression or multi-label run writes one PNG per image into
    ``out`` (default ``<run>/predictions``): the boxes with class and score, the mask
    overlaid, the regressed box or vertices, the classes present; its results are the
    detections (``box`` in pixels of the image file, xyxy), the classes' pixel fractions, the
    regressed values (pixels of the file) or the per-class probabilities.

    Args:
        paths: image files and/or folders (searched recursively).
        checkpoint: run folder or checkpoint.
        top_k: classes per image.
        as_json: print JSON instead of a table.
        model: rebuild this model instead of the configured one.

    Returns:
        one dict per image: ``file`` and ``predictions`` (``class``, ``index``,
        ``probability``), most probable first.

    Example:
        >>> predict(["shoe.png"], "runs/demo", top_k=1)  # doctest: +SKIP
        image     top-1
        --------  ---------------
        shoe.png  Sneaker (97.1%)
    """
    if top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {top_k}")
    net, config, ckpt = load_run_model(checkpoint, model)
    pre = dict(config["preprocessing"], resize=False)  # Pillow already resized
    classes = config["classes"]
    files = image_files(paths)
    images = load_images(files, pre)
    x = make_transform(pre)(images, batched=True)
    if config.get("task", "classify") != "classify":
        return _predict_task(net, config, ckpt, files, images, x, as_json, out, echo)
    logits = predict_logits(net, [(x[i:i + batch_size],) for i in range(0, len(x), batch_size)])
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    k = min(top_k, len(classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    results = [{"file": str(f),
                "predictions": [{"class": classes[j], "index": int(j),
                                 "probability": round(float(probs[i, j]), 6)}
                                for j in order[i]]}
               for i, f in enumerate(files)]
    if as_json:
        echo(json.dumps(results, indent=1))
    else:
        echo(_predict_table(results, k))
    return results


def _predict_task(net, config: dict, ckpt: Path, files: list[Path], images: np.ndarray,
                  x: np.ndarray, as_json: bool, out, echo: Log) -> list[dict]:
    from PIL import Image

    from filterbank.train.tasks import get_task

    job = get_task(config["task"])
    folder = Path(out) if out is not None else run_folder(ckpt) / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    h, w = config["preprocessing"]["size"]
    raw = images.transpose(0, 3, 1, 2).astype(np.float32) / 255  # what the PNGs show
    results = job.predict_arrays(net, np.ascontiguousarray(x, dtype=np.float32), config)
    used: set[str] = set()
    for f, image, r in zip(files, raw, results):
        stem = f.stem
        while stem in used:  # the same name in two folders
            stem += "_"
        used.add(stem)
        png = folder / f"{stem}-{job.name}.png"
        job.draw(image, r, config).save(png, format="PNG")
        with Image.open(f) as im:  # the header only: the file's own size
            fw, fh = im.size
        _to_file_pixels(r, fw / w, fh / h)
        r.pop("mask", None)
        r.update(file=str(f), png=str(png))
    if as_json:
        echo(json.dumps(results, indent=1))
    else:
        width = max(len(r["file"]) for r in results)
        for r in results:
            echo(f"{r['file'].ljust(width)}  {job.describe(r)}")
        echo(f"pictures: {folder}")
    return results


def _to_file_pixels(result: dict, sx: float, sy: float) -> None:
    """Boxes and regressed coordinates from the model's input pixels to the file's."""
    for d in result.get("detections", ()):
        x1, y1, x2, y2 = d["box"]
        d["box"] = [round(x1 * sx, 2), round(y1 * sy, 2), round(x2 * sx, 2), round(y2 * sy, 2)]
    values = result.get("values")
    if values:
        for k in values:
            scale = sy if k in ("c_y", "h") or k.startswith("y_") else sx
            values[k] = round(values[k] * scale, 2)


def _predict_table(results: list[dict], k: int) -> str:
    head = ["image"] + [f"top-{i + 1}" for i in range(k)]
    rows = [[r["file"]] + [f"{p['class']} ({p['probability']:.1%})" for p in r["predictions"]]
            for r in results]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

