"""Run folders: find the checkpoint and configuration of a run, rebuild its model.

A run folder (``filterbank train --out runs/x``) holds everything needed to use the model later
without the training code::

    config.json          model name and arguments, classes, preprocessing, training options,
                         results; ``evaluate``, ``predict`` and :func:`load_run` rebuild the
                         model from it
    model.json           final weights (a checkpoint: JSON sidecar + model-<hash>.safetensors;
                         the sidecar also embeds the config)
    checkpoints/last.*   full training state after the latest epoch (``--resume``), best.* for
                         the best validation accuracy
    metrics.csv          one row per epoch (loss, accuracy, val_*, lr, time, images/s)
    curves.png           learning curves, train vs validation, with the final gap
    confusion.png/.json  confusion matrix on the test set (+ per-class precision/recall/F1)
    filters.png          the first convolution's learned kernels as an image grid
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

from filterbank import nn
from filterbank.serialization import atomic_write_bytes
from filterbank.train import schema
from filterbank.train.checkpoint import CheckpointError, load_checkpoint, read_sidecar
from filterbank.train.checkpoint import resolve as _resolve
from filterbank.train.recipe import Log, build_model, model_kwargs, model_name

RUN_FORMAT = "filterbank-run"
RUN_VERSION = 1
#: ``config["model"]`` of a run imported from ONNX (``filterbank import``): the graph is in the
#: run folder, ``config["onnx_file"]``, and the weights in ``model.json`` as for any run.
ONNX_MODEL = "onnx"


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode("utf-8"))


def default_out(model: str, dataset: str) -> Path:
    """``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>``."""
    return Path("runs") / f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def find_run(path: str | os.PathLike) -> tuple[Path, dict]:
    """(checkpoint sidecar, run config) for a run folder or a checkpoint inside one.

    A folder means its final ``model.json`` (else ``checkpoints/last.json``). The config comes
    from the checkpoint's sidecar (``model.json`` embeds it; the tensor file is not read here)
    or from ``config.json`` in the
    checkpoint's folder or the one above (``checkpoints/..``). Both files are read safely and
    the config is checked against :data:`~filterbank.train.schema.RUN_CONFIG`, so every
    reader of a run (``evaluate``, ``predict``, ``--resume``, ``--init-from``, :func:`load_run`)
    gets a :class:`CheckpointError` naming the file and the field for a damaged one.
    """
    try:
        p = _resolve(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a run folder (no model.json or "
                                f"checkpoints/last.json in it)") from None
    # the sidecar only (the run's config is in it or beside it): the tensor file is read and
    # verified once, by whoever loads the weights
    sidecar, meta = read_sidecar(p)
    extra = meta.get("extra")
    config = extra.get("config") if isinstance(extra, dict) else None
    where, prefix = sidecar, "extra.config"
    if config is None:
        for cand in (sidecar.parent / "config.json", sidecar.parent.parent / "config.json"):
            if os.path.lexists(cand):  # a FIFO or a link to a device is refused, not skipped
                config = schema.read_json(cand, CheckpointError, "run config")
                where, prefix = cand, ""
                break
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path}: a checkpoint without a run configuration (no "
                              f"config.json beside it); evaluate and predict need a run "
                              f"written by 'filterbank train'")
    schema.validate_config(config, where, CheckpointError, prefix)
    return sidecar, config


def load_run_model(path, model: str | None = None) -> tuple[nn.Module, dict, Path]:
    """Rebuild the model of a run (``model`` overrides the configured name) and load its
    weights; an incompatible checkpoint raises CheckpointError before anything is used.
    Returns ``(model in eval mode, config, checkpoint sidecar)``."""
    ckpt, config = find_run(path)
    if config["model"] == ONNX_MODEL:
        net = _onnx_model(ckpt, config, model)
        load_checkpoint(ckpt, net)
        net.eval()
        return net, config, ckpt
    name = config["model"]
    kwargs = dict(config["model_kwargs"])
    if model is not None and model_name(model) != name:
        name = model_name(model)
        pre = config["preprocessing"]
        kwargs = model_kwargs(name, pre["channels"], pre["size"], len(config["classes"]))
    net = build_model(name, kwargs, f"{ckpt}: model_kwargs: ", CheckpointError)
    load_checkpoint(ckpt, net)
    net.eval()
    return net, config, ckpt


def run_folder(ckpt: Path) -> Path:
    """The run folder of a checkpoint file: its folder, or the one above ``checkpoints/``."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def _onnx_model(ckpt: Path, config: dict, model: str | None) -> nn.Module:
    """The graph of an imported ONNX run, from the file named by ``config["onnx_file"]`` in
    the run folder (a bare file name: a config cannot point outside its folder)."""
    if model is not None:
        raise ValueError(f"{ckpt}: the run holds an imported ONNX graph, not a zoo model; it "
                         f"cannot be rebuilt as {model!r}")
    name = config.get("onnx_file")
    if not isinstance(name, str) or not name.endswith(".onnx") or Path(name).name != name \
            or "\\" in name:
        raise CheckpointError(f"{ckpt}: onnx_file: expected the name of a .onnx file in the "
                              f"run folder, got {name!r}")
    folder = run_folder(ckpt)
    import filterbank.onnx

    return filterbank.onnx.load(folder / name)


def untrained_model(ckpt: Path, config: dict) -> nn.Module:
    """A fresh, untrained network of the run's architecture (in eval mode), initialised from
    filterbank's random number generator (seed it with :func:`filterbank.manual_seed`).

    For an imported ONNX run the graph is loaded again and every layer it runs through (its
    Conv2d, ConvTranspose2d, Linear and BatchNorm2d modules) is reset as filterbank's layers
    initialise (``reset_parameters()``); initializers that run functionally (shared by
    several nodes) keep their values."""
    if config["model"] == ONNX_MODEL:
        net = _onnx_model(ckpt, config, None)
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)):
                m.reset_parameters()
    else:
        net = build_model(config["model"], dict(config["model_kwargs"]),
                          f"{ckpt}: model_kwargs: ", CheckpointError)
    return net.eval()


def load_run(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """The trained model of a run folder and the run's configuration.

    The model is rebuilt from ``config.json`` (zoo name and constructor arguments), its final
    weights are loaded (``model.json``; a run interrupted before the end gives its latest
    epoch, ``checkpoints/last.json``) and it is put in ``eval()`` mode. The config holds what
    inputs it expects: ``config["preprocessing"]`` (channels, size, mean, std; an input is
    ``(pixel / 255 - mean[c]) / std[c]``) and ``config["classes"]`` (the names of the
    outputs, in order).

    Args:
        path: a run folder written by ``filterbank train`` (or a checkpoint inside one).

    Returns:
        ``(model, config)``.

    Raises:
        FileNotFoundError: no run at ``path``.
        CheckpointError: (a ValueError) damaged files, or a checkpoint without a run config.

    Example:
        >>> model, config = load_run("runs/simple_cnn-fashion-mnist-1")  # doctest: +SKIP
        >>> config["classes"][:2], config["preprocessing"]["size"]  # doctest: +SKIP
        (['T-shirt/top', 'Trouser'], [28, 28])
    """
    net, config, _ = load_run_model(path)
    return net, config


# ------------------------------------------------------------- a run folder reused
_CHECKPOINTS = ("model.json", "checkpoints/last.json", "checkpoints/best.json")
# atomic_write_bytes's temp files: ".<name>.<8 random characters>.tmp" (tempfile.mkstemp)
_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def has_checkpoint(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _CHECKPOINTS)


def remove_stale_temp(folder: Path, log: Log) -> None:
    """Delete the temp files a crash during an atomic save left in a run folder (there is
    one writer per run folder: the run being continued)."""
    removed = []
    for d in (folder, folder / "checkpoints"):
        if not d.is_dir():
            continue
        for f in d.iterdir():
            if _TEMP.fullmatch(f.name) and f.is_file() and not f.is_symlink():
                try:
                    f.unlink()
                    removed.append(f.name)
                except OSError:
                    pass
    if removed:
        log(f"filterbank: removed {len(removed)} temp file(s) left by an interrupted save: "
            f"{', '.join(sorted(removed))}")


def no_checkpoint_message(folder: Path) -> str:
    return (f"{folder} holds no checkpoint: its run stopped before its first epoch ended, so "
            f"there is nothing to resume; start it afresh in the same folder with --out "
            f"{folder} (its options are in {folder / 'config.json'})")


def check_run_config(folder: Path) -> None:
    """Only a run's own config.json marks a folder that may be reused: anything else in
    ``--out`` is the user's and is never overwritten."""
    from filterbank.train.schema import read_json

    try:
        config = read_json(folder / "config.json", what="run configuration")
    except (ValueError, OSError) as e:
        config = e
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        why = f" ({config})" if isinstance(config, Exception) else ""
        raise ValueError(f"--out {folder}: its config.json is not a filterbank run's{why}; "
                         f"choose another --out")


def trained_seconds(old: dict | None) -> float:
    """The training time a finished run recorded (0 for a new or an interrupted run)."""
    results = (old or {}).get("results")
    value = results.get("train_seconds") if isinstance(results, dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def prepare_run_folder(out: Path, config: dict, reuse: bool, resumed: bool, log: Log) -> None:
    """Create (or clean up, for a reused or resumed run) the run folder and write the run's
    config.json."""
    if reuse:
        log(f"filterbank: {out} holds a run that stopped before its first epoch ended (a "
            f"config.json, no checkpoint); starting afresh in it")
        (out / "metrics.csv").unlink(missing_ok=True)
    if reuse or resumed:
        remove_stale_temp(out, log)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
