"""Classification metrics: accuracy, top-k accuracy, confusion matrix, precision/recall/F1.

Functions take model outputs (logits or probabilities, ``(N, C)``) or predicted labels
(``(N,)``) and integer targets, as NumPy arrays or Tensors, and return plain Python numbers or
NumPy arrays. The streaming classes (:class:`Accuracy`, :class:`TopKAccuracy`, :class:`Mean`)
accumulate over an epoch for the :class:`~filterbank.train.Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from filterbank.tensor import Tensor


def _np(a) -> np.ndarray:
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def _labels(output, where: str) -> np.ndarray:
    """Predicted labels from logits (argmax over axis 1) or from labels as they are."""
    out = _np(output)
    if out.ndim >= 2:
        if out.shape[1] == 1:
            raise ValueError(f"{where}: the output has one column (shape {out.shape}), so there "
                             f"is no class to pick; for regression pass metrics=[] to the "
                             f"Trainer")
        return np.argmax(out, axis=1)
    if out.dtype.kind not in "iub":
        raise TypeError(f"{where}: expected logits of shape (N, C) or integer labels of shape "
                        f"(N,), got a 1-d {out.dtype} array")
    return out


def _targets(target, n: int, where: str) -> np.ndarray:
    t = _np(target)
    if t.ndim == 2 and t.dtype.kind == "f":  # one-hot / probability targets
        t = np.argmax(t, axis=1)
    if t.shape[0] != n:
        raise ValueError(f"{where}: output has {n} samples but target has {t.shape[0]} "
                         f"(target shape {t.shape})")
    return t


def accuracy(output, target) -> float:
    """Fraction of samples whose predicted class equals the target.

    ``acc = (1/N) sum_i [argmax_c output[i, c] == target[i]]``

    Args:
        output: logits/probabilities ``(N, C, ...)`` or predicted labels ``(N, ...)``.
        target: integer labels ``(N, ...)`` (or one-hot ``(N, C)``).

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    pred = _labels(output, "accuracy")
    t = _targets(target, pred.shape[0], "accuracy")
    if pred.shape != t.shape:
        raise ValueError(f"accuracy: predictions have shape {pred.shape} but target has shape "
                         f"{t.shape}")
    return float(np.mean(pred == t)) if pred.size else 0.0


def binary_accuracy(output, target, threshold: float = 0.5) -> float:
    """Fraction of binary decisions ``output > threshold`` that equal the 0/1 target.

    ``acc = (1/M) sum_j [(output_j > threshold) == (target_j > 0.5)]`` over all M elements
    (one per sample for outputs ``(N,)``/``(N, 1)``, several per sample for multi-label
    outputs), as Keras's ``binary_accuracy``. Use ``threshold=0`` for logits (the output of a
    model trained with ``BCEWithLogitsLoss``), 0.5 for probabilities (``BCELoss``).

    Args:
        output: probabilities or logits, any shape with N samples first.
        target: 0/1 labels with the same number of elements.
        threshold: decision threshold on ``output``.

    Example:
        >>> binary_accuracy(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]))
        0.6666666666666666
    """
    correct, total = _binary_counts(output, target, threshold, "binary_accuracy")
    return correct / total if total else 0.0


def _binary_counts(output, target, threshold: float, where: str) -> tuple[int, int]:
    out, t = _np(output), _np(target)
    if out.size != t.size:
        raise ValueError(f"{where}: output has {out.size} elements (shape {out.shape}) but "
                         f"target has {t.size} (shape {t.shape}); expected one 0/1 target per "
                         f"output")
    pred = out.reshape(-1) > threshold
    return int(np.sum(pred == (t.reshape(-1) > 0.5))), int(out.size)


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest-scoring classes.

    Args:
        output: scores ``(N, C)``.
        target: integer labels ``(N,)``.
        k: how many top classes count (``k=1`` is :func:`accuracy`).

    Example:
        >>> top_k_accuracy(np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]]), np.array([2, 2]), k=2)
        0.5
    """
    out = _np(output)
    if out.ndim != 2:
        raise ValueError(f"top_k_accuracy: expected scores of shape (N, C), got {out.shape}")
    if not 1 <= k:
        raise ValueError(f"top_k_accuracy: k must be >= 1, got {k}")
    t = _targets(target, out.shape[0], "top_k_accuracy")
    k = min(k, out.shape[1])
    # rank by "how many classes score strictly higher than the target": ties favour the target
    tscore = np.take_along_axis(out, t.reshape(-1, 1).astype(np.int64), axis=1)
    rank = np.sum(out > tscore, axis=1)
    return float(np.mean(rank < k)) if out.shape[0] else 0.0


def confusion_matrix(target, pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples with true class i predicted as class j.

    Args:
        target: integer labels ``(N,)``.
        pred: predicted labels ``(N,)`` or logits ``(N, C)``.
        num_classes: matrix size (default: ``C`` of the logits, else 1 + the largest label).

    Returns:
        int64 array ``(num_classes, num_classes)``; rows are true classes (as scikit-learn).

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1])
        array([[1, 0],
               [1, 1]])
    """
    p_in = _np(pred)
    p = _labels(p_in, "confusion_matrix").reshape(-1).astype(np.int64)
    t = _targets(target, _np(pred).shape[0], "confusion_matrix").reshape(-1).astype(np.int64)
    if num_classes is None:
        num_classes = p_in.shape[1] if p_in.ndim == 2 else int(max(t.max(initial=-1),
                                                                     p.max(initial=-1)) + 1)
    for name, a in (("target", t), ("pred", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} labels must lie in [0, {num_classes}), "
                             f"got range [{a.min()}, {a.max()}]")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall_f1(target=None, pred=None, num_classes: int | None = None, *,
                        cm: np.ndarray | None = None) -> dict:
    """Per-class precision, recall and F1, their macro averages and the supports.

    ``precision_c = TP_c / (TP_c + FP_c)``, ``recall_c = TP_c / (TP_c + FN_c)``,
    ``F1_c = 2 P R / (P + R)``; a 0/0 is reported as 0 (scikit-learn's ``zero_division=0``).
    Macro averages are unweighted means over classes.

    Args:
        target, pred: labels as for :func:`confusion_matrix` (or give ``cm=``).
        num_classes: number of classes.
        cm: a confusion matrix to use instead of ``target``/``pred``.

    Returns:
        dict with float64 arrays ``precision``, ``recall``, ``f1``, int ``support`` and floats
        ``macro_precision``, ``macro_recall``, ``macro_f1``, ``accuracy``.
    """
    if cm is None:
        if target is None or pred is None:
            raise ValueError("precision_recall_f1: give target and pred, or cm=")
        cm = confusion_matrix(target, pred, num_classes)
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "support": support.astype(np.int64),
        "macro_precision": float(precision.mean()) if tp.size else 0.0,
        "macro_recall": float(recall.mean()) if tp.size else 0.0,
        "macro_f1": float(f1.mean()) if tp.size else 0.0,
        "accuracy": float(tp.sum() / total) if total else 0.0,
    }


def classification_report(target, pred, class_names: Sequence[str] | None = None,
                          num_classes: int | None = None, digits: int = 3) -> str:
    """A readable table of per-class precision, recall, F1 and support (scikit-learn style).

    Example:
        >>> print(classification_report([0, 1, 1], [0, 0, 1], class_names=["cat", "dog"]))
        ... # doctest: +NORMALIZE_WHITESPACE
                   precision    recall  f1-score   support
        <BLANKLINE>
                cat      0.500     1.000     0.667         1
                dog      1.000     0.500     0.667         2
        <BLANKLINE>
           accuracy                          0.667         3
          macro avg      0.750     0.750     0.667         3
    """
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    cm = confusion_matrix(target, pred, num_classes)
    r = precision_recall_f1(cm=cm)
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"classification_report: {k} classes but {len(names)} class names")
    width = max(len("macro avg"), *(len(nm) for nm in names))
    head = " " * width + "  " + "".join(f"{h:>10}" for h in
                                         ("precision", "recall", "f1-score", "support"))
    lines = [head, ""]
    for i, nm in enumerate(names):
        lines.append(f"{nm:>{width}}  {r['precision'][i]:>10.{digits}f}"
                     f"{r['recall'][i]:>10.{digits}f}{r['f1'][i]:>10.{digits}f}"
                     f"{r['support'][i]:>10d}")
    total = int(cm.sum())
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {'':>10}{'':>10}{r['accuracy']:>10.{digits}f}"
                 f"{total:>10d}")
    lines.append(f"{'macro avg':>{width}}  {r['macro_precision']:>10.{digits}f}"
                 f"{r['macro_recall']:>10.{digits}f}{r['macro_f1']:>10.{digits}f}{total:>10d}")
    return "\n".join(lines)


# ------------------------------------------------------------------ streaming metrics
class Metric:
    """A metric accumulated over batches: ``reset()``, ``update(output, target)``,
    ``compute() -> float``. ``name`` is its key in the History."""

    name = "metric"

    def reset(self) -> None:
        raise NotImplementedError  # pragma: no cover

    def update(self, output, target) -> None:
        raise NotImplementedError  # pragma: no cover

    def compute(self) -> float:
        raise NotImplementedError  # pragma: no cover


class Accuracy(Metric):
    """Running :func:`accuracy` over all samples seen since ``reset()``."""

    name = "accuracy"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output, target) -> None:
        pred = _labels(output, "Accuracy")
        t = _targets(target, pred.shape[0], "Accuracy")
        if pred.shape != t.shape:
            raise ValueError(f"Accuracy: predictions have shape {pred.shape} but target has "
                             f"shape {t.shape}")
        self.correct += int(np.sum(pred == t))
        self.total += int(t.size)

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class BinaryAccuracy(Metric):
    """Running :func:`binary_accuracy` over all elements seen since ``reset()``.

    Args:
        threshold: decision threshold on the output (0.5 for probabilities).
        from_logits: the outputs are logits: threshold 0 (``sigmoid(x) > 0.5`` iff ``x > 0``).
        name: History key; 'accuracy' when the Trainer picks it as the default metric of a
            binary loss, 'binary_accuracy' when asked for by that name.
    """

    def __init__(self, threshold: float = 0.5, from_logits: bool = False,
                 name: str = "binary_accuracy"):
        self.threshold = 0.0 if from_logits else float(threshold)
        self.from_logits = from_logits
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output, target) -> None:
        c, n = _binary_counts(output, target, self.threshold, "BinaryAccuracy")
        self.correct += c
        self.total += n

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class TopKAccuracy(Metric):
    """Running :func:`top_k_accuracy`; named ``top{k}_accuracy``."""

    def __init__(self, k: int = 5):
        self.k = k
        self.name = f"top{k}_accuracy"
        self.reset()

    def reset(self) -> None:
        self.correct = 0.0
        self.total = 0

    def update(self, output, target) -> None:
        n = _np(output).shape[0]
        self.correct += top_k_accuracy(output, target, self.k) * n
        self.total += n

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class Mean(Metric):
    """The sample-weighted mean of ``fn(output, target)`` over batches."""

    def __init__(self, fn: Callable, name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "metric")
        self.reset()

    def reset(self) -> None:
        self.sum = 0.0
        self.total = 0

    def update(self, output, target) -> None:
        n = _np(output).shape[0] if _np(output).ndim else 1
        self.sum += float(self.fn(output, target)) * n
        self.total += n

    def compute(self) -> float:
        return self.sum / self.total if self.total else 0.0


def get_metric(spec) -> Metric:
    """A Metric from a name ('accuracy', 'top5_accuracy', ...), a Metric, or a function."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key in ("accuracy", "acc"):
            return Accuracy()
        if key == "binary_accuracy":
            return BinaryAccuracy()
        if key.startswith("top") and key.endswith("_accuracy") and key[3:-9].isdigit():
            return TopKAccuracy(int(key[3:-9]))
        raise ValueError(f"unknown metric {spec!r}; expected 'accuracy', 'binary_accuracy', "
                         f"'top<k>_accuracy', a Metric or a function of (output, target)")
    if callable(spec):
        return Mean(spec)
    raise TypeError(f"metric must be a name, a Metric or a function, got {type(spec).__name__}")


# Which kind of task a loss trains, by class name (nn.CrossEntropyLoss, or the functional
# F.cross_entropy, or the Function behind it): no import of filterbank.nn needed here.
_CLASSIFICATION_LOSSES = {"CrossEntropyLoss", "NLLLoss", "CrossEntropy", "cross_entropy",
                          "nll_loss"}
_BINARY_LOSSES = {"BCELoss": False, "binary_cross_entropy": False,
                  "BCEWithLogitsLoss": True, "binary_cross_entropy_with_logits": True}
_REGRESSION_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "mse_loss", "l1_loss",
                      "smooth_l1_loss", "huber_loss"}


def loss_kind(loss_fn) -> str | None:
    """'classification', 'binary', 'binary_logits', 'regression' or None (unknown loss)."""
    names = [c.__name__ for c in type(loss_fn).__mro__]
    if callable(loss_fn) and hasattr(loss_fn, "__name__"):
        names.insert(0, loss_fn.__name__)  # a function such as F.cross_entropy
    for n in names:
        if n in _CLASSIFICATION_LOSSES:
            return "classification"
        if n in _BINARY_LOSSES:
            return "binary_logits" if _BINARY_LOSSES[n] else "binary"
        if n in _REGRESSION_LOSSES:
            return "regression"
    return None


def default_metrics(loss_fn) -> list[Metric]:
    """The metrics that fit a loss, used when the Trainer is given ``metrics=None``.

    Accuracy for ``CrossEntropyLoss``/``NLLLoss`` (argmax over classes); binary accuracy,
    named 'accuracy', for ``BCELoss`` (threshold 0.5) and ``BCEWithLogitsLoss`` (threshold 0
    on logits); nothing for regression losses (``MSELoss``, ``L1Loss``, ``SmoothL1Loss``,
    ``HuberLoss``) and for losses it does not know (pass ``metrics=[...]`` yourself), so the
    History holds only the loss.

    Example:
        >>> import filterbank as fb
        >>> [m.name for m in default_metrics(fb.nn.CrossEntropyLoss())]
        ['accuracy']
        >>> default_metrics(fb.nn.MSELoss())
        []
    """
    kind = loss_kind(loss_fn)
    if kind == "classification":
        return [Accuracy()]
    if kind in ("binary", "binary_logits"):
        return [BinaryAccuracy(from_logits=kind == "binary_logits", name="accuracy")]
    return []
