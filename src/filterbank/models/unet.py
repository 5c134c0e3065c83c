"""A small U-Net (Ronneberger et al., 2015) for pixel-wise classification (segmentation)."""

from __future__ import annotations

from filterbank import nn
from filterbank.functional import cat
from filterbank.tensor import Tensor


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 conv, padding 1, no bias -> BatchNorm2d -> ReLU) twice; keeps the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net: a contracting path, an expanding path with up-convolutions, and skip connections.

    ::

        level i (0..depth-1):  encoder.i = double_conv -> (skip i) -> max-pool 2x2
        bottleneck:            double_conv, base * 2^depth channels
        level i (depth-1..0):  upconv.i  = ConvTranspose2d(k=2, s=2) doubles H and W,
                               concatenate with skip i along channels,
                               decoder.i = double_conv back to base * 2^i channels
        head:                  1x1 convolution to num_classes logits per pixel

    Encoder level ``i`` has ``base * 2^i`` channels. The skip connections carry the
    fine-grained encoder features to the decoder, which the up-convolutions alone could not
    recover. Padding 1 keeps sizes, so the output has the input's H and W, which must be
    divisible by ``2^depth``. Train with ``CrossEntropyLoss`` on ``(N, num_classes, H, W)``
    logits and ``(N, H, W)`` integer masks.

    Args:
        in_channels: input channels. Default: 1.
        num_classes: output channels (classes per pixel). Default: 2.
        base: channels of the first level. Default: 16.
        depth: number of down-sampling steps. Default: 3.

    Shape:
        Input ``(N, in_channels, H, W)``, output ``(N, num_classes, H, W)``;
        ``H, W`` multiples of ``2^depth``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import unet
        >>> unet(in_channels=1, num_classes=3, base=4, depth=2)(fb.zeros(1, 1, 8, 8)).shape
        (1, 3, 8, 8)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 16,
                 depth: int = 3):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"UNet: depth and base must be >= 1, got depth={depth}, "
                             f"base={base}")
        self.depth = depth
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [double_conv(in_channels if i == 0 else widths[i - 1], widths[i])
             for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[depth - 1], widths[depth])
        self.upconv = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2)
             for i in range(depth)])
        self.decoder = nn.ModuleList(
            [double_conv(2 * widths[i], widths[i]) for i in range(depth)])
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        m = 2 ** self.depth
        if x.ndim != 4 or x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"UNet(depth={self.depth}): expected input (N, C, H, W) with H "
                             f"and W multiples of {m}, got {tuple(x.shape)}")
        skips = []
        for enc in self.encoder:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for i in reversed(range(self.depth)):
            x = self.upconv[i](x)
            x = self.decoder[i](cat([x, skips[i]], 1))
        return self.head(x)


def unet(in_channels: int = 1, num_classes: int = 2, base: int = 16, depth: int = 3) -> UNet:
    """A small U-Net; see :class:`UNet`."""
    return UNet(in_channels, num_classes, base, depth)
