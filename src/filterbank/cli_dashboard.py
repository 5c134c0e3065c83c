"""The ``filterbank`` command line of the browser dashboards (argument parsing only; the work
is in :mod:`filterbank.train.dashboard`)::

    filterbank train --model simple_cnn --dashboard          # live page on port 8765
    filterbank train --model simple_cnn --dashboard 0        # on a free port
    filterbank serve runs/simple_cnn-fashion-mnist-1 --port 8000
"""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8765


def port(text: str) -> int:
    """A TCP port for argparse: 0 (a free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 (a free one) to 65535, got {value}")
    return value


def add_train_options(train_parser: argparse.ArgumentParser) -> None:
    """``--dashboard [PORT]`` on ``filterbank train``."""
    train_parser.add_argument(
        "--dashboard", nargs="?", type=port, const=DEFAULT_PORT, default=None, metavar="PORT",
        help=f"show the training live in the browser at http://127.0.0.1:PORT (default "
             f"{DEFAULT_PORT}; 0 picks a free port); the URL with its token is printed")


def add_parsers(sub, common) -> None:
    """Register ``serve`` on ``sub`` (the main parser's subparsers; ``common`` the shared
    parent parser)."""
    s = sub.add_parser("serve", parents=[common],
                       help="a trained run's model in the browser: draw, see its predictions",
                       description="Serve a page where you draw (or upload) an image and see "
                       "the run's class probabilities and every layer's activations, updated "
                       "as you draw. Listens on 127.0.0.1 until Ctrl-C.")
    s.add_argument("run", metavar="RUN", help="run folder or checkpoint")
    s.add_argument("--port", type=port, default=DEFAULT_PORT,
                   help=f"default {DEFAULT_PORT}; 0 picks a free one")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others can then see it)")


def dispatch(args: argparse.Namespace) -> None:
    """Run ``filterbank serve``."""
    from filterbank.train.dashboard import serve

    serve(args.run, port=args.port, host=args.host)
