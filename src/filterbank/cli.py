"""The ``filterbank`` command: argument parsing only; the work is in
:mod:`filterbank.train.run` and the modules beside it.

::

    filterbank train --model simple_cnn --dataset fashion-mnist --epochs 3
    filterbank train --dataset path/to/images --init-from runs/... --freeze 'features.*'
    filterbank train --resume runs/... --epochs 10
    filterbank evaluate runs/simple_cnn-fashion-mnist-20250101-120000
    filterbank predict runs/simple_cnn-fashion-mnist-20250101-120000 shoe.png shirt.jpg dir/
    filterbank summary --model resnet18 --input-size 3 224 224 --num-classes 1000
    filterbank datasets
    filterbank explain RUN shoe.png --method gradcam   (and dream, embed, probe, filter:
                                                        see filterbank.cli_explain)
    filterbank import model.onnx --out runs/imported   (and export: see filterbank.cli_interop)

Errors the user can fix (unknown names, missing files, incompatible checkpoints) print one line,
``filterbank: error: ...``, and exit with status 1 (2 for bad arguments); ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

PROG = "filterbank"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _divergence_factor(text: str) -> float | None:
    value = _finite_float(text)
    if value == 0:
        return None
    if value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number > 1, or 0 to turn the check "
                                         f"off, got {text!r}")
    return value


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return text


def _tasks() -> tuple[str, ...]:
    from filterbank.train.tasks import TASKS

    return TASKS


def build_parser() -> argparse.ArgumentParser:
    from filterbank.train import run  # names of optimizers etc.; cheap next to the core

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data-root", metavar="DIR",
                      help="folder searched first for data files (then $FILTERBANK_DATA, "
                           "~/.cache/filterbank, system folders)")
    data.add_argument("--download", action="store_true",
                      help="download missing data files (MNIST, Fashion-MNIST)")
    data.add_argument("--limit", type=_positive_int, metavar="N",
                      help="use at most N images of each split (quick runs)")

    p = _Parser(prog=PROG, description="Train, evaluate and inspect convolutional networks "
                "written from scratch in NumPy.")
    # its own action: the subcommands' --debug (shared via ``common``) must keep SUPPRESS
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    from filterbank import __version__

    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", parents=[common, data], help="train a model, write a run folder",
                       description="Train a zoo model on a data set. Writes a run folder with "
                       "the checkpoint, config.json, metrics.csv, curves.png, confusion.png "
                       "and filters.png; prints the test accuracy.")
    t.add_argument("--model", help="zoo model, e.g. simple_cnn, lenet5, resnet8, resnet20, "
                   "resnet18 (required unless --resume; 'filterbank summary --model NAME' shows "
                   "one)")
    t.add_argument("--dataset",
                   help="data set name (see 'filterbank datasets') or an image folder "
                        "(class sub-folders, or train/ val/ test/ each with class "
                        "sub-folders); default fashion-mnist, which falls back to the "
                        "embedded sample when the full set is absent (shapes for the tasks "
                        "other than classify)")
    t.add_argument("--epochs", type=_positive_int,
                   help="total epochs; default 5 (with --resume: the run's own; more extends "
                        "the run, its schedule rebuilt over the new total and fast-forwarded "
                        "to the step reached)")
    t.add_argument("--task", default=None, choices=_tasks(),
                   help="what to learn: classify (default; one class per image), detect "
                        "(boxes with YOLO v1), segment (a class per pixel with a U-Net), "
                        "regress (a box or a triangle's vertices), multilabel (which classes "
                        "are present, some labels unknown); the tasks other than classify "
                        "train on --dataset shapes and bring their own defaults for --model, "
                        "--epochs, --batch-size, --lr, --augment and --limit")
    t.add_argument("--task-arg", action="append", metavar="KEY=VALUE",
                   help="an option of the task (repeatable): detect conf_threshold, nms_iou, "
                        "score_threshold; segment void (boundary band in pixels, default 1); "
                        "regress target=box|vertices; multilabel unknown (fraction of training "
                        "labels hidden, default 0.3)")
    t.add_argument("--batch-size", type=_positive_int,
                   help="default 128 (detect 32, segment 16, regress and multilabel 32)")
    t.add_argument("--optimizer", default="adam", choices=run.OPTIMIZERS, help="default adam")
    t.add_argument("--lr", type=_positive_float,
                   help="learning rate (peak rate for onecycle); default "
                   + ", ".join(f"{k} {v:g}" for k, v in run.DEFAULT_LR.items()))
    t.add_argument("--momentum", type=_finite_float, default=0.9,
                   help="SGD (Nesterov) / RMSprop momentum; default 0.9")
    t.add_argument("--weight-decay", type=_finite_float,
                   help="L2 penalty (decoupled for adamw); default the optimizer's")
    t.add_argument("--schedule", default="onecycle", choices=run.SCHEDULES,
                   help="learning-rate schedule; cosine and onecycle step every batch; "
                        "default onecycle")
    t.add_argument("--augment", metavar="LIST",
                   help=f"comma-separated augmentations: {','.join(run.AUGMENTATIONS)}")
    t.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed for initialisation, shuffling, splits and augmentation; default 0")
    t.add_argument("--out", metavar="DIR", type=_folder,
                   help="run folder; default runs/<model>-<dataset>-<time>; a folder whose "
                        "run stopped before its first epoch ended (no checkpoint) is reused")
    t.add_argument("--resume", metavar="RUN",
                   help="continue a run (folder or checkpoint) with its own settings, in its "
                        "folder; with --epochs beyond its own, train it longer")
    t.add_argument("--init-from", metavar="RUN",
                   help="start from another run's final weights (fresh optimizer and "
                        "schedule); for another number of classes its classifier head is "
                        "re-initialised")
    t.add_argument("--freeze", metavar="PATTERN", action="append",
                   help="do not train parameters whose names match: a glob or prefix, e.g. "
                        "'features.*' or conv1 (comma-separated or repeatable)")
    t.add_argument("--val-split", type=_finite_float, default=0.1,
                   help="fraction of the training images held out for validation; default 0.1")
    t.add_argument("--prefetch", "--workers", type=int, default=2, metavar="N",
                   help="batches prepared ahead by a background thread; default 2")
    t.add_argument("--image-size", type=_positive_int, metavar="S",
                   help="resize images to SxS (e.g. 32 for lenet5/vgg on 28x28 data)")
    t.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="extra model argument, e.g. width=16 (repeatable)")
    t.add_argument("--divergence-factor", type=_divergence_factor, metavar="F",
                   default=run.DIVERGENCE_FACTOR,
                   help="stop, keeping the last good checkpoint, when a batch loss exceeds F "
                        "times its level (the lowest running mean of the batch losses so "
                        f"far, at least 1); default {run.DIVERGENCE_FACTOR:g}; 0 "
                        "turns the check off (NaN/Inf still stop)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    t.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where the model trains: cpu (NumPy, default) or cuda / cuda:N (a "
                        "GPU through CuPy: pip install 'filterbank[cuda12]' or "
                        "'filterbank[cuda13]'); data loading, the test report and the saved "
                        "weights stay on the CPU")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of 'mpirun -np N filterbank train ...': "
                        "each rank trains on its shard with --batch-size images a step, the "
                        "gradients are averaged, rank 0 prints and writes the run folder "
                        "(needs Open MPI and mpi4py: pip install 'filterbank[mpi]')")
    from filterbank import cli_dashboard  # train --dashboard, serve (issue 13)

    cli_dashboard.add_train_options(t)

    e = sub.add_parser("evaluate", parents=[common, data],
                       help="test accuracy, per-class report, confusion matrix",
                       description="Evaluate a run (folder or checkpoint) on a test set; "
                       "writes eval-<dataset>.json/.png into the run folder (or --out).")
    e.add_argument("run", metavar="RUN", help="run folder or checkpoint (.json)")
    e.add_argument("--dataset", help="test set (default: the one the run was trained on)")
    e.add_argument("--model", help="rebuild this model instead of the configured one")
    e.add_argument("--batch-size", type=_positive_int, default=512)
    e.add_argument("--out", metavar="DIR", type=_folder,
                   help="where to write the confusion matrix")

    r = sub.add_parser("predict", parents=[common],
                       usage="%(prog)s [-h] RUN IMAGE [IMAGE ...] [options]\n"
                             "       %(prog)s [-h] IMAGE [IMAGE ...] --checkpoint RUN [options]",
                       help="classify image files: top-k classes with probabilities",
                       description="Classify image files (or folders of them) with a trained "
                       "run: 'filterbank predict RUN IMAGE...'. Images are converted to the "
                       "model's channels and size and normalised as in training.")
    r.add_argument("images", nargs="+", metavar="RUN IMAGE",
                   help="the run (folder or checkpoint), then image files or folders")
    r.add_argument("--checkpoint", "--run", dest="run", metavar="RUN",
                   help="the run, given as an option (then every positional is an image)")
    r.add_argument("--top-k", type=_positive_int, default=3, help="default 3")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.add_argument("--model", help="rebuild this model instead of the configured one")
    r.add_argument("--out", metavar="DIR", type=_folder,
                   help="where a detection, segmentation, regression or multi-label run "
                        "writes its pictures (default RUN/predictions)")

    s = sub.add_parser("summary", parents=[common], help="layer table of a zoo model",
                       description="Print layers, output shapes, parameters, receptive "
                       "fields and FLOPs of a zoo model for one input.")
    s.add_argument("--model", required=True, help="zoo model name")
    s.add_argument("--input-size", type=_positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="input channels and size (default: the model's usual input)")
    s.add_argument("--num-classes", type=_positive_int, default=10, help="default 10")
    s.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="extra model argument (repeatable)")
    s.add_argument("--depth", type=_positive_int, metavar="N",
                   help="show nested modules down to depth N (default 3)")
    s.add_argument("--batch-size", type=_positive_int, metavar="B",
                   help="batch size shown in the shapes and counted in FLOPs and memory "
                        "(default: -1, any)")

    d = sub.add_parser("datasets", parents=[common],
                       help="data sets available locally, and where",
                       description="List the registered data sets and where their files "
                       "were found.")
    d.add_argument("--data-root", metavar="DIR", help="folder searched first (and downloaded "
                   "into)")
    d.add_argument("--download", metavar="NAME", action="append",
                   help="download this data set first if it is missing (mnist, fashion-mnist; "
                        "repeatable)")
    from filterbank import cli_explain  # explain, dream, embed, probe, filter (issue 18)

    cli_explain.add_parsers(sub, common, data, _positive_int, _non_negative_int,
                            _positive_float, _folder)
    from filterbank import cli_interop  # import, export (issue 11)

    cli_interop.add_parsers(sub, common, _positive_int, _finite_float, _folder)
    cli_dashboard.add_parsers(sub, common)
    return p


def _dispatch(args) -> None:
    from filterbank.train import run

    if args.command == "train":
        run.train(model=args.model, dataset=args.dataset, epochs=args.epochs,
                  batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                  momentum=args.momentum, weight_decay=args.weight_decay,
                  schedule=args.schedule, augment=args.augment, seed=args.seed, out=args.out,
                  resume=args.resume, val_split=args.val_split, data_root=args.data_root,
                  download=args.download, prefetch=args.prefetch, limit=args.limit,
                  image_size=args.image_size, model_args=run.parse_model_args(args.model_arg),
                  progress=not args.no_progress, init_from_run=args.init_from,
                  freeze_patterns=args.freeze, divergence_factor=args.divergence_factor,
                  task=args.task, task_args=run.parse_model_args(args.task_arg, "--task-arg"),
                  distributed=args.distributed, dashboard=args.dashboard,
                  device=args.device)
    elif args.command == "evaluate":
        run.evaluate(args.run, dataset=args.dataset, model=args.model,
                     data_root=args.data_root, download=args.download,
                     batch_size=args.batch_size, limit=args.limit, out=args.out)
    elif args.command == "predict":
        ckpt, images = _predict_args(args.run, args.images)
        run.predict(images, ckpt, top_k=args.top_k, as_json=args.json, model=args.model,
                    out=args.out)
    elif args.command == "summary":
        run.summary(args.model, args.input_size, args.num_classes,
                    run.parse_model_args(args.model_arg), depth=args.depth,
                    batch_size=args.batch_size)
    elif args.command == "datasets":
        run.datasets(args.data_root, download=args.download)
    elif args.command == "serve":
        from filterbank import cli_dashboard

        cli_dashboard.dispatch(args)
    elif args.command in ("import", "export"):
        from filterbank import cli_interop

        cli_interop.dispatch(args)
    else:
        from filterbank import cli_explain

        cli_explain.dispatch(args)


def _predict_args(run_opt: str | None, positional: list[str]) -> tuple[str, list[str]]:
    """(run, images): the run is ``--checkpoint``/``--run`` if given, else the first
    positional."""
    if run_opt is not None:
        return run_opt, positional
    from filterbank.train.run import IMAGE_SUFFIXES

    first, rest = positional[0], positional[1:]
    if first.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"predict: the run comes first: filterbank predict RUN {first} ... "
                         f"(or --checkpoint RUN); {first!r} is an image")
    if not rest:
        raise ValueError(f"predict: no images given after the run {first!r} (filterbank "
                         f"predict RUN IMAGE [IMAGE ...])")
    return first, rest


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe a problem with the input, not a bug: one line, no traceback."""
    from filterbank.data.datasets import DownloadError
    from filterbank.train.trainer import DivergenceError

    # CheckpointError, StateDictError and the data sets' errors are ValueErrors (PIL's
    # DecompressionBombError reaches here wrapped in one); FileNotFoundError is an OSError;
    # NonFiniteLossError is a DivergenceError; a MemoryError comes from sizes in the arguments
    # or in a run's files (an image size, a batch) that no check bounded
    errors: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError,
                                               DownloadError, DivergenceError, MemoryError)
    try:  # an image over PIL's pixel limit that no reader wrapped
        from PIL.Image import DecompressionBombError
    except ImportError:
        return errors
    return (*errors, DecompressionBombError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, MemoryError):
        return f"out of memory: {text}" if text else "out of memory"
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 bad arguments,
    130 interrupted)."""
    args = build_parser().parse_args(argv)
    from filterbank import _allocator

    _allocator.tune()  # glibc mallopt for the whole run; FILTERBANK_MALLOC_TUNING=0 opts out
    try:
        _dispatch(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
