"""``fb.device``: where a tensor lives: ``"cpu"`` (NumPy arrays) or ``"cuda"``/``"cuda:N"``
(CuPy arrays on GPU N; CuPy is the optional extra ``filterbank[cuda12]`` / ``[cuda13]``).

As ``torch.device``, a descriptor can be made without the hardware (``fb.device("cuda")`` works
on any machine); moving data there is what needs CuPy and a GPU, and raises a clear error
without them.

Example:
    >>> import filterbank as fb
    >>> d = fb.device("cpu")
    >>> str(d), d == "cpu", d.type
    ('cpu', True, 'cpu')
    >>> g = fb.device("cuda:1")
    >>> g.type, g.index, g == fb.device("cuda", 1)
    ('cuda', 1, True)
"""

from __future__ import annotations

import numpy as np

_OTHER_GPU_TYPES = ("mps", "xpu", "hip", "rocm", "gpu", "cupy")


class device:  # noqa: N801 - PyTorch's name (torch.device)
    """A device descriptor, like ``torch.device``: ``device("cpu")``, ``device("cpu:0")``,
    ``device("cuda")``, ``device("cuda:1")``, ``device("cuda", 1)`` or another device.

    Args:
        type: ``"cpu"`` or ``"cuda"``, optionally with ``":index"``, or a :class:`device`.
        index: the device index: ``None`` or 0 for the CPU; the GPU number for ``"cuda"``
            (``None``: the current GPU, 0).

    Raises:
        ValueError: for any other device name (``"mps"``, ``"xpu"``, ... say that CUDA is the
            only GPU backend), or a bad index.
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str | device = "cpu", index: int | None = None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a device name such as 'cpu', got "
                            f"{builtin_type(type).__name__}")
        name, _, idx = type.strip().partition(":")
        name = name.lower()
        if idx:
            if index is not None or not idx.isdigit():
                raise ValueError(f"device: invalid device string {type!r}")
            index = int(idx)
        if name in _OTHER_GPU_TYPES:
            raise ValueError(f"device: {type!r} is not available: filterbank's GPU backend is "
                             f"CUDA through CuPy ('cuda', 'cuda:N'), besides 'cpu' (NumPy "
                             f"arrays)")
        if name not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device {type!r}; expected 'cpu' or 'cuda'")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)
                                  or index < 0):
            raise ValueError(f"device: expected a non-negative int index, got {index!r}")
        if name == "cpu" and index is not None and index != 0:
            raise ValueError(f"device: there is only one CPU device (index 0), got index "
                             f"{index!r}")
        self.type = name
        self.index = index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{extra})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))


builtin_type = type  # ``type`` is an argument name above (PyTorch's)

CPU = device("cpu")


def _is_device_like(value) -> bool:
    if isinstance(value, device):
        return True
    if not isinstance(value, str):
        return False
    try:
        np.dtype(value)
    except TypeError:
        return True  # not a dtype name: treat it as a device name (checked by ``device``)
    return False


def parse_to_args(name: str, *args, **kwargs) -> tuple[device | None, np.dtype | None]:
    """The ``(device, dtype)`` of a ``.to(...)`` call, as PyTorch accepts them:
    ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)`` (its device and
    dtype), and the keywords ``device=``, ``dtype=``, ``non_blocking=``, ``copy=``.

    Args:
        name: the caller, for error messages (e.g. ``"Module.to"``).
    """
    from filterbank.tensor import Tensor

    dev = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{name}: unexpected keyword argument(s) {sorted(kwargs)}")
    if len(args) > 2:
        raise TypeError(f"{name}: expected at most a device and a dtype, got {len(args)} "
                        f"positional arguments")
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif _is_device_like(a):
            if dev is not None:
                raise TypeError(f"{name}: device given twice")
            dev = a
        elif a is not None:
            if dtype is not None:
                raise TypeError(f"{name}: dtype given twice")
            dtype = a
    if dev is not None:
        dev = device(dev)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{name}: expected a dtype or a device, got {dtype!r}") from None
    return dev, dtype
