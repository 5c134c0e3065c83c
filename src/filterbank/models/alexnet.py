"""AlexNet (Krizhevsky et al., 2012) in torchvision's single-GPU form."""

from __future__ import annotations

from filterbank import nn
from filterbank.tensor import Tensor


class AlexNet(nn.Module):
    """AlexNet, layer for layer as ``torchvision.models.AlexNet`` (state_dict keys map 1:1).

    ::

        features:   conv 11x11/4 64 - ReLU - maxpool 3/2 - conv 5x5 192 - ReLU - maxpool 3/2
                    - conv 3x3 384 - ReLU - conv 3x3 256 - ReLU - conv 3x3 256 - ReLU
                    - maxpool 3/2
        avgpool:    adaptive average pool to 6x6
        classifier: dropout - fc 9216->4096 - ReLU - dropout - fc 4096->4096 - ReLU
                    - fc 4096->num_classes

    61,100,840 parameters with 3 input channels and 1000 classes. Inputs must be at least 63x63
    (224x224 in the paper); the adaptive pool makes any larger size work.

    Args:
        num_classes: outputs. Default: 1000.
        in_channels: input channels. Default: 3.
        dropout: dropout probability in the classifier. Default: 0.5.
        lrn: add the paper's local response normalisation (size 5, alpha 1e-4, beta 0.75,
            k 2) after the first two ReLUs. Off by default, as in torchvision; when on, the
            ``features`` indices after it shift, so torchvision state_dicts no longer fit.

    Shape:
        Input ``(N, in_channels, H, W)`` with ``H, W >= 63``, output ``(N, num_classes)``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import alexnet
        >>> alexnet(num_classes=10)(fb.zeros(1, 3, 63, 63)).shape  # doctest: +SKIP
        (1, 10)
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
                 lrn: bool = False):
        super().__init__()

        def norm():
            return [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if lrn else []

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or min(x.shape[2:]) < 63:
            raise ValueError(f"AlexNet: expected input (N, C, H, W) with H, W >= 63, got "
                             f"{tuple(x.shape)}")
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
            lrn: bool = False) -> AlexNet:
    """AlexNet as torchvision builds it; see :class:`AlexNet`."""
    return AlexNet(num_classes, in_channels, dropout, lrn)
