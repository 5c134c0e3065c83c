"""ResNet-18/34/50 (He et al., 2015) as torchvision builds them, with a CIFAR stem option;
and the CIFAR-10 ResNets of the same paper (section 4.2: 6n + 2 layers, widths 16/32/64)."""

from __future__ import annotations

from filterbank import nn
from filterbank.nn import init
from filterbank.tensor import Tensor


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias: mixes channels, or projects the skip connection."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/34: two 3x3 convolutions plus the skip connection.

    ``y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` where ``shortcut`` is the
    identity, or ``downsample`` (1x1 convolution + BatchNorm) when the stride or the channel
    count changes. The block learns the residual ``F(x) = y - x``; the identity path lets the
    gradient reach early layers unchanged (``dy/dx = dF/dx + 1``).

    Args:
        inplanes: input channels.
        planes: output channels (``expansion = 1``).
        stride: stride of ``conv1`` (2 halves the size).
        downsample: module applied to ``x`` on the skip path, or None for the identity.

    Shape:
        ``(N, inplanes, H, W) -> (N, planes, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """The residual block of ResNet-50/101/152: 1x1 reduce, 3x3, 1x1 expand (x4), plus skip.

    ``y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))``. The stride
    sits on the 3x3 convolution (torchvision's "ResNet v1.5").

    Args:
        inplanes: input channels.
        planes: width of the 3x3 convolution; the output has ``planes * 4`` channels.
        stride: stride of ``conv2``.
        downsample: module applied to ``x`` on the skip path, or None for the identity.

    Shape:
        ``(N, inplanes, H, W) -> (N, 4 * planes, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_stage(block, inplanes: int, planes: int, blocks: int,
                stride: int = 1) -> tuple[nn.Sequential, int]:
    """A stage of ``blocks`` residual blocks and its output channels: the first block takes
    the stride and, where the shape changes, a projection shortcut (1x1 convolution +
    BatchNorm) in ``downsample``."""
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
    layers = [block(inplanes, planes, stride, downsample)]
    layers.extend(block(out, planes) for _ in range(1, blocks))
    return nn.Sequential(*layers), out


def _init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    """torchvision's ResNet initialisation: convolutions ``kaiming_normal_(mode="fan_out",
    nonlinearity="relu")``, BatchNorm weight 1 and bias 0; with ``zero_init_residual`` the last
    BatchNorm of every block starts at 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            init.ones_(m.weight)
            init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                init.zeros_(m.bn2.weight)


class ResNet(nn.Module):
    """Residual network: a stem, four stages of residual blocks, global average pool, ``fc``.

    Modules and names as ``torchvision.models.ResNet`` (``conv1``, ``bn1``, ``relu``,
    ``maxpool``, ``layer1``..``layer4``, ``avgpool``, ``fc``), so state_dicts map one to one.
    Stage ``i`` has ``64 * 2^i * expansion`` output channels; stages 2-4 halve the size.

    Stems:
        ``"imagenet"``: 7x7 convolution stride 2 + 3x3 max-pool stride 2 (divides the size by
        4; the network by 32). ``"cifar"``: 3x3 convolution stride 1 and no max-pool (the usual
        choice for 32x32 images; ``maxpool`` is an Identity, the keys are unchanged).

    Initialisation (torchvision's): convolutions ``kaiming_normal_(mode="fan_out",
    nonlinearity="relu")``, BatchNorm weight 1 and bias 0, ``fc`` the Linear default. With
    ``zero_init_residual`` the last BatchNorm of each block starts at weight 0, so every block
    starts as the identity.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: outputs. Default: 1000.
        in_channels: input channels. Default: 3.
        stem: ``"imagenet"`` or ``"cifar"``.
        zero_init_residual: start each residual branch at zero.

    Shape:
        Input ``(N, in_channels, H, W)``, output ``(N, num_classes)``.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet",
                 zero_init_residual: bool = False):
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"ResNet: stem must be 'imagenet' or 'cifar', got {stem!r}")
        if len(layers) != 4:
            raise ValueError(f"ResNet: expected 4 stage depths, got {layers}")
        self.stem = stem
        self.inplanes = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                   bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1,
                                   bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = (nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet"
                        else nn.Identity())
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        _init_resnet(self, zero_init_residual)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layer, self.inplanes = _make_stage(block, self.inplanes, planes, blocks, stride)
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"ResNet: expected input (N, C, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.flatten(1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet",
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-18: BasicBlocks [2, 2, 2, 2]; 11,689,512 parameters (ImageNet stem, 3 channels,
    1000 classes).

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import resnet18
        >>> model = resnet18(num_classes=10, stem="cifar")
        >>> model(fb.zeros(2, 3, 8, 8)).shape  # doctest: +SKIP
        (2, 10)
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, stem, zero_init_residual)


def resnet34(num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet",
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-34: BasicBlocks [3, 4, 6, 3]; 21,797,672 parameters (ImageNet stem, 3 channels,
    1000 classes)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, stem, zero_init_residual)


def resnet50(num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet",
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-50: Bottlenecks [3, 4, 6, 3]; 25,557,032 parameters (ImageNet stem, 3 channels,
    1000 classes)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, stem, zero_init_residual)


class CifarResNet(nn.Module):
    """The residual networks of He et al. for CIFAR-10 ("Deep Residual Learning for Image
    Recognition", 2015, section 4.2): ``6n + 2`` weighted layers on 32x32 (or 28x28) images.

    Structure, for width ``w`` and ``n = (depth - 2) / 6`` :class:`BasicBlock` s per stage::

        conv1 (3x3, w, stride 1) -> bn1 -> relu           no max-pool: the full size is kept
        layer1: n blocks, w channels                      H x W        (32 -> 32, 28 -> 28)
        layer2: n blocks, 2w channels, first stride 2     ceil(H / 2)  (32 -> 16, 28 -> 14)
        layer3: n blocks, 4w channels, first stride 2     ceil(H / 4)  (32 -> 8,  28 -> 7)
        avgpool (global) -> fc (4w -> num_classes)

    The ``6n + 2`` layers are ``conv1``, the ``2n`` convolutions of each of the three stages
    and ``fc``. Shortcuts are the identity, except where a stage's first block changes the shape:
    there a projection, 1x1 convolution with stride 2 + BatchNorm (the paper's "option B"; its
    CIFAR table used option A, zero-padding, which has no parameters) in ``downsample``.

    Parameter counts (3 input channels, 10 classes, ``w = 16``): ``depth=8`` (resnet8) 78,042;
    ``depth=20`` (resnet20) 272,474; each step of ``n`` (depth + 6: one more block per stage)
    adds ``2 * 9 * (w^2 + 4w^2 + 16w^2) + 2 * 2 * (w + 2w + 4w)`` = 97,216.

    Initialisation as :class:`ResNet`: convolutions ``kaiming_normal_(mode="fan_out",
    nonlinearity="relu")``, BatchNorm weight 1 and bias 0, ``fc`` the Linear default; with
    ``zero_init_residual`` each block's ``bn2`` starts at weight 0 (every block the identity).

    Args:
        depth: ``6n + 2`` with ``n >= 1``: 8, 14, 20, 32, 44, 56, 110, ...
        num_classes: outputs. Default: 10.
        in_channels: input channels. Default: 3.
        width: channels of the first stage ``w`` (the paper's 16); the stages have
            ``(w, 2w, 4w)``. Default: 16.
        zero_init_residual: start each residual branch at zero. Default: False.

    Shape:
        Input ``(N, in_channels, H, W)``, output ``(N, num_classes)``; the last feature maps are
        ``(N, 4w, ceil(H / 4), ceil(W / 4))``.

    Example:
        >>> import filterbank as fb
        >>> from filterbank.models import resnet20
        >>> resnet20(in_channels=1)(fb.zeros(2, 1, 28, 28)).shape
        (2, 10)
    """

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3,
                 width: int = 16, zero_init_residual: bool = False):
        super().__init__()
        if (isinstance(depth, bool) or not isinstance(depth, int) or depth < 8
                or (depth - 2) % 6):
            raise ValueError(f"CifarResNet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, "
                             f"56, 110, ...), got {depth!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"CifarResNet: width must be a positive int, got {width!r}")
        n = (depth - 2) // 6
        self.depth, self.width = depth, width
        self.inplanes = width
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(width, n)
        self.layer2 = self._make_layer(2 * width, n, stride=2)
        self.layer3 = self._make_layer(4 * width, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4 * width, num_classes)

        _init_resnet(self, zero_init_residual)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layer, self.inplanes = _make_stage(BasicBlock, self.inplanes, planes, blocks, stride)
        return layer

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"CifarResNet: expected input (N, C, H, W), got shape "
                             f"{tuple(x.shape)}")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avgpool(x)
        return self.fc(x.flatten(1))


def resnet8(num_classes: int = 10, in_channels: int = 3, width: int = 16,
            zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-8 of He et al. section 4.2 (``n = 1``: one BasicBlock per stage); 78,042
    parameters (3 channels, 10 classes, width 16). See :class:`CifarResNet`."""
    return CifarResNet(8, num_classes, in_channels, width, zero_init_residual)


def resnet20(num_classes: int = 10, in_channels: int = 3, width: int = 16,
             zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-20 of He et al. section 4.2 (``n = 3``); 272,474 parameters (3 channels, 10
    classes, width 16; the paper's 0.27M). See :class:`CifarResNet`."""
    return CifarResNet(20, num_classes, in_channels, width, zero_init_residual)
