"""Checkpoints: arrays in one safetensors file, everything else in a JSON sidecar. No pickle.

A checkpoint named ``runs/last`` is two files::

    runs/last.json                          the sidecar: format, version, metadata, and the
                                            name, size and SHA-256 of the tensor file
    runs/last-<first 16 hex of sha256>.safetensors   every array (model, optimizer state, ...)

Saving writes the tensor file (temp file in the same folder, fsync, ``os.replace``), then the
sidecar the same way, then deletes the previous tensor file. The sidecar's replace is the commit
point: a crash at any moment leaves either the old pair or the new pair complete, never a mix,
because the tensor file's name is derived from its content and the old one is removed only
after the new sidecar is in place. Loading checks everything (format, version, size, hash,
keys, shapes) before it touches the model, and restores the previous state if applying fails
half-way.

Nothing in the files is trusted: both must be regular files (a FIFO, a device or a link to one
is refused after a ``stat``, before it is opened); the sidecar is read only if it is at most
:data:`~filterbank.train.schema.MAX_JSON_BYTES` and is checked against
:data:`~filterbank.train.schema.CHECKPOINT` (types, required keys, nesting depth); the tensor
file only if its size is the one the sidecar records, and then only the bytes its header
declares. Every problem is a :class:`CheckpointError` naming the file and the field.

Nested Python structures (optimizer and scheduler states, RNG states, History) are stored as
JSON in which each array is replaced by ``{"__tensor__": key}`` pointing into the safetensors
file; NumPy scalars, tuples and dicts with non-string keys are tagged so they come back with
the same types (an optimizer continues bit-identically).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from filterbank import random as _random
from filterbank.serialization import (
    atomic_write_bytes,
    check_regular,
    decode_tree,
    encode_tree,
    read_safetensors,
)
from filterbank.serialization import c_order as _c_order
from filterbank.train import schema

__all__ = ["CheckpointError", "atomic_write_bytes", "checkpoint_paths", "load_checkpoint",
           "read_checkpoint", "resolve", "save_checkpoint"]

FORMAT = "filterbank-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a (valid) checkpoint, or does not fit the model/optimizer given."""


# ----------------------------------------------------------------------------- paths
def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, str]:
    """(sidecar path, stem name) for ``path`` given with or without a suffix."""
    p = Path(path)
    name = p.name
    for suffix in (".json", ".safetensors"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    # a path to the tensor file itself ("last-<hash>.safetensors") names the same checkpoint
    name = re.sub(r"-[0-9a-f]{16}$", "", name)
    return p.with_name(name + ".json"), name


def _tensor_name(stem: str, sha: str) -> str:
    return f"{stem}-{sha[:16]}.safetensors"


def resolve(path: str | os.PathLike) -> str | os.PathLike:
    """A run folder (``filterbank train``'s output) names its final ``model.json``, else its
    training state ``checkpoints/last.json``; any other path is returned as given."""
    p = Path(path).expanduser()
    if p.is_dir():
        for cand in (p / "model.json", p / "checkpoints" / "last.json"):
            if os.path.lexists(cand):  # a FIFO or device in its place is refused, not skipped
                _check_regular(cand)
                return cand
        raise FileNotFoundError(f"{path}: a folder without a checkpoint (no model.json or "
                                f"checkpoints/last.json in it)")
    return path


def _check_regular(path: Path) -> None:
    """A regular file (links followed), else CheckpointError; a dangling link says so."""
    try:
        check_regular(path, CheckpointError)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: a link to {os.path.realpath(path)}, which does not "
                              f"exist") from None


# -------------------------------------------------------------------- tree encoding
def _encode(obj, key: str, tensors: dict):
    """JSON-able version of ``obj``; arrays go into ``tensors`` under ``key``."""
    return encode_tree(obj, key, tensors, "save_checkpoint", CheckpointError)


def _decode(obj, tensors: dict, where: str):
    return decode_tree(obj, tensors, where, CheckpointError, as_tensors=False)


# ------------------------------------------------------------------------------ save
def save_checkpoint(path: str | os.PathLike, model=None, optimizer=None, scheduler=None, *,
                    epoch: int = 0, global_step: int = 0, history=None, loaders=None,
                    callbacks=None, extra=None, rng: bool = True) -> Path:
    """Save a training state atomically; returns the sidecar's path.

    Args:
        path: checkpoint name (``runs/last``; a ``.json``/``.safetensors`` suffix is ignored).
        model: a Module; its ``state_dict()`` is stored.
        optimizer, scheduler: objects with ``state_dict()`` (optional).
        epoch: number of completed epochs.
        global_step: number of completed optimizer steps.
        history: a :class:`~filterbank.train.History` or dict of lists.
        loaders: dict of name -> DataLoader (their generator states, for exact resume).
        callbacks: dict of name -> state dict (JSON-able, may contain arrays).
        extra: any further JSON-able data (may contain arrays).
        rng: store the global generator's state (``fb.manual_seed``'s generator).

    Example:
        >>> save_checkpoint("runs/last", model, opt, epoch=3)      # doctest: +SKIP
        PosixPath('runs/last.json')
    """
    sidecar, stem = checkpoint_paths(path)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    meta: dict = {"format": FORMAT, "format_version": FORMAT_VERSION}
    from filterbank import __version__

    meta["filterbank_version"] = __version__
    meta["epoch"] = int(epoch)
    meta["global_step"] = int(global_step)
    if model is not None:
        state = model.state_dict()
        meta["model"] = {"class": type(model).__name__,
                         "keys": {k: list(v.shape) for k, v in state.items()}}
        for k, v in state.items():
            tensors[f"model/{k}"] = _c_order(v)
    if optimizer is not None:
        meta["optimizer"] = {"class": type(optimizer).__name__,
                             "state": _encode(optimizer.state_dict(), "optimizer", tensors)}
    if scheduler is not None:
        meta["scheduler"] = {"class": type(scheduler).__name__,
                             "state": _encode(scheduler.state_dict(), "scheduler", tensors)}
    if history is not None:
        meta["history"] = _encode(dict(history), "history", tensors)
    meta["rng"] = {"global": _random.get_rng_state() if rng else None,
                   "loaders": {name: ld.state_dict() for name, ld in (loaders or {}).items()}}
    if callbacks:
        meta["callbacks"] = _encode(callbacks, "callbacks", tensors)
    if extra is not None:
        meta["extra"] = _encode(extra, "extra", tensors)

    blob = safetensors.numpy.save(tensors, metadata={"format": FORMAT})
    sha = hashlib.sha256(blob).hexdigest()
    tensor_file = _tensor_name(stem, sha)
    meta["tensor_file"] = tensor_file
    meta["tensor_bytes"] = len(blob)
    meta["tensor_sha256"] = sha

    atomic_write_bytes(sidecar.with_name(tensor_file), blob)
    text = json.dumps(meta, indent=1, allow_nan=True)
    atomic_write_bytes(sidecar, text.encode("utf-8"))  # the commit point
    # the new pair is complete: remove tensor files of older (or crashed) saves of this name
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{16}\.safetensors")
    for f in sidecar.parent.iterdir():
        if f.name != tensor_file and pattern.fullmatch(f.name):
            try:
                f.unlink()
            except OSError:
                pass
    return sidecar


# ------------------------------------------------------------------------------ load
def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a checkpoint without applying it: ``(metadata, arrays)``.

    ``path`` may be a run folder (see :func:`resolve`).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        CheckpointError: not a filterbank checkpoint, unsupported version, tensor file missing,
            truncated, corrupted or not the one the sidecar describes.
    """
    sidecar, meta = read_sidecar(path)
    tfile = sidecar.with_name(meta["tensor_file"])
    try:
        _, blob = read_safetensors(tfile, CheckpointError, meta["tensor_bytes"],
                                   f"recorded in {sidecar.name}")
    except FileNotFoundError:
        raise CheckpointError(f"{sidecar}: its tensor file {tfile.name} is missing") from None
    if hashlib.sha256(blob).hexdigest() != meta["tensor_sha256"]:
        raise CheckpointError(f"{tfile}: corrupted or mismatched: its SHA-256 differs from "
                              f"the one recorded in {sidecar.name}")
    try:
        arrays = safetensors.numpy.load(blob)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        raise CheckpointError(f"{tfile}: not a readable safetensors file ({e})") from None
    return meta, arrays


def read_sidecar(path: str | os.PathLike) -> tuple[Path, dict]:
    """A checkpoint's JSON sidecar, read safely and checked against the schema, without
    reading its tensor file: ``(sidecar path, metadata)`` (``path`` as for
    :func:`read_checkpoint`, whose first half this is)."""
    path = resolve(path)
    sidecar, _ = checkpoint_paths(path)
    if not os.path.lexists(sidecar):
        given = Path(path)
        if given.exists() and given != sidecar:
            raise CheckpointError(f"{given}: not a filterbank checkpoint (its JSON sidecar "
                                  f"{sidecar.name} is missing)")
        raise FileNotFoundError(f"{sidecar}: no checkpoint found")
    _check_regular(sidecar)  # FIFOs and devices: refused before anything opens them
    try:
        meta = schema.read_json(sidecar, CheckpointError, "checkpoint sidecar")
    except CheckpointError as e:  # too large, not JSON, nested too deeply
        raise CheckpointError(f"{sidecar}: not a filterbank checkpoint "
                              f"({str(e).removeprefix(f'{sidecar}: ')})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar}: not a filterbank checkpoint (expected "
                              f"\"format\": \"{FORMAT}\" in the sidecar)")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION \
            or version < 1:
        raise CheckpointError(f"{sidecar}: checkpoint format version {version!r} is not "
                              f"supported (this filterbank reads versions 1..{FORMAT_VERSION})")
    schema.validate(meta, schema.CHECKPOINT, str(sidecar), CheckpointError)
    name = meta["tensor_file"]
    if Path(name).name != name or name in ("", ".", ".."):
        raise CheckpointError(f"{sidecar}: damaged sidecar (tensor_file must be a file name "
                              f"in the same folder, got {name!r})")
    return sidecar, meta


def _check_model(sidecar, meta, arrays, model) -> dict[str, np.ndarray]:
    if "model" not in meta:
        raise CheckpointError(f"{sidecar}: the checkpoint holds no model state")
    incoming = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    own = model.state_dict()
    missing = [k for k in own if k not in incoming]
    unexpected = [k for k in incoming if k not in own]
    shapes = [f"{k}: model {tuple(v.shape)}, checkpoint {tuple(incoming[k].shape)}"
              for k, v in own.items() if k in incoming and incoming[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:8]}" + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:8]}"
                        + (" ..." if len(unexpected) > 8 else ""))
    if shapes:
        problems.append("shape mismatches " + "; ".join(shapes[:8]))
    if problems:
        raise CheckpointError(
            f"{sidecar}: this checkpoint (of a {meta['model'].get('class', '?')}) does not fit "
            f"the {type(model).__name__} given: " + " | ".join(problems))
    return incoming


def _check_groups(sidecar, saved: dict, optimizer) -> None:
    own = optimizer.state_dict()
    try:
        saved_sizes = [len(g["params"]) for g in saved["param_groups"]]
    except (KeyError, TypeError):
        raise CheckpointError(f"{sidecar}: damaged optimizer state (no param_groups)") from None
    own_sizes = [len(g["params"]) for g in own["param_groups"]]
    if saved_sizes != own_sizes:
        raise CheckpointError(f"{sidecar}: the saved optimizer has parameter groups of sizes "
                              f"{saved_sizes}, the {type(optimizer).__name__} given has "
                              f"{own_sizes}")


def load_checkpoint(path: str | os.PathLike, model=None, optimizer=None, scheduler=None,
                    loaders=None, *, missing_loaders: str = "error") -> dict:
    """Verify a checkpoint, then load it into ``model`` (and optimizer/scheduler/loaders).

    Everything is validated before anything is modified: a file that is not a checkpoint, a
    truncated or mismatched tensor file, or a model whose keys or shapes differ raises
    :class:`CheckpointError` naming the file and the problem, and leaves the objects unchanged.

    Args:
        path: the checkpoint (``runs/last`` or ``runs/last.json``), or a run folder of
            ``filterbank train`` (its final ``model.json``, else ``checkpoints/last.json``).
        model: Module to load the weights into.
        optimizer, scheduler: loaded when given (the checkpoint must contain them).
        loaders: dict of name -> DataLoader whose generator states to restore.
        missing_loaders: 'error' or 'ignore' a loader the checkpoint has no state for.

    Returns:
        the metadata: ``epoch``, ``global_step``, ``history`` (dict), ``rng``, ``callbacks``,
        ``extra`` (arrays decoded) and the file names.

    Example:
        >>> model = get_model("lenet5", padding=2)                  # doctest: +SKIP
        >>> load_checkpoint("runs/lenet5-fashion-mnist-20250101-120000", model)  # doctest: +SKIP
    """
    path = resolve(path)
    sidecar, _ = checkpoint_paths(path)
    meta, arrays = read_checkpoint(path)
    model_state = _check_model(sidecar, meta, arrays, model) if model is not None else None
    opt_state = sched_state = None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{sidecar}: the checkpoint holds no optimizer state")
        opt_state = _decode(meta["optimizer"]["state"], arrays, str(sidecar))
        _check_groups(sidecar, opt_state, optimizer)
    if scheduler is not None:
        if "scheduler" not in meta:
            raise CheckpointError(f"{sidecar}: the checkpoint holds no scheduler state")
        sched_state = _decode(meta["scheduler"]["state"], arrays, str(sidecar))
    loader_states = meta.get("rng", {}).get("loaders", {})  # types checked by the schema
    if missing_loaders == "ignore":
        loaders = {k: v for k, v in (loaders or {}).items() if k in loader_states}
    for name in loaders or {}:
        if name not in loader_states:
            raise CheckpointError(f"{sidecar}: no state for data loader {name!r} (saved: "
                                  f"{sorted(loader_states)})")
    decoded = _decode_all(sidecar, meta, arrays)  # a damaged tree fails before any change

    # apply; should anything still fail, put every object back as it was
    backups = []
    try:
        if model is not None:
            backups.append((model, model.state_dict()))
            model.load_state_dict(model_state)
        if optimizer is not None:
            backups.append((optimizer, copy.deepcopy(optimizer.state_dict())))
            optimizer.load_state_dict(opt_state)
        if scheduler is not None:
            backups.append((scheduler, copy.deepcopy(scheduler.state_dict())))
            scheduler.load_state_dict(sched_state)
        for name, ld in (loaders or {}).items():
            backups.append((ld, ld.state_dict()))
            ld.load_state_dict(loader_states[name])
    except Exception as e:
        for obj, state in reversed(backups):
            try:
                obj.load_state_dict(state)
            except Exception:  # the object that failed may refuse its old state too
                pass
        raise CheckpointError(f"{sidecar}: could not be applied ({type(e).__name__}: {e}); "
                              f"nothing was changed") from e

    out = {k: meta.get(k) for k in ("epoch", "global_step", "rng", "format_version",
                                    "filterbank_version", "tensor_file")}
    out["sidecar"] = str(sidecar)
    out.update(decoded)
    return out


def _decode_all(sidecar, meta: dict, arrays: dict) -> dict:
    """history, callbacks and extra decoded (history and callbacks must stay objects)."""
    out = {}
    for key, default in (("history", {}), ("callbacks", {}), ("extra", None)):
        out[key] = _decode(meta.get(key, default), arrays, str(sidecar))
        if key != "extra" and not isinstance(out[key], dict):
            raise CheckpointError(f"{sidecar}: {key}: expected an object, got a "
                                  f"{type(out[key]).__name__} once decoded")
    return out
