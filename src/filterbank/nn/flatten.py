"""``Flatten`` and ``Unflatten``: reshape between feature maps and feature vectors."""

from __future__ import annotations

import numpy as np

from filterbank.functional.shape import flatten, reshape
from filterbank.nn.module import Module
from filterbank.tensor import Tensor


def _check_int(layer: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise TypeError(f"{layer}: expected {name} to be an int, got {type(v).__name__}")
    return int(v)


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one, e.g. ``(N, C, H, W) -> (N, C*H*W)``.

    The bridge from the convolutional part of a network to its fully connected head.

    Args:
        start_dim: first dim to merge. Default: 1 (keep the batch dim).
        end_dim: last dim to merge. Default: -1.

    Shape:
        - Input: ``(*, S_start, ..., S_end, *)``.
        - Output: ``(*, prod(S_start..S_end), *)``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Flatten()(fb.zeros(32, 1, 5, 5)).shape
        (32, 25)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = _check_int("Flatten", "start_dim", start_dim)
        self.end_dim = _check_int("Flatten", "end_dim", end_dim)

    def forward(self, x: Tensor) -> Tensor:
        nd = max(x.ndim, 1)
        s, e = self.start_dim, self.end_dim
        if not (-nd <= s < nd and -nd <= e < nd) or s % nd > e % nd:
            raise ValueError(f"{self!r}: cannot flatten dims {s}..{e} of an input of shape "
                             f"{tuple(x.shape)}")
        return flatten(x, s, e)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``, e.g. ``(N, 784) -> (N, 1, 28, 28)``.

    Args:
        dim: the dim to split.
        unflattened_size: the new sizes (their product must equal the dim's size; one entry may
            be -1 and is then inferred).

    Shape:
        - Input: ``(*, S_dim, *)``. Output: ``(*, U_1, ..., U_n, *)`` with
          ``prod(U) = S_dim``.

    Example:
        >>> import filterbank as fb
        >>> fb.nn.Unflatten(1, (1, 28, 28))(fb.zeros(4, 784)).shape
        (4, 1, 28, 28)
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = _check_int("Unflatten", "dim", dim)
        if isinstance(unflattened_size, int | np.integer) or not all(
                isinstance(u, int | np.integer) and not isinstance(u, bool)
                for u in unflattened_size):
            raise TypeError(f"Unflatten: expected unflattened_size to be a tuple of ints, got "
                            f"{unflattened_size!r}")
        self.unflattened_size = tuple(int(u) for u in unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"{self!r}: dim {self.dim} is out of range for an input of shape "
                             f"{tuple(x.shape)}")
        d = self.dim % x.ndim
        n = x.shape[d]
        sizes = self.unflattened_size
        known = int(np.prod([u for u in sizes if u != -1], dtype=np.int64))
        ok = (sizes.count(-1) == 0 and known == n) or (
            sizes.count(-1) == 1 and known > 0 and n % known == 0)
        if not ok:
            raise ValueError(f"{self!r}: cannot unflatten dim {self.dim} of size {n} into "
                             f"{sizes} (input shape {tuple(x.shape)})")
        return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
