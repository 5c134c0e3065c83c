"""PyTorch's ``dim=`` / ``keepdim=`` and NumPy's ``axis=`` / ``keepdims=``, both accepted.

One helper for the job: :func:`dim_alias` wraps a function whose signature uses one spelling so
that callers may use the other. PyTorch users write ``F.softmax(x, dim=1)`` and
``fb.cat(xs, dim=1)``; NumPy users write ``axis=1``; both reach the same parameter.
"""

from __future__ import annotations

import functools
import inspect

_PAIRS = (("dim", "axis"), ("keepdim", "keepdims"))


def dim_alias(fn):
    """Decorator: accept ``dim``/``axis`` and ``keepdim``/``keepdims`` interchangeably.

    The function's own parameter names are kept (they show in ``help()``); the other spelling
    is translated. Passing both spellings of one argument is a ``TypeError``.
    """
    params = inspect.signature(fn).parameters
    renames = {}
    for a, b in _PAIRS:
        if a in params and b not in params:
            renames[b] = a
        elif b in params and a not in params:
            renames[a] = b
    if not renames:
        raise TypeError(f"dim_alias: {fn.__name__} has no dim/axis or keepdim/keepdims parameter")
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs:
            for alias, own in renames.items():
                if alias in kwargs:
                    if own in kwargs:
                        raise TypeError(f"{name}(): got both {own}= and {alias}= (the same "
                                        f"argument); pass one")
                    kwargs[own] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    wrapper.dim_aliases = dict(renames)  # for introspection (tests check every axis function)
    return wrapper
