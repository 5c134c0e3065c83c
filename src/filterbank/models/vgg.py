"""VGG-11/13/16/19 (Simonyan & Zisserman, 2014), with or without batch normalisation, as
torchvision builds them."""

from __future__ import annotations

from filterbank import nn
from filterbank.nn import init
from filterbank.tensor import Tensor

#: Layer configurations: numbers are 3x3 convolutions with that many output channels (padding
#: 1, so the size is kept), "M" a 2x2 max-pool that halves it.
CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], in_channels: int = 3, batch_norm: bool = False
                ) -> nn.Sequential:
    """The ``features`` part: conv(3x3, pad 1) [+ BatchNorm2d] + ReLU per number, a 2x2
    max-pool per "M"."""
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(c, int(v), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        c = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG: stacks of 3x3 convolutions and 2x2 max-pools, then three fully connected layers.

    Same modules and names as ``torchvision.models.VGG`` (``features``, ``avgpool``,
    ``classifier``), so state_dicts map one to one. The five pools divide the input size by 32,
    so inputs must be at least 32x32 (224x224 in the paper); an adaptive average pool to 7x7
    feeds the classifier ``25088 -> 4096 -> 4096 -> num_classes`` with ReLU and dropout.

    Initialisation (torchvision's): convolutions ``kaiming_normal_(mode="fan_out",
    nonlinearity="relu")`` with zero bias, BatchNorm weight 1 and bias 0, linear layers
    ``N(0, 0.01)`` with zero bias.

    Args:
        features: the convolutional part (see :func:`make_layers`).
        num_classes: outputs. Default: 1000.
        dropout: dropout probability in the classifier. Default: 0.5.
        init_weights: apply the initialisation above (else the layers' defaults).

    Shape:
        Input ``(N, C, H, W)`` with ``H, W >= 32``, output ``(N, num_classes)``.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5,
                 init_weights: bool = True):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or min(x.shape[2:]) < 32:
            raise ValueError(f"VGG: expected input (N, C, H, W) with H, W >= 32, got "
                             f"{tuple(x.shape)}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_channels: int, dropout: float
         ) -> VGG:
    return VGG(make_layers(CFGS[cfg], in_channels, batch_norm), num_classes, dropout)


def vgg11(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
          dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration "A"): 8 convolutions + 3 linear layers; 132,863,336 parameters
    (3 channels, 1000 classes) without batch norm."""
    return _vgg("vgg11", batch_norm, num_classes, in_channels, dropout)


def vgg13(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
          dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration "B"): 10 convolutions + 3 linear layers; 133,047,848 parameters
    (3 channels, 1000 classes) without batch norm."""
    return _vgg("vgg13", batch_norm, num_classes, in_channels, dropout)


def vgg16(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
          dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration "D"): 13 convolutions + 3 linear layers; 138,357,544 parameters
    (3 channels, 1000 classes) without batch norm.

    Example:
        >>> from filterbank.models import vgg16
        >>> vgg16().num_parameters()  # doctest: +SKIP
        138357544
    """
    return _vgg("vgg16", batch_norm, num_classes, in_channels, dropout)


def vgg19(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False,
          dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration "E"): 16 convolutions + 3 linear layers; 143,667,240 parameters
    (3 channels, 1000 classes) without batch norm."""
    return _vgg("vgg19", batch_norm, num_classes, in_channels, dropout)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 with a BatchNorm2d after every convolution."""
    return _vgg("vgg11", True, num_classes, in_channels, dropout)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 with a BatchNorm2d after every convolution."""
    return _vgg("vgg13", True, num_classes, in_channels, dropout)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 with a BatchNorm2d after every convolution."""
    return _vgg("vgg16", True, num_classes, in_channels, dropout)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 with a BatchNorm2d after every convolution."""
    return _vgg("vgg19", True, num_classes, in_channels, dropout)
