"""``serve``: a trained run's model in the browser: draw or upload an image, see the class
probabilities and every layer's activations as you draw."""

from __future__ import annotations

import math
import os
import sys
from http import HTTPStatus

import numpy as np

from filterbank.train.dashboard import snapshot
from filterbank.train.dashboard._server import MAX_BODY, App, HTTPError

PAGES = {"/": "serve.html", "/index.html": "serve.html", "/dashboard.js": "dashboard.js",
         "/serve.js": "serve.js", "/dashboard.css": "dashboard.css"}


class ModelServer:
    """The running server of :func:`serve` (``url``; ``close()`` stops it, freeing the port)."""

    def __init__(self, model, config: dict, host: str, port: int):
        pre = config["preprocessing"]
        size = pre["size"]
        self.model = model
        self.classes = [str(c) for c in config["classes"]]
        self.channels = int(pre["channels"])
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(map(int, size))
        self.mean = np.asarray(pre["mean"], dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(pre["std"], dtype=np.float32).reshape(-1, 1, 1)
        n = self.channels * self.size[0] * self.size[1]
        # a pixel as "254.5, " is 7 bytes; room for the JSON around it
        self.app = App(PAGES, {"/predict": self.predict, "/info": self.info},
                       max_body=max(MAX_BODY, 8 * n + 1024))
        self.app.bind(host, port, "serve")
        self.app.start()

    @property
    def url(self) -> str:
        return self.app.url

    def close(self) -> None:
        self.app.close()

    def info(self, body) -> tuple[int, dict]:
        return HTTPStatus.OK, {"classes": self.classes, "channels": self.channels,
                               "size": list(self.size)}

    def pixels(self, body) -> np.ndarray:
        """The request's pixels as a (C, H, W) float array in 0..255, validated."""
        values = body.get("pixels") if isinstance(body, dict) else None
        c, (h, w) = self.channels, self.size
        if not isinstance(values, list) or len(values) != c * h * w:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"pixels must be a list of {c * h * w} "
                            f"numbers ({c}x{h}x{w}, channel-major, 0..255), got {got}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                   and 0 <= v <= 255 for v in values):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "pixels must be numbers from 0 to 255")
        return np.asarray(values, dtype=np.float32).reshape(c, h, w)

    def predict(self, body) -> tuple[int, dict]:
        x = (self.pixels(body) / np.float32(255) - self.mean) / self.std
        out, layers = snapshot.activations(self.model, x.astype(np.float32))
        probs = snapshot.softmax(out.reshape(-1))
        return HTTPStatus.OK, {"classes": self.classes, "probs": probs.tolist(),
                               "layers": layers}


def serve(run_path: str | os.PathLike, port: int = 8765, host: str = "127.0.0.1", *,
          block: bool = True) -> ModelServer:
    """Serve a trained run's model in the browser (``filterbank serve RUN``).

    The page has a drawing canvas at the model's input size (and an image upload, scaled and
    converted in the browser); every stroke POSTs the pixels to ``/predict``, which answers
    the class probabilities and each layer's activations. An input is preprocessed as in
    training: ``(pixel / 255 - mean[c]) / std[c]`` (the run's ``config["preprocessing"]``).
    The page's ``&image=<base64>`` query (URL-safe base64 of the C*H*W pixel bytes,
    channel-major) starts with that picture in the canvas, as if drawn.

    Args:
        run_path: a run folder written by ``filterbank train`` (see
            :func:`filterbank.train.load_run`).
        port: TCP port; 0 picks a free one.
        host: address to listen on (anything but localhost warns).
        block: serve until Ctrl-C (then stop and return); False returns the running
            :class:`ModelServer` at once (``.url``, ``.close()``).

    Returns:
        the :class:`ModelServer` (stopped, when ``block``).
    """
    from filterbank.train.runs import load_run

    model, config = load_run(run_path)
    server = ModelServer(model, config, host, port)
    print(f"serving {run_path}: {server.url}", file=sys.stderr, flush=True)
    if block:
        try:
            server.app.thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return server
