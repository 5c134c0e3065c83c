"""A U-Net (Ronneberger et al., 2015) for pixel-wise classification (segmentation): padded
("same", sizes kept) or the paper's unpadded ("valid") convolutions with cropped skips."""

from __future__ import annotations

from filterbank import nn
from filterbank.functional import cat
from filterbank.tensor import Tensor

PADDINGS = ("same", "valid")


def double_conv(in_channels: int, out_channels: int, padding: int = 1) -> nn.Sequential:
    """(3x3 conv, no bias -> BatchNorm2d -> ReLU) twice; padding 1 keeps the spatial size,
    padding 0 takes 2 pixels off each convolution (4 in all)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _valid_trace(size: int, depth: int) -> tuple[int | None, str]:
    """Follow one spatial size through an unpadded U-Net: ``(output size, '')``, or
    ``(None, why)`` at the first level where it is odd before a pooling or not positive."""
    s = size
    for level in range(depth):
        s -= 4
        if s <= 0:
            return None, f"encoder level {level} leaves {s} after its two 3x3 convolutions"
        if s % 2:
            return None, (f"encoder level {level} gives {s}, odd, which a 2x2 max pool cannot "
                          f"halve")
        s //= 2
    s -= 4
    if s <= 0:
        return None, f"the bottleneck leaves {s} after its two 3x3 convolutions"
    for level in reversed(range(depth)):
        s = 2 * s - 4
        if s <= 0:
            return None, f"decoder level {level} leaves {s} after its two 3x3 convolutions"
    return s, ""


def _valid_neighbours(size: int, depth: int) -> list[int]:
    """The valid input sizes nearest below and above ``size`` (they are ``2^depth`` apart)."""
    below = next((s for s in range(size - 1, 0, -1) if _valid_trace(s, depth)[0]), None)
    above = size + 1
    while _valid_trace(above, depth)[0] is None:
        above += 1
    return [s for s in (below, above) if s is not None]


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
    recover. Train with ``CrossEntropyLoss`` on ``(N, num_classes, H', W')`` logits and
    ``(N, H', W')`` integer masks.

    ``padding='same'`` (default): padding 1 keeps sizes, so the output has the input's H and
    W, which must be divisible by ``2^depth``.

    ``padding='valid'`` (the paper's): the 3x3 convolutions are unpadded, each takes 2 pixels
    off, so the decoder's up-sampled map is smaller than the encoder's skip, which is cropped
    to it (centre crop) before the concatenation. The output then covers the centre of the
    input: each output pixel sees only real pixels, no zero padding, which lets the paper tile
    large images with overlapping inputs. Per level a size ``s`` becomes ``(s - 4) / 2`` going
    down (it must be even before each pooling) and ``2 s - 4`` coming up; with ``depth=4``
    a 572x572 input gives 388x388 (572 -> 568 -> 284 -> 280 -> 140 -> 136 -> 68 -> 64 -> 32
    -> bottleneck 28 -> 56 -> 52 -> 104 -> 100 -> 200 -> 196 -> 392 -> 388). The valid input
    sizes are ``2^depth`` apart; :meth:`output_size` gives the output for an input.
    The paper's network is ``unet(in_channels=1, num_classes=2, base=64, depth=4,
    padding='valid')`` (with BatchNorm added after each convolution, as in both modes here).

    Args:
        in_channels: input channels. Default: 1.
        num_classes: output channels (classes per pixel). Default: 2.
        base: channels of the first level. Default: 16.
        depth: number of down-sampling steps. Default: 3.
        padding: ``'same'`` (padded convolutions, sizes kept) or ``'valid'`` (the paper's
            unpadded convolutions and cropped skips). Default: ``'same'``.

    Shape:
        Input ``(N, in_channels, H, W)``, output ``(N, num_classes, H', W')``. ``'same'``:
        ``H' = H``, ``H`` a multiple of ``2^depth``. ``'valid'``: ``H'`` from
        ``s -> (s - 4) / 2`` ``depth`` times, ``s -> s - 4`` (bottleneck),
        ``s -> 2 s - 4`` ``depth`` times, which sums to ``H' = H - 12 * 2^depth + 8``
        where every step is whole and positive: 572 -> 388 and 188 -> 4 (the smallest) at
        depth 4, 124 -> 36 at depth 3.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import unet
        >>> unet(in_channels=1, num_classes=3, base=4, depth=2)(fb.zeros(1, 1, 8, 8)).shape
        (1, 3, 8, 8)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 16,
                 depth: int = 3, padding: str = "same"):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"UNet: depth and base must be >= 1, got depth={depth}, "
                             f"base={base}")
        if padding not in PADDINGS:
            raise ValueError(f"UNet: padding must be 'same' or 'valid', got {padding!r}")
        self.depth, self.padding = depth, padding
        p = 1 if padding == "same" else 0
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [double_conv(in_channels if i == 0 else widths[i - 1], widths[i], p)
             for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[depth - 1], widths[depth], p)
        self.upconv = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2)
             for i in range(depth)])
        self.decoder = nn.ModuleList(
            [double_conv(2 * widths[i], widths[i], p) for i in range(depth)])
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the output for an ``height`` x ``width`` input; a ``ValueError``
        naming the level where a size does not work (and the valid sizes nearest to it)."""
        if self.padding == "same":
            m = 2 ** self.depth
            if height % m or width % m or height < 1 or width < 1:
                raise ValueError(f"UNet(depth={self.depth}): expected H and W positive "
                                 f"multiples of {m}, got {height}x{width}")
            return height, width
        out = []
        for name, size in (("H", height), ("W", width)):
            s, why = _valid_trace(size, self.depth)
            if s is None:
                near = " or ".join(map(str, _valid_neighbours(max(size, 1), self.depth)))
                raise ValueError(
                    f"UNet(depth={self.depth}, padding='valid'): input {name} = {size} does not "
                    f"fit the unpadded network ({why}); valid sizes near it: {near}")
            out.append(s)
        return out[0], out[1]

    def forward(self, x: Tensor) -> Tensor:
        m = 2 ** self.depth
        if self.padding == "same" and (x.ndim != 4 or x.shape[2] % m or x.shape[3] % m):
            raise ValueError(f"UNet(depth={self.depth}): expected input (N, C, H, W) with H "
                             f"and W multiples of {m}, got {tuple(x.shape)}")
        if self.padding == "valid":
            if x.ndim != 4:
                raise ValueError(f"UNet(depth={self.depth}, padding='valid'): expected input "
                                 f"(N, C, H, W), got {tuple(x.shape)}")
            self.output_size(x.shape[2], x.shape[3])
        skips = []
        for enc in self.encoder:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for i in reversed(range(self.depth)):
            x = self.upconv[i](x)
            x = self.decoder[i](cat([x, _center_crop(skips[i], x.shape[2:])], 1))
        return self.head(x)


def _center_crop(x: Tensor, size) -> Tensor:
    """The centre ``size`` (H, W) of ``x``; the paper crops the encoder's skip to the decoder's
    smaller map. The margins are even (every size before a pooling is), so the crop is
    symmetric. A no-op for ``padding='same'``."""
    h, w = size
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    if (top, left) == (0, 0) and x.shape[2:] == (h, w):
        return x
    return x[:, :, top:top + h, left:left + w]


def unet(in_channels: int = 1, num_classes: int = 2, base: int = 16, depth: int = 3,
         padding: str = "same") -> UNet:
    """A U-Net; ``padding='valid'`` is the paper's (572x572 -> 388x388 at depth 4); see
    :class:`UNet`."""
    return UNet(in_channels, num_classes, base, depth, padding)
