"""Models in and out of filterbank: ``filterbank import`` and ``filterbank export``.

An import writes a run folder like ``filterbank train`` does (``config.json``, ``model.json``),
so ``evaluate``, ``predict``, ``explain``, ``dream`` and ``embed`` work on it:

* ``MODEL.onnx``: the graph is copied into the folder (``source.onnx``) and the run's config
  says ``"model": "onnx"``; :func:`~filterbank.train.runs.load_run_model` rebuilds it with
  :func:`filterbank.onnx.load` and loads the weights from ``model.json``.
* ``WEIGHTS.safetensors``: a PyTorch ``state_dict`` for the zoo model ``--model``
  (:func:`~filterbank.models.load_torch_state_dict`); the run is then an ordinary zoo run
  (``train --init-from`` fine-tunes it).

Nothing was trained, so the config's ``training`` block holds ``filterbank train``'s defaults
with ``epochs_completed: 0`` in ``results``, and ``imported`` records the source file and its
SHA-256. The inputs are normalised with ``--mean``/``--std`` (default 0 and 1 per channel:
pixels scaled to [0, 1]), which must be those the weights were trained with.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import filterbank as fb
from filterbank import nn
from filterbank.serialization import check_regular
from filterbank.train.checkpoint import save_checkpoint
from filterbank.train.recipe import (
    DEFAULT_INPUT,
    Log,
    build_model,
    model_kwargs,
    model_name,
)
from filterbank.train.runs import (
    ONNX_MODEL,
    RUN_FORMAT,
    RUN_VERSION,
    load_run_model,
    run_folder,
    write_json,
)

__all__ = ["FORMATS", "export_run", "import_model"]

#: What ``filterbank export`` writes.
FORMATS = ("onnx",)
_ONNX_COPY = "source.onnx"
# what an import without --dataset records: evaluate then says "unknown data set '<this>'"
# (an empty string would mean the current folder, read as an image folder)
NO_DATASET = "none (imported: give evaluate --dataset)"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _unsupported(e: NotImplementedError, what: str) -> ValueError:
    # an op or attribute the ONNX code does not handle is the file's problem, not a bug
    return ValueError(f"{what}: {e}")


def _onnx_input_size(path: Path) -> tuple[int, int, int] | None:
    """(C, H, W) of the graph's first input when its dims are fixed, else None."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in inits]
    if not inputs:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    values = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    if len(values) != 4 or min(values[1:]) < 1:
        return None
    return values[1], values[2], values[3]


def _check_norm(values, channels: int, flag: str) -> list[float]:
    if values is None:
        return [0.0 if flag == "--mean" else 1.0] * channels
    values = [float(v) for v in values]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or not all(np.isfinite(values)):
        count = "1 finite number" if channels == 1 else f"1 or {channels} finite numbers"
        raise ValueError(f"{flag}: expected {count} (one per channel), got {values}")
    if flag == "--std" and min(values) <= 0:
        raise ValueError(f"--std: expected numbers > 0, got {values}")
    return values


def _fresh_folder(out) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out}: exists and is not an empty folder; choose another "
                         f"--out (an import never overwrites)")
    return out


def _classes(classes: Sequence[str] | None, num_classes: int | None,
             found: int) -> list[str]:
    if classes:
        if len(classes) != found:
            raise ValueError(f"--classes: the model has {found} outputs, got {len(classes)} "
                             f"names")
        return [str(c) for c in classes]
    if num_classes is not None and num_classes != found:
        raise ValueError(f"--num-classes {num_classes}: the model has {found} outputs")
    return [str(i) for i in range(found)]


def _torch_model(source: Path, name: str, channels: int, size, num_classes: int | None,
                 model_args: dict | None) -> tuple[nn.Module, dict]:
    from filterbank.models import load_torch_state_dict, read_torch_safetensors

    arrays = read_torch_safetensors(source)
    kwargs = model_kwargs(name, channels, size, num_classes or 10, model_args)
    net = build_model(name, kwargs)
    if num_classes is None:  # the classifier's outputs, from the file
        last = [k for k, v in net.state_dict().items() if k.endswith("weight") and v.ndim >= 2]
        if last and last[-1] in arrays and arrays[last[-1]].ndim >= 1 \
                and arrays[last[-1]].shape[0] != kwargs["num_classes"]:
            kwargs = model_kwargs(name, channels, size, int(arrays[last[-1]].shape[0]),
                                  model_args)
            net = build_model(name, kwargs)
    del arrays
    load_torch_state_dict(net, source)
    return net, kwargs


def import_model(source: str | os.PathLike, out: str | os.PathLike, model: str | None = None,
                 num_classes: int | None = None, input_size: Sequence[int] | None = None,
                 classes: Sequence[str] | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, model_args: dict | None = None,
                 dataset: str | None = None, echo: Log = print) -> Path:
    """Write a run folder for a model trained elsewhere; returns the folder.

    Args:
        source: ``MODEL.onnx`` or ``WEIGHTS.safetensors`` (a PyTorch ``state_dict``).
        out: the run folder to create (must not exist, or be empty).
        model: the zoo model of a ``.safetensors`` file (required for one).
        num_classes: outputs (default: from ``classes``, else from the file).
        input_size: ``(C, H, W)`` (default: the ONNX graph's fixed input, else the zoo
            model's usual input).
        classes: class names (default ``"0"`` .. ``"N-1"``).
        mean, std: the normalisation the model was trained with, one number or one per
            channel (default 0 and 1: pixels in [0, 1]).
        model_args: extra zoo model arguments (``--model-arg``).
        dataset: the data set ``evaluate`` uses by default (default: none recorded).
    """
    source = Path(source)
    check_regular(source)
    kind = source.suffix.lower()
    if kind not in (".onnx", ".safetensors"):
        raise ValueError(f"import: expected a .onnx or .safetensors file, got {str(source)!r}")
    if classes and num_classes is not None and len(classes) != num_classes:
        raise ValueError(f"--classes: {len(classes)} names for --num-classes {num_classes}")
    num_classes = len(classes) if classes else num_classes
    out = _fresh_folder(out)
    if kind == ".onnx":
        if model is not None:
            raise ValueError(f"--model {model}: an ONNX file holds its own graph; --model is "
                             f"for .safetensors weights")
        import filterbank.onnx

        try:
            net = filterbank.onnx.load(source)
        except NotImplementedError as e:
            raise _unsupported(e, str(source)) from None
        if input_size is None:
            input_size = _onnx_input_size(source)
        if input_size is None:
            raise ValueError(f"{source}: the graph's input size is not fixed; give "
                             f"--input-size C H W")
        name, kwargs = ONNX_MODEL, {}
    else:
        if model is None:
            raise ValueError("import: a .safetensors file needs --model NAME (the zoo model "
                             "its state_dict belongs to)")
        name = model_name(model)
        if input_size is None:
            input_size = DEFAULT_INPUT.get(name, (3, 224, 224))
        c, h, w = (int(s) for s in input_size)
        net, kwargs = _torch_model(source, name, c, (h, w), num_classes, model_args)
    c, h, w = (int(s) for s in input_size)
    net.eval()
    x = fb.zeros(1, c, h, w)
    with fb.no_grad():
        try:
            y = net(x)
        except NotImplementedError as e:
            raise _unsupported(e, str(source)) from None
    if not isinstance(y, fb.Tensor) or y.ndim != 2:
        raise ValueError(f"{source}: expected one (N, classes) output for a {c}x{h}x{w} "
                         f"input, got {getattr(y, 'shape', type(y).__name__)}")
    names = _classes(classes, num_classes, int(y.shape[1]))
    config = {
        "format": RUN_FORMAT, "version": RUN_VERSION, "filterbank_version": fb.__version__,
        "task": "classify", "task_args": {},
        "model": name, "model_kwargs": kwargs, "model_args": model_args or {},
        "dataset": dataset or NO_DATASET, "requested_dataset": dataset or NO_DATASET,
        "classes": names,
        "preprocessing": {"channels": c, "size": [h, w],
                          "mean": _check_norm(mean, c, "--mean"),
                          "std": _check_norm(std, c, "--std")},
        # nothing was trained here: train's defaults, so --init-from and the schema work
        "training": {"epochs": 1, "batch_size": 128, "optimizer": "sgd", "lr": 0.01,
                     "momentum": 0.9, "weight_decay": None, "schedule": "none", "augment": [],
                     "seed": 0, "val_split": 0.0, "limit": None, "image_size": None},
        "imported": {"source": str(source), "format": kind[1:],
                     "sha256": _sha256(source)},
        "results": {"epochs_completed": 0},
    }
    out.mkdir(parents=True, exist_ok=True)
    if kind == ".onnx":
        shutil.copyfile(source, out / _ONNX_COPY)
        config["onnx_file"] = _ONNX_COPY
    save_checkpoint(out / "model", net, extra={"config": config}, rng=False)
    write_json(out / "config.json", config)
    echo(f"imported {source} ({'ONNX graph' if kind == '.onnx' else name}, {c}x{h}x{w} "
         f"inputs, {len(names)} classes); run folder: {out}")
    return out


def export_run(run: str | os.PathLike, format: str = "onnx", out: str | os.PathLike | None = None,
               opset: int = 17, echo: Log = print) -> Path:
    """Write the model of a run as ``format`` (``'onnx'``); returns the file written
    (default ``RUN/model.onnx``). The example input is one zero image of the run's
    ``preprocessing`` channels and size; the batch dimension stays dynamic."""
    if format not in FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    net, config, ckpt = load_run_model(run)
    pre = config["preprocessing"]
    folder = run_folder(ckpt)
    path = Path(out) if out is not None else folder / "model.onnx"
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"--out: expected a .onnx file name, got {str(path)!r}")
    import filterbank.onnx

    x = fb.zeros(1, pre["channels"], *pre["size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        filterbank.onnx.export(net, x, path, opset=opset)
    except NotImplementedError as e:
        raise _unsupported(e, f"export {run}") from None
    echo(f"wrote {path} (ONNX opset {opset}, input (N, {pre['channels']}, "
         f"{pre['size'][0]}, {pre['size'][1]}))")
    return path
