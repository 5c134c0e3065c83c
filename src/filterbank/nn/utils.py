"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (as ``torch.nn.utils``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from filterbank.tensor import Tensor


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Rescale gradients in place so that their joint norm is at most ``max_norm``.

    ``total = || (||g_1||, ..., ||g_k||) ||_p`` over all gradients (one long vector), then
    every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))`` (PyTorch's rule,
    including the 1e-6).

    Args:
        parameters: tensors whose ``.grad`` to clip (those without a gradient are skipped).
        max_norm: the largest allowed total norm.
        norm_type: p of the p-norm; ``float('inf')`` for the largest absolute value.
        error_if_nonfinite: raise if the total norm is NaN or infinite.

    Returns:
        The total norm before clipping, as a 0-d float32 Tensor.

    Example:
        >>> import filterbank as fb
        >>> p = fb.Tensor([3.0, 4.0], requires_grad=True); (p * p).sum().backward()
        >>> float(clip_grad_norm_([p], 1.0))       # the gradient (6, 8) has norm 10
        10.0
        >>> [round(g, 4) for g in p.grad.tolist()]  # rescaled to norm 1 (up to the 1e-6)
        [0.6, 0.8]
    """
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.zeros((), np.float32))
    dtype = grads[0].dtype
    if norm_type == float("inf"):
        norms = [np.max(np.abs(g)) if g.size else dtype.type(0) for g in grads]
        total = np.max(np.stack(norms))
    elif norm_type == 2.0:
        # sqrt(sum of squares) via a dot product: float32 accumulation, no temporaries
        total = np.sqrt(np.sum(np.stack([np.dot(g.ravel(), g.ravel()) for g in grads])))
    else:
        p = dtype.type(norm_type)
        norms = [np.sum(np.abs(g) ** p) ** (dtype.type(1) / p) for g in grads]
        total = np.sum(np.stack(norms) ** p) ** (dtype.type(1) / p)
    total = np.asarray(total, dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {float(total)}; set error_if_nonfinite=False to clip "
                           f"anyway")
    coef = dtype.type(max_norm) / (total + dtype.type(1e-6))
    if coef < 1:
        for g in grads:
            g *= coef
    return Tensor(total)


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place.

    Args:
        parameters: tensors whose ``.grad`` to clip.
        clip_value: the largest allowed absolute value (must be positive).
    """
    clip_value = float(clip_value)
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value_: clip_value must be positive, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one vector (``torch.nn.utils`` order: the
    iteration order, each flattened in C order). Differentiable: it is ``cat`` of views.

    Args:
        parameters: an iterable of tensors (e.g. ``model.parameters()``).

    Shape:
        Output: ``(sum of p.numel()),``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn.utils import parameters_to_vector
        >>> parameters_to_vector([fb.ones(2, 2), fb.zeros(1)]).tolist()
        [1.0, 1.0, 1.0, 1.0, 0.0]
    """
    from filterbank.functional.shape import concatenate, reshape

    if isinstance(parameters, Tensor):
        raise TypeError("parameters_to_vector: expected an iterable of tensors, got a Tensor "
                        "(wrap it in a list)")
    params = list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters_to_vector: expected tensors, got {type(p).__name__}")
    if not params:
        raise ValueError("parameters_to_vector: expected at least one parameter, got none")
    return concatenate([reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """The inverse of :func:`parameters_to_vector`: slice ``vec`` into the parameters.

    As in PyTorch, each parameter's ``data`` becomes a view of its slice of ``vec`` (no copy:
    writing to ``vec`` afterwards changes the parameters); the parameters stay the same
    objects, so optimizers holding them are unaffected.

    Args:
        vec: a 1-d tensor with as many elements as all the parameters together.
        parameters: an iterable of tensors, in the order used to build ``vec``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn.utils import vector_to_parameters
        >>> a, b = fb.zeros(2), fb.zeros(1, 1)
        >>> vector_to_parameters(fb.tensor([1.0, 2.0, 3.0]), [a, b])
        >>> a.tolist(), b.tolist()
        ([1.0, 2.0], [[3.0]])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-d vec, got shape {vec.shape}")
    params = list(parameters)
    total = sum(int(p.data.size) for p in params)
    if total != vec.data.size:
        raise ValueError(f"vector_to_parameters: vec has {vec.data.size} elements but the "
                         f"parameters have {total}")
    start = 0
    for p in params:
        n = int(p.data.size)
        p.data = vec.data[start:start + n].reshape(p.data.shape)
        start += n
