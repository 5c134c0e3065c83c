"""The tasks ``filterbank train --task`` knows: one module per task, each a
:class:`~filterbank.train.tasks.base.Task` holding its data adapter, loss, metrics, test
report and pictures (see :mod:`filterbank.train.tasks.base`).

=============  ===========================================  ==============  ==============
task           what is learned                              default model   test metric
=============  ===========================================  ==============  ==============
classify       one class per image                          (required)      accuracy
detect         boxes, classes and scores (YOLO v1)          tiny_yolo       mAP@0.5, mAP
segment        a class per pixel (U-Net)                    unet            mIoU
regress        a box (c_x, c_y, w, h) or 3 vertices         simple_cnn      IoU / px error
multilabel     which classes are present, some unknown      simple_cnn      per-class AP
=============  ===========================================  ==============  ==============
"""

from __future__ import annotations

from filterbank.train.tasks.base import ArrayPairs, Task, TaskData
from filterbank.train.tasks.classify import ClassifyTask
from filterbank.train.tasks.detect import DetectionMAP, DetectTask
from filterbank.train.tasks.multilabel import MultiLabelMAP, MultiLabelTask
from filterbank.train.tasks.regress import HalfSquaredError, RegressionScore, RegressTask
from filterbank.train.tasks.segment import SegmentTask, void_band

_TASKS: dict[str, Task] = {t.name: t for t in (ClassifyTask(), DetectTask(), SegmentTask(),
                                                 RegressTask(), MultiLabelTask())}
#: the names of the tasks, the default first
TASKS = tuple(_TASKS)


def get_task(name: str | None) -> Task:
    """The task called ``name`` (None: ``classify``)."""
    key = "classify" if name is None else str(name).strip().lower().replace("-", "")
    key = {"classification": "classify", "detection": "detect", "segmentation": "segment",
           "regression": "regress"}.get(key, key)
    if key not in _TASKS:
        raise ValueError(f"unknown task {name!r} (choose from: {', '.join(_TASKS)})")
    return _TASKS[key]


__all__ = ["ArrayPairs", "ClassifyTask", "DetectTask", "DetectionMAP", "HalfSquaredError",
           "MultiLabelMAP", "MultiLabelTask", "RegressTask", "RegressionScore", "SegmentTask",
           "TASKS", "Task", "TaskData", "get_task", "void_band"]
