"""The ``filterbank`` subcommands that show what a network learned (argument parsing only; the
work is in :mod:`filterbank.train.explain`)::

    filterbank explain RUN shoe.png --method gradcam --target Sneaker
    filterbank explain RUN --method filters --layer conv2
    filterbank dream RUN shoe.png --layer conv2 --octaves 3
    filterbank embed RUN --dataset fashion-mnist --split test --out features.npy
    filterbank probe RUN --dataset fashion-mnist
    filterbank filter photo.jpg --kernel sobel_x --out edges.png
"""

from __future__ import annotations

import argparse

COMMANDS = ("explain", "dream", "embed", "probe", "filter")


def add_parsers(sub, common, data, positive_int, non_negative_int, positive_float,
                folder) -> None:
    """Register the subcommands on ``sub`` (the main parser's subparsers); ``common`` and
    ``data`` are the shared parent parsers, the rest cli.py's argument types."""
    from filterbank.functional.kernels import KERNELS
    from filterbank.train.explain import METHODS, SPLITS

    x = sub.add_parser("explain", parents=[common],
                       help="saliency, Grad-CAM, feature maps, filters of a run's model",
                       description="Pictures of what a run's model looks at and computes, "
                       "written as PNGs into RUN/explain (or --out): saliency and gradcam "
                       "(image, map, overlay for the target class), featuremaps (activations "
                       "at some layers), filters (kernels of Conv2d layers) and maximize "
                       "(the input that excites each channel of a layer most); filters and "
                       "maximize need no images.")
    x.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    x.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders")
    x.add_argument("--method", default="saliency", choices=METHODS, help="default saliency")
    x.add_argument("--layer", action="append", metavar="NAME",
                   help="layer name as in named_modules() (repeatable); default: gradcam the "
                        "last 4-D feature map, featuremaps and filters every Conv2d, maximize "
                        "the last Conv2d")
    x.add_argument("--target", metavar="CLASS",
                   help="class to explain: an index or a class name (default: the predicted "
                        "one)")
    x.add_argument("--channels", type=positive_int, default=16, metavar="N",
                   help="maximize: the first N channels (default 16)")
    x.add_argument("--out", metavar="DIR", type=folder, help="default RUN/explain")

    d = sub.add_parser("dream", parents=[common], help="DeepDream at a layer of a run's model",
                       description="Amplify what a layer sees in an image (or, without one, "
                       "in seeded grey noise), octave by octave; writes "
                       "dream-<image>-<layer>.png into RUN/explain (or --out).")
    d.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    d.add_argument("image", nargs="?", metavar="IMAGE", help="start image (default: noise)")
    d.add_argument("--layer", metavar="NAME", help="default: the last Conv2d")
    d.add_argument("--seed", type=non_negative_int, default=0, help="default 0")
    d.add_argument("--octaves", type=positive_int, default=3, help="default 3")
    d.add_argument("--steps", type=positive_int, default=20, help="steps per octave; default 20")
    d.add_argument("--step-size", type=positive_float, default=0.01,
                   help="mean change per step as a fraction of the pixel range; default 0.01")
    d.add_argument("--out", metavar="DIR", type=folder, help="default RUN/explain")

    e = sub.add_parser("embed", parents=[common, data],
                       help="features of a data set from a run's model, to a .npy file",
                       description="One feature vector per image (the input of the last "
                       "Linear layer, or --layer's output flattened), saved with numpy.save "
                       "(no pickle); the labels go beside it as <out>-labels.npy.")
    e.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    e.add_argument("--dataset", required=True, help="data set name or image folder")
    e.add_argument("--layer", metavar="NAME", help="default: the input of the last Linear")
    e.add_argument("--split", default="test", choices=SPLITS, help="default test")
    e.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    e.add_argument("--out", required=True, metavar="FILE.npy", help="where to save")

    p = sub.add_parser("probe", parents=[common, data],
                       help="linear probe on frozen features: trained vs untrained network",
                       description="Fit a logistic regression on the frozen features of the "
                       "training split and score it on the test split, for the run's network "
                       "and for an untrained one of the same architecture (same seed); "
                       "writes probe-<dataset>.json and retrieval-<dataset>.png into the run "
                       "folder (or --out).")
    p.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    p.add_argument("--dataset", required=True, help="data set name or image folder")
    p.add_argument("--layer", metavar="NAME", help="default: the input of the last Linear")
    p.add_argument("--out", metavar="DIR", type=folder, help="default: the run folder")

    f = sub.add_parser("filter", parents=[common], help="apply a classic kernel to an image",
                       description="Filter an image with a kernel (depthwise conv2d, same "
                       "size) or take its Sobel gradient magnitude; writes image, kernel and "
                       "result side by side.")
    f.add_argument("image", metavar="IMAGE", help="an image file")
    how = f.add_mutually_exclusive_group(required=True)
    how.add_argument("--kernel", choices=list(KERNELS), help="the kernel")
    how.add_argument("--magnitude", action="store_true",
                     help="the gradient magnitude sqrt(sobel_x^2 + sobel_y^2) instead")
    f.add_argument("--kernel-size", type=positive_int, metavar="K",
                   help="gaussian / box_blur size (odd)")
    f.add_argument("--sigma", type=positive_float, help="gaussian standard deviation")
    f.add_argument("--padding-mode", default="reflect",
                   choices=("reflect", "replicate", "circular", "zeros"), help="default reflect")
    f.add_argument("--out", metavar="FILE.png", help="default <image>-<kernel>.png here")


def dispatch(args: argparse.Namespace) -> None:
    from filterbank.train import explain as ex

    if args.command == "explain":
        ex.explain(args.run, args.images, method=args.method, layers=args.layer,
                   target=args.target, out=args.out, channels=args.channels)
    elif args.command == "dream":
        ex.dream(args.run, args.image, layer=args.layer, seed=args.seed, octaves=args.octaves,
                 steps=args.steps, step_size=args.step_size, out=args.out)
    elif args.command == "embed":
        ex.embed_run(args.run, args.dataset, args.out, layer=args.layer, split=args.split,
                     limit=args.limit, normalize=args.normalize, data_root=args.data_root,
                     download=args.download)
    elif args.command == "probe":
        ex.probe(args.run, args.dataset, layer=args.layer, limit=args.limit, out=args.out,
                 data_root=args.data_root, download=args.download)
    elif args.command == "filter":
        ex.filter_image(args.image, kernel=args.kernel, magnitude=args.magnitude, out=args.out,
                        size=args.kernel_size, sigma=args.sigma,
                        padding_mode=args.padding_mode)
