"""Load a PyTorch ``state_dict`` saved as safetensors into a filterbank model.

The zoo's parameter and buffer names follow torchvision's (``conv1.weight``,
``layer1.0.bn1.running_mean``, ``fc.bias``...), so a ``state_dict`` maps one to one: no renaming
table. Saved from PyTorch with::

    from safetensors.torch import save_file
    save_file(torch_model.state_dict(), "weights.safetensors")

float16 and bfloat16 arrays become float32 (bfloat16 is the upper half of a float32: NumPy has
no bfloat16, so its 16 bits are shifted into place); integer buffers keep their dtype
(``num_batches_tracked`` stays int64).
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from filterbank import nn
from filterbank.serialization import (
    _DTYPES,
    MAX_HEADER_BYTES,
    RegularFile,
    check_fits_in_memory,
    check_header,
)

__all__ = ["TorchLoadReport", "load_torch_state_dict", "read_torch_safetensors"]

# BatchNorm counters: PyTorch's own load_state_dict tolerates their absence (state_dicts saved
# before torch 0.4.1 lack them) and so does this one; they only matter for momentum=None
_OPTIONAL = "num_batches_tracked"


class TorchLoadReport(NamedTuple):
    """What :func:`load_torch_state_dict` did not load (empty lists: everything fit)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _error(message: str) -> ValueError:
    # serialization's header checks speak of files filterbank wrote; these come from PyTorch
    return ValueError(message.replace(" written by filterbank", ""))


def read_torch_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, by name, float16/bfloat16 as float32.

    The file is read with :mod:`filterbank.serialization`'s checks: a regular file, a header
    of at most 64 MiB whose every entry has a known dtype and a byte range that fits its
    shape, ranges covering the data exactly, and data that fits in memory; otherwise a
    ValueError naming the file and the problem.
    """
    with RegularFile(path, _error) as f:
        if f.size < 8:
            raise _error(f"{path}: not a safetensors file ({f.size} bytes, too short for a "
                         f"safetensors header)")
        n = int.from_bytes(f.read(8), "little")
        if n > f.size - 8 or n > MAX_HEADER_BYTES:
            raise _error(f"{path}: not a safetensors file (its header claims {n:,} bytes, "
                         f"the file has {f.size - 8:,} after the length field; truncated?)")
        header_bytes = f.read(n)
        try:
            raw = json.loads(header_bytes)
        except (ValueError, RecursionError):
            raw = None  # check_header names the problem
        bf16 = set()
        if isinstance(raw, dict):
            for name, info in raw.items():
                if isinstance(info, dict) and info.get("dtype") == "BF16":
                    bf16.add(name)
                    info["dtype"] = "U16"  # same size: the checks apply unchanged
            header_bytes = json.dumps(raw).encode()
        data_len = f.size - 8 - n
        header = check_header(path, header_bytes, data_len, _error)
        check_fits_in_memory(data_len, f"{path}: its arrays take", _error)
        data = f.read(data_len)
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")  # safetensors is LE
        count = (end - start) // dtype.itemsize
        a = np.frombuffer(data, dtype, count, start) if count else np.zeros(0, dtype)
        if name in bf16:
            a = (a.astype(np.uint32) << 16).view(np.float32)
        elif a.dtype.kind == "f" and a.dtype.itemsize < 4:
            a = a.astype(np.float32)
        arrays[name] = a.astype(a.dtype.newbyteorder("=")).reshape(info["shape"])
    return arrays


def load_torch_state_dict(model: nn.Module, path: str | os.PathLike,
                          strict: bool = True) -> TorchLoadReport:
    """Load a PyTorch ``state_dict`` saved with ``safetensors.torch.save_file`` into ``model``.

    Names map one to one (the zoo is named as torchvision). Everything is checked before
    anything is copied, so on an error the model is unchanged. ``num_batches_tracked``
    buffers absent from the file are not missing (as in PyTorch); those present are loaded.

    Args:
        model: the filterbank module, built with the same architecture and sizes.
        path: the ``.safetensors`` file.
        strict: with True (default) a missing or unexpected key is an error; with False the
            keys that fit are loaded and the others returned. A shape mismatch is always an
            error (as in PyTorch).

    Returns:
        :class:`TorchLoadReport` ``(missing_keys, unexpected_keys)``.

    Raises:
        ValueError: a damaged or hostile file (truncated, a header lying about sizes, an
            unknown dtype); :class:`~filterbank.nn.StateDictError` (a ValueError) listing
            every missing, unexpected and mis-shaped key by name.

    Example:
        >>> from filterbank.models import load_torch_state_dict, resnet18
        >>> model = resnet18(num_classes=1000)
        >>> load_torch_state_dict(model, "resnet18.safetensors")  # doctest: +SKIP
        TorchLoadReport(missing_keys=[], unexpected_keys=[])
    """
    arrays = read_torch_safetensors(path)
    # older files have no num_batches_tracked: the model keeps its own (as PyTorch does)
    own = model.state_dict()
    arrays = {**{k: v for k, v in own.items()
                 if k.rsplit(".", 1)[-1] == _OPTIONAL and k not in arrays}, **arrays}
    try:  # the keys and shapes are checked there, before anything is copied
        result = model.load_state_dict(arrays, strict=strict)
    except nn.StateDictError as e:
        hint = ""
        if all(k.startswith("module.") for k in arrays if k.rsplit(".", 1)[-1] != _OPTIONAL):
            hint = (" (every key starts with 'module.': saved from a DataParallel wrapper; "
                    "save model.module.state_dict() instead)")
        raise nn.StateDictError(f"load_torch_state_dict: {path}: {e}{hint}") from None
    return TorchLoadReport(result.missing_keys, result.unexpected_keys)
