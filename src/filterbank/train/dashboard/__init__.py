"""Live dashboards in the browser: :class:`Dashboard` (a Trainer callback that shows training
as it happens, in the spirit of ConvNetJS's MNIST demo) and :func:`serve` (a trained run's
model: draw or upload an image, see the class probabilities and every layer's activations).

Both serve one page shipped inside the package (HTML, plain JavaScript, SVG and canvas; no
network access needed) from a small ``http.server`` bound to 127.0.0.1.
"""

from filterbank.train.dashboard.callback import Dashboard
from filterbank.train.dashboard.serve import serve

__all__ = ["Dashboard", "serve"]
