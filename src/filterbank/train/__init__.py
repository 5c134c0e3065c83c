"""Training: the ``Trainer`` loop, callbacks, metrics and checkpoints."""

from filterbank.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LRSchedulerCallback,
    ModelCheckpoint,
)
from filterbank.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from filterbank.train.embed import PCA, LinearProbe, embed, nearest, penultimate_layer
from filterbank.train.metrics import (
    Accuracy,
    BinaryAccuracy,
    Mean,
    MeanIoU,
    Metric,
    PixelAccuracy,
    TopKAccuracy,
    accuracy,
    average_precision,
    binary_accuracy,
    classification_report,
    confusion_matrix,
    default_metrics,
    mean_average_precision,
    mean_iou,
    precision_recall_f1,
    top_k_accuracy,
)
from filterbank.train.runs import load_run
from filterbank.train.trainer import (
    DIVERGENCE_FACTOR,
    DivergenceError,
    History,
    NonFiniteLossError,
    Trainer,
)

__all__ = [
    "Accuracy", "CSVLogger", "Callback", "CheckpointError", "EarlyStopping", "History",
    "JSONLogger", "LRSchedulerCallback", "Mean", "Metric", "ModelCheckpoint",
    "NonFiniteLossError", "TopKAccuracy", "Trainer", "accuracy", "classification_report",
    "confusion_matrix", "load_checkpoint", "precision_recall_f1", "read_checkpoint",
    "save_checkpoint", "top_k_accuracy",
    "BinaryAccuracy", "binary_accuracy", "default_metrics", "load_run",
    "DIVERGENCE_FACTOR", "DivergenceError",
    "MeanIoU", "PixelAccuracy", "mean_average_precision", "mean_iou",
    "average_precision",
    "PCA", "LinearProbe", "embed", "nearest", "penultimate_layer",
]
