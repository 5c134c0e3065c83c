"""Fine-tuning: start from another run's weights (``--init-from``), freeze parameters by name
(``--freeze``)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence

import numpy as np

from filterbank import nn
from filterbank.train.checkpoint import CheckpointError, read_checkpoint
from filterbank.train.recipe import Log, _stderr


def classifier_head(model: nn.Module, num_classes: int) -> tuple[str, nn.Module] | None:
    """``(name, module)`` of the layer producing the class scores: the last ``Linear`` with
    ``out_features == num_classes`` or ``Conv2d`` with ``out_channels == num_classes`` (in
    registration order), or None."""
    head = None
    for name, m in model.named_modules():
        if (isinstance(m, nn.Linear) and m.out_features == num_classes) or \
                (isinstance(m, nn.Conv2d) and m.out_channels == num_classes):
            head = (name, m)
    return head


def init_from(model: nn.Module, checkpoint: str | os.PathLike, old_classes: int,
              new_classes: int, log: Log = _stderr) -> list[str]:
    """Load a run's weights into ``model`` (a fresh model of the same architecture).

    When the class counts differ, the classifier head (:func:`classifier_head` of ``model``
    for ``new_classes``) keeps its fresh initialisation and every other weight is loaded.
    Everything is checked before the model is changed: a key or shape that does not fit
    raises :class:`CheckpointError` naming them.

    Returns:
        the state-dict keys left freshly initialised (empty when the heads match).
    """
    _, arrays = read_checkpoint(checkpoint)
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    own = model.state_dict()
    fresh: list[str] = []
    if old_classes != new_classes:
        head = classifier_head(model, new_classes)
        if head is None:
            raise CheckpointError(f"--init-from {checkpoint}: cannot find the classifier head "
                                  f"(a Linear or Conv2d with {new_classes} outputs) to "
                                  f"re-initialise for {new_classes} classes")
        prefix = head[0] + "." if head[0] else ""
        fresh = [k for k in own if k.startswith(prefix) and k.count(".") == prefix.count(".")]
        log(f"filterbank: --init-from: {old_classes} classes there, {new_classes} here; "
            f"the classifier head {head[0] or '(model)'} ({type(head[1]).__name__}) is "
            f"re-initialised, every other weight is loaded")
    keep = [k for k in own if k not in fresh]
    missing = [k for k in keep if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: model {own[k].shape}, checkpoint {state[k].shape}"
              for k in keep if k in state and np.shape(state[k]) != own[k].shape]
    if missing or unexpected or shapes:
        problems = [f"{what} {items[:6]}" for what, items in
                    (("missing keys", missing), ("unexpected keys", unexpected),
                     ("shape mismatches", shapes)) if items]
        raise CheckpointError(f"--init-from {checkpoint}: its weights do not fit the "
                              f"{type(model).__name__}: " + " | ".join(problems))
    model.load_state_dict({k: state[k] for k in keep}, strict=False)
    return fresh


def parse_patterns(spec: str | Sequence[str] | None) -> list[str]:
    """``"features.*,conv1"`` (or a list) -> ``["features.*", "conv1"]``."""
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    return [p.strip() for p in items if p.strip()]


def _matches(name: str, pattern: str) -> bool:
    prefix = pattern.rstrip(".")
    return fnmatch.fnmatchcase(name, pattern) or name == prefix or \
        name.startswith(prefix + ".")


def freeze(model: nn.Module, patterns: str | Sequence[str], log: Log = _stderr) -> list[str]:
    """Set ``requires_grad=False`` on the parameters whose names match ``patterns``.

    A pattern is a glob (``conv*``, ``features.*``, ``*.bias``) or a prefix of dotted names
    (``conv1`` freezes ``conv1.weight`` and ``conv1.bias``; ``layer1`` everything under it).
    Give the optimizer only the trainable parameters. Batch-norm running statistics still update in
    training mode, as in PyTorch.

    Returns:
        the names of the frozen parameters.

    Raises:
        ValueError: a pattern matches no parameter, or every parameter would be frozen.

    Example:
        >>> from filterbank.models import lenet5
        >>> net = lenet5()
        >>> freeze(net, "conv*", log=lambda s: None)
        ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias']
        >>> net.conv1.weight.requires_grad, net.fc1.weight.requires_grad
        (False, True)
    """
    pats = parse_patterns(patterns)
    params = list(model.named_parameters())
    names = [n for n, _ in params]
    for pat in pats:
        if not any(_matches(n, pat) for n in names):
            raise ValueError(f"--freeze {pat!r} matches no parameter (names are like "
                             f"{', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
    frozen = [n for n in names if any(_matches(n, p) for p in pats)]
    if len(frozen) == len(names):
        raise ValueError(f"--freeze {','.join(pats)} freezes every parameter; nothing would "
                         f"be trained")
    n_frozen = n_train = 0
    for n, p in params:
        if n in frozen:
            p.requires_grad = False
            n_frozen += p.data.size
        else:
            n_train += p.data.size
    log(f"filterbank: --freeze {','.join(pats)}: {n_frozen:,} parameters frozen "
        f"({len(frozen)} tensors), {n_train:,} trainable")
    return frozen
