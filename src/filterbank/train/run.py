"""``filterbank train``: train a zoo model on a data set (a registered name or an image
folder) into a run folder; fine-tune from another run, freeze layers, resume.

The rest of the command line's work lives beside it and is re-exported here:
:mod:`~filterbank.train.recipe` (models, data, preprocessing, optimizers, schedules),
:mod:`~filterbank.train.runs` (run folders: :func:`find_run`, :func:`load_run`),
:mod:`~filterbank.train.inference` (:func:`evaluate`, :func:`predict`),
:mod:`~filterbank.train.info` (:func:`summary`, :func:`datasets`),
:mod:`~filterbank.train.finetune` (``--init-from``, ``--freeze``).
See :mod:`filterbank.train.runs` for what a run folder holds.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import filterbank as fb
from filterbank import backend as _backend
from filterbank import nn
from filterbank.distributed import world_size
from filterbank.models import available_models
from filterbank.train.callbacks import CSVLogger, ModelCheckpoint
from filterbank.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from filterbank.train.finetune import classifier_head, freeze, init_from, parse_patterns
from filterbank.train.inference import (
    abbreviate,
    confusion_table,
    evaluate,
    image_files,
    load_images,
    predict,
    predict_logits,
    report_test_set,
    save_plots,
)
from filterbank.train.info import datasets, summary
from filterbank.train.recipe import (
    AUGMENTATIONS,
    DEFAULT_INPUT,
    DEFAULT_LR,
    FOLDER_TEST_SPLIT,
    IMAGE_SUFFIXES,
    ONECYCLE_WARMUP,
    OPTIMIZERS,
    SCHEDULES,
    ExtendedSchedule,
    Log,
    _stderr,
    build_model,
    build_optimizer,
    build_schedule,
    channel_stats,
    dataset_names,
    image_geometry,
    is_folder_dataset,
    load_data,
    load_dataset,
    load_image_folder,
    make_transform,
    model_kwargs,
    model_name,
    parse_augment,
    parse_model_args,
)
from filterbank.train.runs import (
    ONNX_MODEL,
    RUN_FORMAT,
    RUN_VERSION,
    check_run_config,
    default_out,
    find_run,
    has_checkpoint,
    load_run,
    load_run_model,
    no_checkpoint_message,
    prepare_run_folder,
    trained_seconds,
    write_json,
)
from filterbank.train.tasks import get_task
from filterbank.train.trainer import DIVERGENCE_FACTOR, DivergenceError, Trainer

__all__ = [
    "AUGMENTATIONS", "CheckpointError", "DEFAULT_INPUT", "DEFAULT_LR", "DIVERGENCE_FACTOR",
    "DivergenceError", "FOLDER_TEST_SPLIT",
    "IMAGE_SUFFIXES", "ONECYCLE_WARMUP", "OPTIMIZERS", "RUN_FORMAT", "RUN_VERSION", "SCHEDULES",
    "ExtendedSchedule", "abbreviate", "build_model", "build_optimizer",
    "build_schedule", "channel_stats", "classifier_head", "confusion_table", "dataset_names",
    "datasets", "default_out", "evaluate", "find_run", "freeze", "image_files",
    "image_geometry", "init_from", "is_folder_dataset", "load_data", "load_dataset",
    "load_image_folder", "load_images", "load_run", "load_run_model", "make_transform",
    "model_kwargs", "model_name", "parse_augment", "parse_model_args", "parse_patterns",
    "predict", "predict_logits", "report_test_set", "save_plots", "summary", "train",
    "write_json",
]


def _resume_settings(resume, model, epochs) -> tuple[Path, dict, dict]:
    """Checkpoint, old config and the options a resumed run keeps."""
    given = resume
    resume = Path(resume).expanduser()
    if resume.is_dir():  # the training state, not the final weights
        if (resume / "config.json").is_file() and not has_checkpoint(resume):
            raise FileNotFoundError(no_checkpoint_message(resume))
        resume = resume / "checkpoints" / "last.json"
    ckpt, old = find_run(resume)
    opts = dict(old["training"])
    model = old["model"] if model is None else model
    same = model_name(model) == old["model"]
    # a different architecture: loading will name the mismatching keys
    opts.update(model=model, dataset=old["requested_dataset"],
                model_args=old.get("model_args") if same else None,
                task=old.get("task", "classify"), task_args=old.get("task_args") or {})
    planned = old["training"]["epochs"]
    opts["planned"] = planned
    opts["epochs"] = planned if epochs is None else epochs
    opts["given"] = given, epochs
    return ckpt, old, opts


def _check_resume_epochs(given, asked: int | None, epochs: int, done: int, old: dict) -> None:
    """Refuse a resume that would shorten a run or retrain a finished one (before anything of
    the run is rewritten)."""
    if asked is not None and asked < done:
        raise ValueError(f"--epochs {asked}: the run {given} has already trained {done} "
                         f"epochs; --resume continues a run, it cannot shorten it (give "
                         f"--epochs {done + 1} or more to train it longer, or train a new run "
                         f"with --out)")
    if isinstance(old.get("results"), dict) and epochs <= done:
        raise ValueError(f"the run {given} has completed its {done} epochs; there is nothing "
                         f"to resume (give --epochs {done + 1} or more to train it longer)")


def _check_fits(net: nn.Module, name: str, kwargs: dict, data, want: tuple,
                task: str) -> None:
    """Refuse a model that does not fit the data set (classes, channels, image size) before
    anything is written: the arguments first, then one image through the model, whose output
    must have the shape ``want`` (the task's)."""
    channels, size, dataset = data.channels, data.size, data.resolved
    for key, need, what in (("num_classes", len(data.classes), "classes"),
                            ("in_channels", channels, "channels")):
        if key in kwargs and kwargs[key] != need:
            raise ValueError(f"model argument {key}={kwargs[key]!r} does not fit the data set "
                             f"{dataset}: it has {need} {what}")
    if "input_size" in kwargs and kwargs["input_size"] != size[0]:
        raise ValueError(f"model argument input_size={kwargs['input_size']!r} does not fit the "
                         f"data set {dataset}: its images are {size[0]}x{size[1]} (use "
                         f"--image-size to resize them)")
    x, _ = next(iter(data.probe))
    was_training = net.training
    net.eval()
    try:
        with fb.no_grad():
            shape = tuple(net(x).shape)
    except (ValueError, TypeError, IndexError, RuntimeError) as e:
        raise ValueError(f"model {name!r} with arguments {kwargs} does not fit the "
                         f"{channels}x{size[0]}x{size[1]} images of {dataset}: "
                         f"{' '.join(str(e).split())}") from None
    finally:
        net.train(was_training)
    if shape != tuple(want):
        raise ValueError(f"model {name!r} with arguments {kwargs} gives outputs of shape "
                         f"{shape} for one {channels}x{size[0]}x{size[1]} image of {dataset}; "
                         f"the task {task} needs {tuple(want)}")


def train(model: str | None, dataset: str | None = None, epochs: int | None = None,
          batch_size: int | None = None,
          optimizer: str = "adam", lr: float | None = None, momentum: float = 0.9,
          weight_decay: float | None = None, schedule: str = "onecycle",
          augment: str | Sequence[str] | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          val_split: float = 0.1, data_root: str | os.PathLike | None = None,
          download: bool = False, prefetch: int = 2, limit: int | None = None,
          image_size: int | None = None, model_args: dict | None = None,
          progress: bool = True, init_from_run: str | os.PathLike | None = None,
          freeze_patterns: str | Sequence[str] | None = None,
          divergence_factor: float | None = DIVERGENCE_FACTOR,
          task: str | None = None, task_args: dict | None = None,
          distributed: bool = False, dashboard: int | None = None, device: str = "cpu",
          log: Log = _stderr, echo: Log = print) -> dict:
    """Train ``model`` on ``dataset`` and write a run folder (see :mod:`filterbank.train.runs`).

    Per step: the task's loss, backward, ``optimizer`` update; the learning rate follows
    ``schedule``. After training, the task's test report: for ``classify`` the accuracy,
    per-class report and confusion matrix; for the other tasks see
    :mod:`filterbank.train.tasks` (mAP, mIoU, IoU / pixel errors, per-class AP).

    Resuming with more epochs than planned works under every schedule: the schedule is rebuilt
    over the new total and fast-forwarded to the step the run had reached
    (:class:`~filterbank.train.recipe.ExtendedSchedule`; one-cycle keeps its warm-up and
    stretches its annealing).

    Args:
        model: zoo name (:func:`filterbank.models.available_models`); None with ``resume``
            or ``init_from_run`` (then that run's model).
        dataset: registry name (default the task's: ``fashion-mnist``, which falls back to
            the embedded sample, for classify; ``shapes`` for the others), or an image
            folder: ``<class>/<image>`` (a seeded 20% becomes the test split) or
            ``train/``, ``val/``, ``test/`` sub-folders of classes.
        epochs: total epochs (default 5; with ``resume``, the run's own, or more).
        batch_size, optimizer, lr, momentum, weight_decay: the optimisation (``lr`` None:
            :data:`DEFAULT_LR`; ``weight_decay`` None: the optimizer's default).
        schedule: 'none', 'step' (x0.1 every third of the epochs), 'cosine' or 'onecycle'
            (per batch, over the whole run), 'plateau' (x0.1 after 2 flat epochs).
        augment: subset of 'flip', 'crop', 'affine', 'erase' (list or comma-separated).
        seed: seeds initialisation and dropout, shuffling, the split and augmentation.
        out: the run folder (default ``runs/<model>-<dataset>-<time>``).
        resume: a run folder or checkpoint to continue with its own settings, in its folder.
        val_split: fraction of the training images held out for validation (unless the
            image folder has a ``val/``).
        data_root, download: where to look for the data first; fetch missing files.
        prefetch: batches prepared ahead by a background thread.
        limit: use at most this many images of each split.
        image_size: resize images to this square size.
        model_args: extra constructor arguments for the model.
        progress: show progress bars.
        init_from_run: a run whose final weights start this one (fresh optimizer and
            schedule; its input normalisation is kept; a classifier head for another number
            of classes is re-initialised).
        freeze_patterns: parameter names not to train: globs or prefixes, comma-separated
            (``features.*``); they get ``requires_grad=False`` and stay out of the optimizer.
        divergence_factor: stop (:class:`~filterbank.train.trainer.DivergenceError`, the last
            good checkpoint kept) when a loss exceeds this many times its level (see
            :class:`~filterbank.train.Trainer`); None: no check. Not part of the run's
            recorded options (a resumed run uses the value given now).
        task: ``classify`` (default), ``detect``, ``segment``, ``regress`` or
            ``multilabel`` (:mod:`filterbank.train.tasks`); the tasks other than classify
            train on ``dataset='shapes'``, and options left at None (``epochs``,
            ``batch_size``, ``lr``, ``augment``, ``limit``, ``model``) take the task's
            defaults (``Task.defaults``, ``Task.default_model``).
        task_args: the task's own options (``{"target": "vertices"}`` for regress,
            ``{"void": 2}`` for segment ...: ``Task.options``).
        distributed: data-parallel over the ranks of ``mpirun -np N``
            (:mod:`filterbank.distributed`): each rank trains on its shard of every epoch
            with ``batch_size`` images a step, gradients averaged; rank 0 alone prints and
            writes the run folder.
        dashboard: serve the live training page on this port (0: a free one) on
            127.0.0.1 (:class:`~filterbank.train.dashboard.Dashboard`); its address, with
            the control token, is printed.
        device: where the model trains: ``"cpu"`` (NumPy) or ``"cuda"`` / ``"cuda:N"``
            (CuPy; a clear error without CuPy or a GPU). Data loading, the test report and
            the saved weights stay on the CPU.
        log, echo: where notes (stderr) and results (stdout) go.

    Returns:
        dict with ``out`` (the run folder), ``test_accuracy`` (classify) or ``metrics``
        (the task's test results), ``history``, ``config``, ``seconds``.

    Raises:
        DivergenceError: the loss diverged or became NaN/Inf (the message names the step and
            the last good checkpoint, which the run folder keeps).
        ValueError: inconsistent options, model arguments that do not fit the data set
            (classes, channels, image size: checked before the run folder is made), a
            ``resume`` with fewer epochs than the run has done.

    A folder whose run stopped before its first epoch ended (``config.json`` but no
    checkpoint) cannot be resumed; ``out`` reuses it for a fresh start (and says so).

    Example:
        >>> r = train("simple_cnn", "fashion-mnist", epochs=3, lr=2e-3)  # doctest: +SKIP
        >>> r["test_accuracy"], r["out"]  # doctest: +SKIP
        (0.913, PosixPath('runs/simple_cnn-fashion-mnist-20250101-120000'))
    """
    if not 0 <= val_split < 1:
        raise ValueError(f"--val-split must be in [0, 1), got {val_split}")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"--batch-size must be a positive int, got {batch_size!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive int, got {limit}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be an int >= 0, got {seed!r}")
    for flag, value in (("--lr", lr), ("--momentum", momentum),
                        ("--weight-decay", weight_decay)):
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            raise ValueError(f"{flag} must be a finite number, got {value!r}")
    if lr is not None and lr <= 0:
        raise ValueError(f"--lr must be > 0, got {lr!r}")
    if distributed and fb.device(device).type == "cuda":
        raise ValueError("--device cuda with --distributed: the MPI data-parallel training "
                         "runs on the CPU only; give one of them")
    dev = _backend.usable_device(device)  # the clear error before any work: no CuPy, no GPU
    from filterbank.distributed.train import start_run

    main = start_run(distributed)
    if not main:  # rank 0 prints and writes; the others train
        log = echo = _quiet
    ckpt = old = None
    planned = None
    if resume is not None:
        if init_from_run is not None:
            raise ValueError("--init-from starts a new run; --resume continues one (its "
                             "weights come from its own checkpoint): give one of them")
        ckpt, old, opts = _resume_settings(resume, model, epochs)
        if task is not None and get_task(task).name != opts["task"]:
            raise ValueError(f"--task {task}: the run {resume} was trained for the task "
                             f"{opts['task']}; --resume continues it as such")
        model, dataset, model_args = opts["model"], opts["dataset"], opts["model_args"]
        task, task_args = opts["task"], opts["task_args"]
        batch_size, optimizer, lr = opts["batch_size"], opts["optimizer"], opts["lr"]
        momentum, weight_decay, schedule = opts["momentum"], opts["weight_decay"], \
            opts["schedule"]
        augment, seed, val_split = opts["augment"], opts["seed"], opts["val_split"]
        limit, image_size = opts["limit"], opts["image_size"]
        freeze_patterns = opts.get("freeze")
        epochs, planned = opts["epochs"], opts["planned"]
        out = Path(out) if out is not None else Path(ckpt).parent
        if out.name == "checkpoints":
            out = out.parent
    job = get_task(task)
    options = job.parse_options(task_args)
    init = None
    if init_from_run is not None:
        init_ckpt, init_cfg = find_run(init_from_run)
        if init_cfg["model"] == ONNX_MODEL:
            raise ValueError(f"--init-from {init_from_run}: the run holds an imported ONNX graph "
                             f"({init_cfg.get('onnx_file')}), not a zoo model, so 'filterbank "
                             f"train' cannot rebuild it; use it as it is (evaluate, predict, "
                             f"explain), or fine-tune a zoo model from PyTorch weights "
                             f"('filterbank import WEIGHTS.safetensors --model NAME' makes a "
                             f"run --init-from takes)")
        init = {"run": str(init_from_run), "checkpoint": init_ckpt, "config": init_cfg}
        if model is None:
            model = init_cfg["model"]
            model_args = {**init_cfg.get("model_args", {}), **(model_args or {})}
    if resume is None:  # the task's recipe where the options were not given
        d = job.defaults
        epochs = d.get("epochs") if epochs is None else epochs
        batch_size = d.get("batch_size", 128) if batch_size is None else batch_size
        lr = d.get("lr") if lr is None and optimizer.lower() == "adam" else lr
        augment = d.get("augment") if augment is None else augment
        limit = d.get("limit") if limit is None else limit
        model = job.default_model if model is None else model
        if model == job.default_model and d.get("model_args"):  # the task's recipe
            model_args = {**d["model_args"], **(model_args or {})}
    dataset = job.default_dataset if dataset is None else dataset
    epochs = 5 if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--epochs must be a positive int, got {epochs!r}")
    if model is None:
        raise ValueError("--model is required (choose from: "
                         f"{', '.join(available_models())})")
    name = model_name(model)
    job.check_model(name)
    optimizer = optimizer.lower()
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r} (choose from: "
                         f"{', '.join(OPTIMIZERS)})")
    if schedule.lower() not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (choose from: {', '.join(SCHEDULES)})")
    aug = parse_augment(augment)
    job.check_augment(aug)
    freeze_list = parse_patterns(freeze_patterns)
    if image_size is None and init is not None:
        init_size = init["config"]["preprocessing"]["size"]
        if init_size[0] == init_size[1]:
            image_size = int(init_size[0])  # the weights were learned at that size
    data = job.load(dataset, data_root=data_root, download=download, image_size=image_size,
                    limit=limit, seed=seed, val_split=val_split, batch_size=batch_size,
                    prefetch=prefetch, augment=aug, options=options, old=old, init=init,
                    log=log)
    dataset, resolved, classes = data.requested, data.resolved, data.classes
    channels, size = data.channels, data.size
    kwargs = job.model_kwargs(name, data, model_args, options)

    if out is not None and not str(out).strip():
        raise ValueError("--out must name a folder, got an empty string")
    out = default_out(name, resolved) if out is None else Path(out).expanduser()
    reuse = False
    if ckpt is None and (out / "config.json").exists():
        if has_checkpoint(out):
            raise ValueError(f"run folder {out} already holds a run; continue it with --resume "
                             f"{out}, or choose another --out")
        check_run_config(out)
        reuse = True  # a dead end: a run that stopped before its first checkpoint

    fb.manual_seed(seed)
    net = build_model(name, kwargs)
    job.prepare(data, net, options)
    _check_fits(net, name, kwargs, data, job.output_shape(data, net, options), job.name)
    if ckpt is not None:
        # an incompatible checkpoint fails here, before any output
        done = int(load_checkpoint(ckpt, net).get("epoch") or 0)
        _check_resume_epochs(*opts["given"], epochs, done, old)
    if init is not None:
        init_from(net, init["checkpoint"], len(init["config"]["classes"]), len(classes), log)
        log(f"filterbank: weights from {init['run']} ({init['config']['model']}, trained on "
            f"{init['config']['dataset']}); fresh optimizer and schedule")
    net.summary((channels, *size), includes_batch=False, print_fn=echo)
    if freeze_list:
        freeze(net, freeze_list, log)
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = build_optimizer(optimizer, trainable, lr, momentum, weight_decay)
    lr = opt.param_groups[0]["lr"]
    model, train_loader, val_loader = net, data.train_loader, data.val_loader
    shared = []  # callbacks every rank runs
    if distributed:  # rank 0's weights everywhere, a shard each, gradients averaged
        from filterbank.distributed.train import wrap_for_training

        model, train_loader, sync = wrap_for_training(net, train_loader, seed)
        shared.append(sync)
    steps = len(train_loader)
    warmup = (old or {}).get("training", {}).get("warmup_steps")
    if warmup is None:
        warmup = ONECYCLE_WARMUP * (planned or epochs) * steps
    sched_cb = build_schedule(schedule, opt, epochs, steps, warmup_steps=warmup)
    monitor, mode = job.monitor(val_loader is not None)
    callbacks = shared + ([ModelCheckpoint(out / "checkpoints", monitor=monitor, mode=mode),
                           CSVLogger(out / "metrics.csv")] if main else [])
    if sched_cb is not None:
        callbacks.insert(0, sched_cb)
    extended = planned is not None and epochs > planned
    if extended and sched_cb is not None and schedule.lower() != "plateau":
        callbacks.append(ExtendedSchedule(sched_cb, log))
    if extended:
        log(f"filterbank: extending the run from {planned} to {epochs} epochs"
            + (f"; the {schedule} schedule is rebuilt over {epochs} epochs and fast-forwarded "
               f"to the step reached" if schedule.lower() not in ("none", "plateau") else ""))
    if dashboard is not None and main:
        from filterbank.train.dashboard import Dashboard

        callbacks.append(Dashboard(
            port=dashboard, epochs=epochs, classes=classes,
            samples=val_loader if job.name == "classify" and val_loader is not None else None,
            save_dir=out / "dashboard-checkpoints"))
    trainer = Trainer(model, opt, job.loss(data, net, options),
                      metrics=job.metrics(data, net, options), callbacks=callbacks, seed=seed,
                      progress=progress and main, divergence_factor=divergence_factor,
                      device=None if dev.type == "cpu" else dev)

    config = {
        "format": RUN_FORMAT, "version": RUN_VERSION, "filterbank_version": fb.__version__,
        "task": job.name, "task_args": options,
        "model": name, "model_kwargs": kwargs, "model_args": model_args or {},
        "dataset": resolved, "requested_dataset": str(dataset), "classes": classes,
        "preprocessing": data.pre,
        "training": {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                     "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                     "schedule": schedule.lower(), "augment": aug, "seed": seed,
                     "val_split": val_split, "limit": limit, "image_size": image_size,
                     "warmup_steps": warmup if schedule.lower() == "onecycle" else None,
                     "freeze": freeze_list or None,
                     "init_from": (old or {}).get("training", {}).get("init_from")
                     or (init and init["run"]),
                     "ranks": world_size() if distributed else 1, "device": str(dev)},
        "data": dict(data.counts),
    }
    if main:
        prepare_run_folder(out, config, reuse, ckpt is not None, log)
    n_train, n_val = data.counts["train_images"], data.counts["val_images"]
    log(f"training {name} on {resolved} ({data.source}){_for(job)}: "
        f"{n_train:,} training / {n_val:,} validation images, {epochs} epochs of "
        f"{steps} batches; run folder {out}")

    start = time.perf_counter()
    try:
        # without progress bars, one line per epoch (Keras' verbose=2); rank 0 alone prints
        history = trainer.fit(train_loader, val_loader, epochs=epochs, resume=ckpt,
                              verbose=0 if not main else None if progress else 2)
    except KeyboardInterrupt:
        if trainer.epoch:
            log(f"filterbank: interrupted; epoch {trainer.epoch} is saved, continue with: "
                f"filterbank train --resume {out}")
        raise
    except DivergenceError as e:
        last = out / "checkpoints" / "last.json"
        if trainer.epoch and last.is_file():
            kept = (f"The run folder keeps the last good checkpoint, {last} (epoch "
                    f"{trainer.epoch}); --resume {out} continues from it with the same options")
        else:
            kept = (f"No checkpoint was written (it stopped in its first epoch); rerun with "
                    f"other options and --out {out} to reuse the folder")
        raise type(e)(f"{e}. {kept}") from None
    seconds = time.perf_counter() - start
    net.cpu()  # the test report and the saved weights are on the CPU
    trainer.device = None
    if not main:
        return {"out": out, "history": history, "config": config, "seconds": seconds,
                "metrics": {}}

    extra = {"trainer": trainer} if job.name == "classify" else {}
    report = job.report(net, data, config, out, "confusion" if job.name == "classify"
                        else "test", log, **extra)
    n_test = data.counts["test_images"]
    config["results"] = {**report["results"], "test_images": int(n_test),
                         "epochs_completed": trainer.epoch,
                         # an extended run keeps counting the time it had already trained
                         "train_seconds": round(seconds + trained_seconds(old), 1)}
    save_checkpoint(out / "model", net, epoch=trainer.epoch, global_step=trainer.global_step,
                    history=history, extra={"config": config}, rng=False)
    write_json(out / "config.json", config)
    save_plots(history, net, out, log, _curve_metrics(history))
    for line in report["lines"]:
        echo(line)
    if job.name == "classify":
        acc = report["results"]["test_accuracy"]
        echo(f"test accuracy: {acc:.4f} ({report['correct']:,}/{n_test:,} "
             f"{resolved} test images) after {trainer.epoch} epoch(s), {seconds:.0f} s of "
             f"training")
    else:
        echo(f"after {trainer.epoch} epoch(s), {seconds:.0f} s of training")
    echo(f"run folder: {out}")
    result = {"out": out, "history": history, "config": config, "seconds": seconds,
              "metrics": report["results"]}
    if job.name == "classify":
        result["test_accuracy"] = report["results"]["test_accuracy"]
    return result


def _quiet(message: str) -> None:
    """Where the other ranks' notes and results go."""


def _for(job) -> str:
    return "" if job.name == "classify" else f" for the task {job.name}"


def _curve_metrics(history) -> list[str]:
    """The loss and the first metric the history holds (without its ``val_`` prefix)."""
    keys = [k for k in history.history if k not in ("epoch", "loss", "lr", "time",
                                                     "images_per_sec", "skipped")]
    names = [k[4:] if k.startswith("val_") else k for k in keys]
    return ["loss", *dict.fromkeys(n for n in names if n != "loss")][:2]
