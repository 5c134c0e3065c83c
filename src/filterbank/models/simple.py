"""A small two-block CNN: the demo model, sized to train to 90%+ on Fashion-MNIST in minutes."""

from __future__ import annotations

from filterbank import nn
from filterbank.tensor import Tensor


class SimpleCNN(nn.Module):
    """Two convolution blocks and a two-layer classifier, the textbook small CNN.

    ::

        input (C_in, S, S)
        conv1  3x3 pad 1, w maps     -> (w, S, S)          BN, maxpool 2x2, ReLU -> (w, S/2, S/2)
        conv2  3x3 pad 1, 2w maps    -> (2w, S/2, S/2)     BN, maxpool 2x2, ReLU -> (2w, S/4, S/4)
        flatten -> 2w (S/4)^2;  fc1 -> hidden, ReLU, dropout;  fc2 -> num_classes (logits)

    Max pooling comes before the ReLU: both are monotone, so ``relu(maxpool(x)) ==
    maxpool(relu(x))`` exactly, and the ReLU then runs on a quarter of the pixels. The
    convolutions have no bias because the BatchNorm that follows subtracts the mean anyway
    (its ``bias`` takes the role). 313,202 parameters for the defaults (28x28, 1 channel,
    10 classes, width 24).

    Args:
        num_classes: outputs of the last layer. Default: 10.
        in_channels: input channels. Default: 1.
        input_size: height and width of the (square) input, a multiple of 4. Default: 28.
        width: maps of the first convolution; the second has ``2 * width``. Default: 24 (the
            textbook 32-64 network, ``width=32``, is ~30% slower for ~+0.1% accuracy on
            Fashion-MNIST after 3 epochs).
        hidden: units of the hidden fully connected layer. Default: 128.
        dropout: dropout probability before the last layer. Default: 0.25.
        blocks: convolution blocks (conv 3x3, BN, max pool 2x2, ReLU), each halving the
            size; blocks after the second keep ``4 * width`` maps (after ``2 * width`` for the
            second) and sit in ``extra``. More blocks shrink the classifier's input: 4 blocks
            on 64x64 images give 4x4 maps, which suits regressing coordinates. Default: 2.
        pool: what the classifier sees of the last maps: ``'flatten'`` every position
            (default; where things are matters), ``'max'`` or ``'avg'`` one global pooling
            per map (``AdaptiveMaxPool2d(1)``: a feature counts wherever it fires, as for
            "is there a triangle in this image").

    Shape:
        Input ``(N, in_channels, input_size, input_size)``, output ``(N, num_classes)``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import get_model
        >>> model = get_model("simple_cnn", width=8, hidden=32)
        >>> model(fb.zeros(2, 1, 28, 28)).shape
        (2, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
                 width: int = 24, hidden: int = 128, dropout: float = 0.25, blocks: int = 2,
                 pool: str = "flatten"):
        super().__init__()
        if pool not in ("flatten", "max", "avg"):
            raise ValueError(f"SimpleCNN: pool must be 'flatten', 'max' or 'avg', got {pool!r}")
        for name, v in (("num_classes", num_classes), ("in_channels", in_channels),
                        ("width", width), ("hidden", hidden), ("input_size", input_size),
                        ("blocks", blocks)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SimpleCNN: {name} must be a positive int, got {v!r}")
        if blocks < 2:
            raise ValueError(f"SimpleCNN: blocks must be >= 2, got {blocks}")
        if input_size % 2 ** blocks:
            raise ValueError(f"SimpleCNN: input_size must be a multiple of {2 ** blocks} "
                             f"({blocks} 2x2 poolings), got {input_size}")
        self.input_size = input_size
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.pool1 = nn.MaxPool2d(2)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.act2 = nn.ReLU()
        c = 2 * width
        if blocks > 2:  # only then: the two-block network keeps its state_dict keys
            layers: list[nn.Module] = []
            for _ in range(blocks - 2):
                layers += [nn.Conv2d(c, 4 * width, 3, padding=1, bias=False),
                           nn.BatchNorm2d(4 * width), nn.MaxPool2d(2), nn.ReLU()]
                c = 4 * width
            self.extra = nn.Sequential(*layers)
        self.blocks, self.pool = blocks, pool
        if pool != "flatten":  # only then: the default keeps its state_dict keys and modules
            self.global_pool = (nn.AdaptiveMaxPool2d(1) if pool == "max"
                                else nn.AdaptiveAvgPool2d(1))
        self.flatten = nn.Flatten()
        side = 1 if pool != "flatten" else input_size // 2 ** blocks
        self.fc1 = nn.Linear(c * side ** 2, hidden)
        self.act3 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        s = self.input_size
        if x.ndim != 4 or x.shape[2:] != (s, s):
            raise ValueError(f"SimpleCNN(input_size={s}): expected input of shape (N, C, {s}, "
                             f"{s}), got {tuple(x.shape)}")
        x = self.act1(self.pool1(self.bn1(self.conv1(x))))
        x = self.act2(self.pool2(self.bn2(self.conv2(x))))
        if self.blocks > 2:
            x = self.extra(x)
        if self.pool != "flatten":
            x = self.global_pool(x)
        x = self.dropout(self.act3(self.fc1(self.flatten(x))))
        return self.fc2(x)


def simple_cnn(num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
               width: int = 24, hidden: int = 128, dropout: float = 0.25,
               blocks: int = 2, pool: str = "flatten") -> SimpleCNN:
    """The demo CNN; see :class:`SimpleCNN`."""
    return SimpleCNN(num_classes, in_channels, input_size, width, hidden, dropout, blocks,
                     pool)
