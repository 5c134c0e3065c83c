"""LeNet-5 (LeCun et al., 1998): the classic 6-16-120-84-10 convolutional network."""

from __future__ import annotations

from filterbank import nn
from filterbank.tensor import Tensor


class LeNet5(nn.Module):
    """LeNet-5: two convolution + subsampling stages, then three fully connected layers.

    ::

        input (C_in, 32, 32)
        conv1  5x5, 6 maps      -> (6, 28, 28)    act, pool 2x2 -> (6, 14, 14)
        conv2  5x5, 16 maps     -> (16, 10, 10)   act, pool 2x2 -> (16, 5, 5)
        flatten                 -> 400
        fc1 400 -> 120, act;  fc2 120 -> 84, act;  fc3 84 -> num_classes (logits)

    61,706 parameters for one input channel and 10 classes. The paper's C5 is a 5x5
    convolution over a 5x5 map, which is exactly ``fc1`` on the flattened map (same 48,120
    weights). Layer names follow the PyTorch tutorial's LeNet (``conv1``, ``conv2``, ``fc1``,
    ``fc2``, ``fc3``).

    28x28 inputs (MNIST, Fashion-MNIST): pass ``padding=2``, which pads the first convolution
    so its output is 28x28 as for a 32x32 input; nothing else changes (not even the parameter
    count).

    Args:
        num_classes: outputs of the last layer. Default: 10.
        in_channels: input channels. Default: 1.
        padding: zero padding of ``conv1`` (2 for 28x28 inputs). Default: 0.
        activation: ``"relu"`` (default) or ``"tanh"`` (the paper's squashing function).
        pool: ``"max"`` (default) or ``"avg"`` (the paper's subsampling).

    Shape:
        Input ``(N, in_channels, 32 - 2*padding, 32 - 2*padding)``, output
        ``(N, num_classes)``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import lenet5
        >>> model = lenet5(padding=2)
        >>> model(fb.zeros(2, 1, 28, 28)).shape, model.num_parameters()
        ((2, 10), 61706)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, padding: int = 0,
                 activation: str = "relu", pool: str = "max"):
        super().__init__()
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
        pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
        if activation not in acts:
            raise ValueError(f"LeNet5: activation must be 'relu' or 'tanh', got {activation!r}")
        if pool not in pools:
            raise ValueError(f"LeNet5: pool must be 'max' or 'avg', got {pool!r}")
        self.padding = padding
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=padding)
        self.act1 = acts[activation]()
        self.pool1 = pools[pool](2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.act2 = acts[activation]()
        self.pool2 = pools[pool](2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = acts[activation]()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = acts[activation]()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        side = 32 - 2 * self.padding
        if x.ndim != 4 or x.shape[2:] != (side, side):
            raise ValueError(
                f"LeNet5(padding={self.padding}): expected input of shape (N, C, {side}, {side})"
                f" (32x32, or 28x28 with padding=2), got {tuple(x.shape)}"
            )
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.flatten(x)
        x = self.act3(self.fc1(x))
        x = self.act4(self.fc2(x))
        return self.fc3(x)


def lenet5(num_classes: int = 10, in_channels: int = 1, padding: int = 0,
           activation: str = "relu", pool: str = "max") -> LeNet5:
    """LeNet-5; see :class:`LeNet5`. Use ``padding=2`` for 28x28 inputs."""
    return LeNet5(num_classes, in_channels, padding, activation, pool)
