"""``torch.nn.utils``: gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``),
parameters as one vector, and torchvision's ``create_feature_extractor``."""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from filterbank.nn.module import Module
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


# ------------------------------------------------------------------------ feature extraction
def _names_hint(names: Sequence[str], wrong: str, limit: int = 12) -> str:
    """``valid names are: a, b, ... (N more)``, nearest matches first when there are many."""
    shown = [repr(n) for n in names]
    close = difflib.get_close_matches(wrong, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    if len(shown) > limit:
        more = len(shown) - limit
        shown = shown[:limit // 2] + [f"... ({more} more) ..."] + shown[-(limit - limit // 2):]
    return hint + "valid names are: " + ", ".join(shown)


def find_module(model: Module, layer: str | Module, where: str) -> tuple[str, Module]:
    """``(name, module)`` for a sub-module of ``model`` given by its ``named_modules()`` name
    or as the module itself; ``where`` names the caller in the ``ValueError``/``TypeError``
    raised for anything else (the valid names are listed, shortened when there are many)."""
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected model to be an nn.Module, got {type(model).__name__}")
    if isinstance(layer, Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise ValueError(f"{where}: the module {type(layer).__name__} is not a sub-module of "
                         f"the model ({type(model).__name__})")
    if not isinstance(layer, str):
        raise TypeError(f"{where}: expected a layer name (str) or a Module, got "
                        f"{type(layer).__name__}")
    named = dict(model.named_modules())
    if layer not in named:
        valid = [n for n in named if n]
        raise ValueError(f"{where}: {type(model).__name__} has no layer {layer!r}; "
                         + _names_hint(valid, layer))
    return layer, named[layer]


class _Captured(BaseException):
    """Raised by the last needed hook to skip the rest of the model's forward (a
    BaseException, so that an ``except Exception`` in a forward does not swallow it)."""


def capture_outputs(model: Module, layers: Mapping[str, Module], *args, **kwargs) -> dict:
    """Run ``model(*args, **kwargs)`` and return ``{key: first output of layers[key]}``.

    Forward hooks are placed for the call only; the model's forward is cut short as soon as
    every output is known (the rest of the network does not run). A layer the forward never
    calls is missing from the result.
    """
    got: dict[str, object] = {}
    wanted = len(layers)

    def make_hook(key):
        def hook(module, inputs, output):
            if key not in got:  # a module called twice: its first output
                got[key] = output
                if len(got) == wanted:
                    raise _Captured
        return hook

    handles = [m.register_forward_hook(make_hook(key)) for key, m in layers.items()]
    try:
        model(*args, **kwargs)
    except _Captured:
        pass
    finally:
        for h in handles:
            h.remove()
    return got


class FeatureExtractor(Module):
    """A model whose forward returns a dict of intermediate activations; see
    :func:`create_feature_extractor`."""

    def __init__(self, model: Module, return_nodes: Mapping[str, str]):
        super().__init__()
        self.model = model
        self.return_nodes = dict(return_nodes)

    def forward(self, *args, **kwargs) -> dict:
        named = dict(self.model.named_modules())
        got = capture_outputs(self.model, {key: named[name]
                                           for name, key in self.return_nodes.items()},
                              *args, **kwargs)
        missing = [n for n, k in self.return_nodes.items() if k not in got]
        if missing:
            raise RuntimeError(f"create_feature_extractor: the layers {missing} were not called "
                               f"by {type(self.model).__name__}.forward, so they have no output")
        return {key: got[key] for key in self.return_nodes.values()}

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """The model's state_dict (its keys, without a ``model.`` prefix, as torchvision's)."""
        return self.model.state_dict()

    def load_state_dict(self, state_dict, strict: bool = True):
        return self.model.load_state_dict(state_dict, strict=strict)

    def extra_repr(self) -> str:
        return "return_nodes=" + repr(self.return_nodes)


def create_feature_extractor(model: Module,
                             return_nodes: Sequence[str] | Mapping[str, str]) -> FeatureExtractor:
    """A module that runs ``model`` and returns the outputs of some of its layers, by name
    (torchvision's ``create_feature_extractor``).

    ``features = extractor(x)`` is ``{key: output of layer name}``, in the order given. The
    layers are found by their :meth:`Module.named_modules` names (``"features.0"``,
    ``"layer2.1.conv1"``; torchvision uses its traced graph's node names, which are the same
    for module outputs). Forward hooks capture the outputs, placed for the call only (the model
    is left untouched), and the model's forward stops as soon as every requested output is
    known, so the layers after them cost nothing. The outputs stay in the graph: gradients can
    flow back from them. A layer called twice gives its first output.

    Args:
        model: the network.
        return_nodes: a list of layer names (each its own key), or a dict ``{name: key}``.

    Returns:
        A :class:`FeatureExtractor`; it shares the model's parameters and its ``state_dict``
        is the model's.

    Raises:
        ValueError: an unknown layer name (the valid ones are listed) or no names at all.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.nn.utils import create_feature_extractor
        >>> net = fb.nn.Sequential(fb.nn.Conv2d(1, 4, 3), fb.nn.ReLU(), fb.nn.Flatten())
        >>> fe = create_feature_extractor(net, {"0": "conv", "1": "relu"})
        >>> {k: v.shape for k, v in fe(fb.zeros(2, 1, 5, 5)).items()}
        {'conv': (2, 4, 3, 3), 'relu': (2, 4, 3, 3)}
    """
    where = "create_feature_extractor"
    if isinstance(return_nodes, str):
        return_nodes = [return_nodes]
    if isinstance(return_nodes, Mapping):
        pairs = list(return_nodes.items())
    elif isinstance(return_nodes, Sequence):
        pairs = [(n, n) for n in return_nodes]
    else:
        raise TypeError(f"{where}: expected return_nodes to be a list of layer names or a dict "
                        f"name -> key, got {type(return_nodes).__name__}")
    if not pairs:
        raise ValueError(f"{where}: return_nodes is empty; give at least one layer name")
    for name, key in pairs:
        find_module(model, name, where)
        if not isinstance(key, str):
            raise TypeError(f"{where}: output keys must be strings, got {key!r} for {name!r}")
    keys = [k for _, k in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{where}: output keys must be unique, got {keys}")
    return FeatureExtractor(model, dict(pairs))
