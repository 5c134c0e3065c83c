"""YOLO v1 detectors: the paper's network (Redmon et al., 2016) and a tiny one for small images.

Both return predictions in the layout of :class:`filterbank.nn.YOLOv1Loss` and
:func:`filterbank.train.yolo.decode`: ``(N, S, S, B*5 + C)``, per cell first the B boxes, each
``(x, y, sqrt_w, sqrt_h, confidence)``, then the C class scores; cell ``[n, i, j]`` is row ``i``
(y) and column ``j`` (x). Each model keeps ``S``, ``B`` and ``C`` as attributes, so the loss
can be built from it: ``nn.YOLOv1Loss(S=model.S, B=model.B, C=model.C)``.
"""

from __future__ import annotations

import numpy as np

from filterbank import nn
from filterbank.functional import cat, sigmoid
from filterbank.tensor import Tensor


def _positive_int(model: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive int, got {value!r}")
    return int(value)


def _classes(model: str, C: int, num_classes: int | None) -> int:
    """``num_classes`` is accepted as another name of ``C`` (the zoo's and the CLI's name)."""
    C = _positive_int(model, "C", C)
    if num_classes is None:
        return C
    num_classes = _positive_int(model, "num_classes", num_classes)
    return num_classes


# ------------------------------------------------------------------------------ YOLO v1
#: The paper's convolutional stack (Figure 3): (kernel, out_channels, stride) or "M" for a
#: 2x2/2 max pool. 24 convolutions; every one is followed by a leaky ReLU (slope 0.1).
V1_CFG: list = [
    (7, 64, 2), "M",
    (3, 192, 1), "M",
    (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), "M",
    *[(1, 256, 1), (3, 512, 1)] * 4, (1, 512, 1), (3, 1024, 1), "M",
    *[(1, 512, 1), (3, 1024, 1)] * 2, (3, 1024, 1), (3, 1024, 2),
    (3, 1024, 1), (3, 1024, 1),
]
#: Total stride of :data:`V1_CFG`: one 7x7/2 and one 3x3/2 convolution, four max pools.
V1_STRIDE = 64


class YOLOv1(nn.Module):
    """YOLO v1 (Redmon et al., 2016): 24 convolutions and 2 fully connected layers.

    ::

        448x448x3 -> conv 7x7/2 64, maxpool                            -> 112x112x64
                  -> conv 3x3 192, maxpool                             -> 56x56x192
                  -> 1x1 128, 3x3 256, 1x1 256, 3x3 512, maxpool       -> 28x28x512
                  -> (1x1 256, 3x3 512) x4, 1x1 512, 3x3 1024, maxpool -> 14x14x1024
                  -> (1x1 512, 3x3 1024) x2, 3x3 1024, 3x3/2 1024      -> 7x7x1024
                  -> 3x3 1024, 3x3 1024                                -> 7x7x1024
        flatten -> fc 4096, leaky ReLU, dropout 0.5 -> fc S*S*(B*5 + C) -> (S, S, B*5 + C)

    Every convolution is "same"-padded (``padding = k // 2``), has a bias and is followed by a
    leaky ReLU with slope 0.1; the last layer is linear. Instead of GoogLeNet's inception
    modules, 1x1 reduction layers (as in Network in Network) cut the channels before the 3x3
    convolutions to save computation. The total stride is 64, so the input must be ``64 S``
    pixels square: 448 for the paper's S = 7. With S=7, B=2, C=20 the network has 271,703,550
    parameters, 205.5M of them in the first fully connected layer.

    Args:
        S: grid size (S x S cells). Default: 7.
        B: boxes per cell. Default: 2.
        C: number of classes. Default: 20 (PASCAL VOC).
        in_channels: input channels. Default: 3.
        num_classes: another name of ``C`` (the zoo's); wins when given.
        dropout: dropout probability after the first fully connected layer. Default: 0.5.

    Shape:
        Input ``(N, in_channels, 64 S, 64 S)``, output ``(N, S, S, B*5 + C)``.

    Example:
        >>> from filterbank.models import yolo_v1
        >>> model = yolo_v1()  # doctest: +SKIP
        >>> model.num_parameters()  # doctest: +SKIP
        271703550
        >>> model.summary((3, 448, 448))  # doctest: +SKIP
    """

    def __init__(self, S: int = 7, B: int = 2, C: int = 20, in_channels: int = 3,
                 num_classes: int | None = None, dropout: float = 0.5):
        super().__init__()
        self.S = _positive_int("YOLOv1", "S", S)
        self.B = _positive_int("YOLOv1", "B", B)
        self.C = _classes("YOLOv1", C, num_classes)
        in_channels = _positive_int("YOLOv1", "in_channels", in_channels)
        layers: list[nn.Module] = []
        c = in_channels
        for v in V1_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            k, out, stride = v
            layers += [nn.Conv2d(c, out, k, stride=stride, padding=k // 2),
                       nn.LeakyReLU(0.1)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * self.S * self.S, 4096),
            nn.LeakyReLU(0.1),
            nn.Dropout(dropout),
            nn.Linear(4096, self.S * self.S * (5 * self.B + self.C)),
        )

    def extra_repr(self) -> str:
        return f"S={self.S}, B={self.B}, C={self.C}"

    def forward(self, x: Tensor) -> Tensor:
        size = V1_STRIDE * self.S
        if x.ndim != 4 or x.shape[2:] != (size, size):
            raise ValueError(
                f"YOLOv1(S={self.S}): expected input (N, C, {size}, {size}) (total stride "
                f"{V1_STRIDE} x S={self.S} cells), got {tuple(x.shape)}")
        y = self.classifier(self.features(x))
        return y.reshape(x.shape[0], self.S, self.S, 5 * self.B + self.C)


def yolo_v1(S: int = 7, B: int = 2, C: int = 20, in_channels: int = 3,
            num_classes: int | None = None, dropout: float = 0.5) -> YOLOv1:
    """The paper's YOLO v1 on ``64 S`` x ``64 S`` images; see :class:`YOLOv1`."""
    return YOLOv1(S, B, C, in_channels, num_classes, dropout)


# ---------------------------------------------------------------------------- tiny YOLO
def conv_bn_leaky(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias: the BatchNorm's shift replaces it), BatchNorm,
    leaky ReLU 0.1."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
    )


def _default_grid(input_size: int) -> int:
    """The grid of the power-of-two stride (>= 2) closest to the paper's S = 7: 64 -> 8,
    96 -> 6, 128 -> 8. Candidates differ by a factor 2, so there is never a tie."""
    best = None
    s = input_size
    while s % 2 == 0 and s >= 2:
        s //= 2
        if best is None or abs(s - 7) < abs(best - 7):
            best = s
    if best is None:
        raise ValueError(f"TinyYOLO: input_size must be divisible by 2 (at least one "
                         f"down-sampling), got {input_size}")
    return best


def _grids(input_size: int) -> list[int]:
    """The grids S for which ``input_size / S`` is a power of two >= 2."""
    out, s = [], input_size
    while s % 2 == 0:
        s //= 2
        out.append(s)
    return out


SIGMOIDS = ("all", "boxes", "none")
STEMS = ("pool", "stride")


class TinyYOLO(nn.Module):
    """A small, fully convolutional YOLO v1 for 64x64 to 128x128 images.

    ::

        input (in_channels, H, W)
        n blocks:    conv 3x3 -> BN -> leaky ReLU 0.1 -> maxpool 2x2    widths w, 2w, 4w, 8w, 8w..
        two blocks:  conv 3x3 -> BN -> leaky ReLU 0.1 at H / 2^n        width 8w
        head:        conv 1x1 to B*5 + C channels, (sigmoid), permuted to (N, H/2^n, W/2^n, B*5+C)

    The total stride ``2^n = input_size / S`` must be a power of two: 64x64 images with S=8
    give 3 down-samplings (widths 16-32-64, then 128, 128 for ``width=16``), 64x64 with S=4 and
    128x128 with S=8 give 4 (16-32-64-128, then 128, 128). With ``stem='stride'`` the first
    block is a stride-2 convolution instead of a convolution and a max pool: it computes only
    the pixels the pool would keep, 4x cheaper at full resolution, where small models spend
    most of their time. The head is a 1x1 convolution, not the paper's fully connected layers:
    each cell's ``B*5 + C`` numbers come from the features at that cell (whose receptive field,
    54 pixels at stride 8, covers the objects of a 64x64 image), which costs a few thousand
    parameters instead of millions. Being convolutional, the model also runs on larger inputs
    (multiples of the stride), giving a larger grid.

    Output activation (the layout is the same in every case; the loss and the decoder read the
    same numbers):

    - ``sigmoid='all'`` (default): every output goes through a sigmoid. All the targets of
      :class:`filterbank.nn.YOLOv1Loss` lie in [0, 1] (offsets inside the cell, roots of
      fractions of the image, confidence = IoU or 0, one-hot classes), so the network never
      spends capacity on impossible values, and untrained boxes start centred in their cells
      at half-size roots.
    - ``'boxes'``: only ``x, y, sqrt_w, sqrt_h`` of each box; confidences and class scores stay
      linear, as in the paper.
    - ``'none'``: the paper's linear output.

    Args:
        S: grid size at ``input_size``; default the power-of-two stride's grid closest to 7
            (64 -> 8, 96 -> 6, 128 -> 8).
        B: boxes per cell. Default: 2.
        C: number of classes. Default: 5 (the Shapes data set's).
        in_channels: input channels. Default: 3.
        input_size: height and width of the training images. Default: 64.
        width: channels of the first block, doubled after each down-sampling up to
            ``8 * width``. Default: 16.
        sigmoid: ``'all'``, ``'boxes'`` or ``'none'``, see above. Default: ``'all'``.
        stem: ``'pool'`` (3x3 conv, then 2x2 max pool) or ``'stride'`` (3x3 conv with stride
            2) for the first down-sampling. Default: ``'pool'``.
        num_classes: another name of ``C`` (the zoo's); wins when given.

    Shape:
        Input ``(N, in_channels, H, W)`` with ``H, W`` multiples of the stride
        ``input_size / S``; output ``(N, H / stride, W / stride, B*5 + C)``, i.e.
        ``(N, S, S, B*5 + C)`` at ``input_size``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import tiny_yolo
        >>> model = tiny_yolo(C=3, input_size=64)
        >>> model.S, model.stride, model(fb.zeros(2, 3, 64, 64)).shape
        (8, 8, (2, 8, 8, 13))
    """

    def __init__(self, S: int | None = None, B: int = 2, C: int = 5, in_channels: int = 3,
                 input_size: int = 64, width: int = 16, sigmoid: str = "all",
                 stem: str = "pool", num_classes: int | None = None):
        super().__init__()
        input_size = _positive_int("TinyYOLO", "input_size", input_size)
        if S is None:
            S = _default_grid(input_size)
        self.S = _positive_int("TinyYOLO", "S", S)
        self.B = _positive_int("TinyYOLO", "B", B)
        self.C = _classes("TinyYOLO", C, num_classes)
        in_channels = _positive_int("TinyYOLO", "in_channels", in_channels)
        width = _positive_int("TinyYOLO", "width", width)
        if sigmoid not in SIGMOIDS:
            raise ValueError(f"TinyYOLO: sigmoid must be 'all', 'boxes' or 'none', got "
                             f"{sigmoid!r}")
        if stem not in STEMS:
            raise ValueError(f"TinyYOLO: stem must be 'pool' or 'stride', got {stem!r}")
        stride = input_size // self.S
        if input_size % self.S or stride < 2 or stride & (stride - 1):
            raise ValueError(
                f"TinyYOLO: input_size / S must be a power of two >= 2 (the total stride of "
                f"the 2x2 max pools), got input_size={input_size}, S={self.S}; e.g. S in "
                f"{_grids(input_size)}")
        self.input_size, self.stride = input_size, stride
        self.sigmoid, self.stem = sigmoid, stem
        n = stride.bit_length() - 1  # number of down-samplings
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(n):
            out = width * 2 ** min(i, 3)
            if i == 0 and stem == "stride":
                layers.append(conv_bn_leaky(c, out, stride=2))
            else:
                layers += [conv_bn_leaky(c, out), nn.MaxPool2d(2, 2)]
            c = out
        layers += [conv_bn_leaky(c, 8 * width), conv_bn_leaky(8 * width, 8 * width)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(8 * width, 5 * self.B + self.C, 1)

    def extra_repr(self) -> str:
        return (f"S={self.S}, B={self.B}, C={self.C}, input_size={self.input_size}, "
                f"stride={self.stride}, sigmoid={self.sigmoid!r}, stem={self.stem!r}")

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        if x.ndim != 4 or x.shape[2] % s or x.shape[3] % s or 0 in x.shape[2:]:
            raise ValueError(
                f"TinyYOLO(input_size={self.input_size}, S={self.S}): expected input (N, C, H, "
                f"W) with H and W positive multiples of the total stride {s} "
                f"({self.input_size}x{self.input_size} gives the {self.S}x{self.S} grid), "
                f"got {tuple(x.shape)}")
        y = self.head(self.features(x))
        if self.sigmoid == "all":
            y = sigmoid(y)
        y = y.permute(0, 2, 3, 1)  # (N, S, S, B*5 + C)
        if self.sigmoid != "boxes":
            return y
        n, h, w, _ = y.shape
        boxes = y[..., : 5 * self.B].reshape(n, h, w, self.B, 5)
        boxes = cat([sigmoid(boxes[..., :4]), boxes[..., 4:]], -1)
        return cat([boxes.reshape(n, h, w, 5 * self.B), y[..., 5 * self.B:]], -1)


def tiny_yolo(S: int | None = None, B: int = 2, C: int = 5, in_channels: int = 3,
              input_size: int = 64, width: int = 16, sigmoid: str = "all", stem: str = "pool",
              num_classes: int | None = None) -> TinyYOLO:
    """A small fully convolutional YOLO v1 for 64x64 to 128x128 images; see :class:`TinyYOLO`."""
    return TinyYOLO(S, B, C, in_channels, input_size, width, sigmoid, stem, num_classes)
