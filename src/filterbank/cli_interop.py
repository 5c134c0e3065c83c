"""The ``filterbank`` subcommands that bring models in and out (argument parsing only; the
work is in :mod:`filterbank.train.interop`)::

    filterbank import model.onnx --out runs/imported --input-size 1 28 28 --mean 0.286 --std 0.353
    filterbank import resnet18.safetensors --model resnet18 --num-classes 1000 --out runs/r18
    filterbank export runs/demo --format onnx --out demo.onnx
"""

from __future__ import annotations

import argparse

COMMANDS = ("import", "export")


def add_parsers(sub, common, positive_int, finite_float, folder) -> None:
    """Register the subcommands on ``sub`` (the main parser's subparsers); ``common`` is the
    shared parent parser, the rest cli.py's argument types."""
    from filterbank.train.interop import FORMATS

    i = sub.add_parser("import", parents=[common],
                       help="make a run folder from an ONNX model or PyTorch weights",
                       description="Write a run folder (usable by evaluate, predict, explain, "
                       "dream, embed) for a model trained elsewhere: MODEL.onnx (the graph, "
                       "run by filterbank's ops) or WEIGHTS.safetensors (a PyTorch state_dict "
                       "for the zoo model --model, names as in torchvision).")
    i.add_argument("source", metavar="SOURCE", help="MODEL.onnx or WEIGHTS.safetensors")
    i.add_argument("--out", required=True, metavar="RUN", type=folder,
                   help="the run folder to create (new or empty)")
    i.add_argument("--model", help="zoo model of a .safetensors file")
    i.add_argument("--num-classes", type=positive_int, metavar="N",
                   help="outputs (default: from --classes, else from the file)")
    i.add_argument("--input-size", type=positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="input channels and size (default: the ONNX graph's, else the zoo "
                        "model's usual input)")
    i.add_argument("--classes", nargs="+", metavar="NAME",
                   help="class names, in output order (default 0 .. N-1)")
    i.add_argument("--mean", type=finite_float, nargs="+", metavar="M",
                   help="per-channel mean of the [0, 1] pixels the model was trained on "
                        "(one number for all channels; default 0)")
    i.add_argument("--std", type=finite_float, nargs="+", metavar="S",
                   help="per-channel standard deviation (default 1)")
    i.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="extra zoo model argument (repeatable)")
    i.add_argument("--dataset", help="data set 'evaluate' uses by default (default: none; "
                   "then evaluate needs --dataset)")

    e = sub.add_parser("export", parents=[common], help="write a run's model as ONNX",
                       description="Write the model of a run (folder or checkpoint) as an "
                       "ONNX file, traced on one image of the run's input size; the batch "
                       "dimension is dynamic.")
    e.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    e.add_argument("--format", default="onnx", choices=FORMATS, help="default onnx")
    e.add_argument("--out", metavar="FILE.onnx", help="default RUN/model.onnx")
    e.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")


def dispatch(args: argparse.Namespace) -> None:
    from filterbank.train import interop
    from filterbank.train.recipe import parse_model_args

    if args.command == "import":
        interop.import_model(args.source, args.out, model=args.model,
                             num_classes=args.num_classes, input_size=args.input_size,
                             classes=args.classes, mean=args.mean, std=args.std,
                             model_args=parse_model_args(args.model_arg),
                             dataset=args.dataset)
    elif args.command == "export":
        interop.export_run(args.run, format=args.format, out=args.out, opset=args.opset)
