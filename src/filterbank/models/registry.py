"""Models by name: ``get_model(name, **kwargs)`` and ``available_models()``."""

from __future__ import annotations

from collections.abc import Callable

from filterbank.models.alexnet import alexnet
from filterbank.models.lenet import lenet5
from filterbank.models.resnet import resnet8, resnet18, resnet20, resnet34, resnet50
from filterbank.models.simple import simple_cnn
from filterbank.models.unet import unet
from filterbank.models.vgg import (
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from filterbank.models.yolo import tiny_yolo, yolo_v1
from filterbank.nn.module import Module

_MODELS: dict[str, Callable[..., Module]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg11": vgg11,
    "vgg11_bn": vgg11_bn,
    "vgg13": vgg13,
    "vgg13_bn": vgg13_bn,
    "vgg16": vgg16,
    "vgg16_bn": vgg16_bn,
    "vgg19": vgg19,
    "vgg19_bn": vgg19_bn,
    "resnet8": resnet8,
    "resnet20": resnet20,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "unet": unet,
    "simple_cnn": simple_cnn,
    "yolo_v1": yolo_v1,
    "tiny_yolo": tiny_yolo,
}

#: What a model's output is, for models that are not classifiers (``(N, num_classes)`` logits):
#: ``'detect'`` gives the YOLO v1 grid ``(N, S, S, B*5 + C)``, ``'segment'`` per-pixel logits
#: ``(N, num_classes, H', W')``.
_TASKS: dict[str, str] = {"yolo_v1": "detect", "tiny_yolo": "detect", "unet": "segment"}


def available_models() -> list[str]:
    """Names accepted by :func:`get_model`, in a fixed order (small to large families).

    Example:
        >>> available_models()[:3]
        ['lenet5', 'alexnet', 'vgg11']
    """
    return list(_MODELS)


def model_task(name: str) -> str:
    """The task the model called ``name`` is built for: ``'classify'``, ``'detect'`` or
    ``'segment'``.

    Example:
        >>> model_task("resnet18"), model_task("tiny_yolo"), model_task("unet")
        ('classify', 'detect', 'segment')
    """
    key = canonical_name(name)
    if key not in _MODELS:
        raise ValueError(f"model_task: unknown model {name!r}; available: {', '.join(_MODELS)}")
    return _TASKS.get(key, "classify")


def canonical_name(name: str) -> str:
    """The registry key ``name`` means (case, ``-`` for ``_`` and the short spellings
    ``lenet``, ``simplecnn``, ``tinyyolo``, ``yolov1`` tolerated); unknown names come back
    normalised."""
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


_ALIASES = {"lenet": "lenet5", "simplecnn": "simple_cnn", "tinyyolo": "tiny_yolo",
            "yolov1": "yolo_v1"}


def get_model(name: str, **kwargs) -> Module:
    """Build the model called ``name`` with keyword arguments for its factory
    (``num_classes``, ``in_channels``, ``stem``, ``width``, ``batch_norm`` ...).

    Example:
        >>> get_model("lenet5", num_classes=10, padding=2).num_parameters()
        61706
    """
    factory = _MODELS.get(canonical_name(name))
    if factory is None:
        raise ValueError(f"get_model: unknown model {name!r}; available: "
                         f"{', '.join(_MODELS)}")
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise TypeError(f"get_model({name!r}): {e}") from None
