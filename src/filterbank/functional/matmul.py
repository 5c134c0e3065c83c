"""Matrix product with NumPy's ``matmul`` semantics (batched, broadcast, 1-d cases)."""

from __future__ import annotations

from filterbank.autograd.function import Function, unbroadcast
from filterbank.backend import get_array_module, xp
from filterbank.tensor import Tensor


class MatMul(Function):
    """y = a @ b.  dL/da = dL/dy @ b^T,  dL/db = a^T @ dL/dy (batch dims summed back)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need >= 1 dim, got {a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise ValueError(
                f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({ka} != {kb})"
            )
        self.a, self.b = a, b
        return xp.matmul(a, b)

    def backward(self, gy):
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # put back the dims that 1-d operands dropped: (..., m, n) with m or n = 1
        if b.ndim == 1:
            gy = gy[..., None]
        if a.ndim == 1:
            gy = xp.expand_dims(gy, -2)
        ga = gb = None
        if na:
            ga = xp.matmul(gy, xp.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if nb:
            if b2.ndim == 2 and a2.ndim > 2:
                # shared weight: fold the batch into one large GEMM instead of a batched one
                k, n = b2.shape
                gb = a2.reshape(-1, k).T @ gy.reshape(-1, n)
            else:
                gb = xp.matmul(xp.swapaxes(a2, -1, -2), gy)
                gb = unbroadcast(gb, b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product ``a @ b`` following ``numpy.matmul``.

    1-d operands are promoted to a row (left) or column (right) vector and the added dimension
    is removed from the result; leading dimensions broadcast as batch dimensions.

    Example:
        >>> import filterbank as fb
        >>> (fb.ones(2, 3) @ fb.ones(3)).tolist()
        [3.0, 3.0]
    """
    return MatMul.apply(a, b)


def mm(a, b) -> Tensor:
    """Matrix product of two 2-d tensors (``torch.mm``): ``y[i, j] = sum_k a[i, k] b[k, j]``.

    Backward: ``dL/da = dL/dy b^T``, ``dL/db = a^T dL/dy``.

    Shape:
        ``(n, k) @ (k, m) -> (n, m)``.

    Example:
        >>> import filterbank as fb
        >>> fb.mm(fb.ones(2, 3), fb.ones(3, 4)).shape
        (2, 4)
    """
    if getattr(a, "ndim", None) != 2 or getattr(b, "ndim", None) != 2:
        raise ValueError(f"mm: expected two 2-d tensors, got shapes {_shape_of(a)} and "
                         f"{_shape_of(b)}")
    return MatMul.apply(a, b)


def bmm(a, b) -> Tensor:
    """Batched matrix product of two 3-d tensors with the same batch size (``torch.bmm``):
    ``y[n] = a[n] @ b[n]``; no broadcasting (use :func:`matmul` for that).

    Shape:
        ``(B, n, k) @ (B, k, m) -> (B, n, m)``.

    Example:
        >>> import filterbank as fb
        >>> fb.bmm(fb.ones(5, 2, 3), fb.ones(5, 3, 4)).shape
        (5, 2, 4)
    """
    if getattr(a, "ndim", None) != 3 or getattr(b, "ndim", None) != 3:
        raise ValueError(f"bmm: expected two 3-d tensors, got shapes {_shape_of(a)} and "
                         f"{_shape_of(b)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {a.shape} and {b.shape}")
    return MatMul.apply(a, b)


def _shape_of(a):
    return tuple(a.shape) if hasattr(a, "shape") else type(a).__name__


# ----------------------------------------------------------------------------------- einsum
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _parse_einsum(equation: str, shapes) -> tuple[list[str], str]:
    """Explicit subscripts (one per operand, and the output) with ``...`` replaced by letters
    that the equation does not use, right-aligned across operands as broadcasting does."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: expected the equation to be a string, got "
                        f"{type(equation).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operand(s) but "
                         f"{len(shapes)} were given")
    for term in terms + ([out] if arrow else []):
        rest = term.replace("...", "", 1)
        bad = [c for c in rest if c not in _LETTERS]
        if bad:
            raise ValueError(f"einsum: invalid subscript {bad[0]!r} in {equation!r} (letters "
                             f"a-z, A-Z and one '...' per operand are allowed)")
    used = set(eq) & set(_LETTERS)
    spare = [c for c in _LETTERS if c not in used]
    ell_len = 0
    for term, shape in zip(terms, shapes):
        n_named = len(term.replace("...", ""))
        if "..." in term:
            if len(shape) < n_named:
                raise ValueError(f"einsum: operand {term!r} has {n_named} named dims but the "
                                 f"tensor has shape {tuple(shape)}")
            ell_len = max(ell_len, len(shape) - n_named)
        elif len(shape) != n_named:
            raise ValueError(f"einsum: subscripts {term!r} name {n_named} dims but the tensor "
                             f"has shape {tuple(shape)}")
    if ell_len > len(spare):
        raise ValueError(f"einsum: '...' stands for {ell_len} dims, more than the free "
                         f"letters left ({len(spare)})")
    ell = "".join(spare[:ell_len])
    explicit = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            k = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", ell[ell_len - k:])
        explicit.append(term)
    if arrow:  # an ellipsis that the output omits is summed over (as PyTorch)
        out = out.replace("...", ell)
    else:  # implicit mode: '...' first, then the letters used once, in alphabetical order
        counts = {}
        for t in terms:
            for c in t.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1))
    if len(set(out)) != len(out):
        raise ValueError(f"einsum: the output {out!r} repeats a subscript")
    inputs = set("".join(explicit))
    missing = [c for c in out if c not in inputs]
    if missing:
        raise ValueError(f"einsum: output subscript {missing[0]!r} does not appear in the "
                         f"operands of {equation!r}")
    return explicit, out


def _einsum(subs, out, arrays):
    eq = ",".join(subs) + "->" + out
    return xp.einsum(eq, *arrays, optimize=len(arrays) > 1)


class Einsum(Function):
    """y = einsum(subs -> out, *x).  The gradient of operand ``i`` is the same contraction
    with ``dL/dy`` in the place of operand ``i`` and its subscripts as the output:
    ``dL/dx_i = einsum(out, subs_j (j != i) -> subs_i)(dL/dy, x_j...)``.

    Two cases need more than the swap: a letter found only in ``x_i`` (summed out in forward)
    is absent from every other term, so the gradient is computed without it and broadcast
    along it; a letter repeated in ``x_i`` (a diagonal, ``ii``) is computed once and written
    onto the diagonal of a zero array. Size-1 dims that broadcast are summed back.
    """

    def forward(self, *arrays):
        self.arrays = arrays
        return _einsum(self.subs, self.out, arrays)

    def backward(self, gy):
        sizes = {}
        for s, a in zip(self.subs, self.arrays):
            for c, n in zip(s, a.shape):
                if n != 1 or c not in sizes:
                    sizes[c] = n
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(self.subs) if j != i]
            avail = set(self.out).union(*others)
            target = self.subs[i]
            uniq = "".join(dict.fromkeys(target))  # each letter once, in order
            kept = "".join(c for c in uniq if c in avail)
            g = _einsum([self.out] + others, kept,
                        [gy] + [a for j, a in enumerate(self.arrays) if j != i])
            # letters only in x_i: broadcast along them (forward summed them out)
            full = [sizes[c] for c in uniq]
            g = g.reshape([sizes[c] if c in avail else 1 for c in uniq])
            g = xp.broadcast_to(g, full)
            shape = self.arrays[i].shape
            if len(uniq) != len(target):  # a repeated letter: write onto the diagonal
                z = get_array_module(gy).zeros([sizes[c] for c in target], gy.dtype)
                xp.einsum(f"{target}->{uniq}", z)[...] = g
                g = z
            # operand dims of size 1 that broadcast against larger ones: sum back
            axes = tuple(k for k, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
            if axes:
                g = g.sum(axis=axes, keepdims=True)
            grads.append(get_array_module(gy).ascontiguousarray(g, dtype=gy.dtype))
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, as ``torch.einsum``: ``"ij,jk->ik"`` is a matrix product,
    ``"bij,bjk->bik"`` a batched one, ``"ii->i"`` a diagonal, ``"ij->"`` a sum.

    Each operand gets one subscript letter per dim; letters missing from the output (after
    ``->``) are summed over, and the same letter in two operands multiplies them along that
    dim. Without ``->`` the output is the letters used once, in alphabetical order. ``...``
    stands for the remaining (broadcast) dims, as in PyTorch and NumPy.

    Backward: ``dL/dx_i`` is the same einsum with ``dL/dy`` in the place of ``x_i`` and
    ``x_i``'s subscripts as the output (e.g. for ``ij,jk->ik``: ``dL/dA = einsum("ik,jk->ij",
    dL/dY, B)``), broadcast along letters that only ``x_i`` has and put on the diagonal for
    repeated letters.

    Args:
        equation: the subscripts, e.g. ``"bij,bjk->bik"``.
        operands: the tensors, as varargs or one list.

    Example:
        >>> import filterbank as fb
        >>> a, b = fb.ones(2, 3), fb.ones(3, 4)
        >>> fb.einsum("ij,jk->ik", a, b).shape, fb.einsum("ij->", a).item()
        ((2, 4), 6.0)
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    for k, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum: expected Tensor operands, got {type(op).__name__} for "
                            f"operand {k}")
    subs, out = _parse_einsum(equation, [op.shape for op in operands])
    try:
        return Einsum.apply(*operands, subs=subs, out=out)
    except ValueError as e:
        if str(e).startswith("einsum:"):
            raise
        raise ValueError(f"einsum: {equation!r} does not fit the shapes "
                         f"{[tuple(op.shape) for op in operands]}: {e}") from None
