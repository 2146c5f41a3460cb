"""Family-neutral building blocks: conv+BN units, residual blocks, stages, the DAPPM pyramid
pooling module and the segmentation head. DDRNet uses them today; RDRNet and PIDNet reuse
them instead of copying (PaddleSeg copies BasicBlock/DAPPM into each family).

Sub-layer names and ``nn.Sequential`` indices follow the official DDRNet release
(github.com/ydhongHIT/DDRNet), which PIDNet and RDRNet keep, so released checkpoints load by
renaming BN buffers only. Batch-norm defaults (momentum 0.9, epsilon 1e-5) are Paddle's
spelling of PyTorch's (momentum 0.1, epsilon 1e-5) used in the official trainings.

Blocks that hold a convolution followed by a batch norm fold the pair for deployment in
their own ``reparameterize()``; :func:`.reparameterize.reparameterize` walks a network and
calls them.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .reparameterize import fold_conv_bn


def resize(x, size):
    """Bilinear resize with ``align_corners=False``, as everywhere in the official models."""
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def conv_bn(in_channels, out_channels, kernel_size, stride=1, padding=None):
    """Conv (no bias) followed by BN: the compression / downsample unit."""
    return nn.Sequential(
        nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2 if padding is None else padding, bias_attr=False),
        nn.BatchNorm2D(out_channels))


def bn_relu_conv(in_channels, out_channels, kernel_size, pool=None):
    """Pre-activation unit of DAPPM: [pool] - BN - ReLU - conv (the BN cannot be folded)."""
    layers = [] if pool is None else [pool]
    layers += [
        nn.BatchNorm2D(in_channels), nn.ReLU(),
        nn.Conv2D(in_channels, out_channels, kernel_size,
                  padding=kernel_size // 2, bias_attr=False)
    ]
    return nn.Sequential(*layers)


class _ResidualBlock(nn.Layer):
    """What residual blocks share: the shortcut sum with an optional final ReLU, and folding
    of the (conv, BN) attribute pairs named in ``FOLDABLE`` for deployment."""
    FOLDABLE = ()

    def _residual(self, out, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = out + shortcut
        return out if self.no_relu else F.relu(out)

    def reparameterize(self):
        for conv, bn in self.FOLDABLE:
            setattr(self, bn, fold_conv_bn(getattr(self, conv), getattr(self, bn)))


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs with a residual; ``no_relu`` leaves the sum un-activated."""
    expansion = 1
    FOLDABLE = (('conv1', 'bn1'), ('conv2', 'bn2'))

    def __init__(self, in_channels, channels, stride=1, downsample=None, no_relu=False):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, channels, 3, stride, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(channels)
        self.conv2 = nn.Conv2D(channels, channels, 3, 1, 1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(channels)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return self._residual(self.bn2(self.conv2(out)), x)


class Bottleneck(_ResidualBlock):
    """1x1 - 3x3 - 1x1 residual block with expansion 2 (stage 5 of DDRNet, PIDNet's).

    The official Bottleneck defaults to ``no_relu=True``, and stage 5 keeps that default.
    """
    expansion = 2
    FOLDABLE = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'))

    def __init__(self, in_channels, channels, stride=1, downsample=None, no_relu=True):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, channels, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(channels)
        self.conv2 = nn.Conv2D(channels, channels, 3, stride, 1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(channels)
        self.conv3 = nn.Conv2D(channels, channels * self.expansion, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(channels * self.expansion)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self._residual(self.bn3(self.conv3(out)), x)


def make_stage(block, in_channels, channels, num_blocks, stride=1, last_relu=False):
    """A sequence of ``num_blocks`` residual blocks of type ``block``.

    As in the official DDRNet and PIDNet code the last of several blocks has no final ReLU
    (the caller applies it where the next stage needs it); ``last_relu=True`` keeps it.
    A strided or widening first block gets a 1x1 conv+BN shortcut.
    """
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = conv_bn(in_channels, out_channels, 1, stride)
    blocks = [block(in_channels, channels, stride, downsample)]
    for i in range(1, num_blocks):
        blocks.append(block(out_channels, channels, no_relu=(i == num_blocks - 1 and not last_relu)))
    return nn.Sequential(*blocks)


class DAPPM(nn.Layer):
    """Deep Aggregation Pyramid Pooling Module (DDRNet; PIDNet-L).

    Scales: identity, one average pooling per ``pools`` entry (kernel, stride) and global
    pooling. Each pooled scale is resized back and fused hierarchically with the previous
    one by a 3x3 conv; the five are concatenated, compressed and added to a 1x1 shortcut.
    Average pooling counts the zero padding (PyTorch's default, ``exclusive=False`` in
    Paddle), which the released weights were trained with; PaddleSeg's DDRNet_23 excludes it
    (``pool_exclusive=True``).

    Args:
        in_channels (int): Input channels.
        branch_channels (int): Width of each scale.
        out_channels (int): Output channels.
        pools (tuple): (kernel, stride) of the average poolings between identity and global.
            Default: DDRNet's ((5, 2), (9, 4), (17, 8)).
        pool_exclusive (bool): Exclude the padding from the averages. Default: False.
    """

    def __init__(self, in_channels, branch_channels, out_channels, pools=((5, 2), (9, 4), (17, 8)),
                 pool_exclusive=False):
        super().__init__()
        self.num_scales = len(pools) + 2
        self.scale0 = bn_relu_conv(in_channels, branch_channels, 1)
        for i, (kernel, stride) in enumerate(pools, start=1):
            pool = nn.AvgPool2D(kernel, stride, kernel // 2, exclusive=pool_exclusive)
            setattr(self, f'scale{i}', bn_relu_conv(in_channels, branch_channels, 1, pool))
        setattr(self, f'scale{len(pools) + 1}', bn_relu_conv(in_channels, branch_channels, 1, nn.AdaptiveAvgPool2D(1)))
        for i in range(1, self.num_scales):
            setattr(self, f'process{i}', bn_relu_conv(branch_channels, branch_channels, 3))
        self.compression = bn_relu_conv(branch_channels * self.num_scales, out_channels, 1)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        outs = [self.scale0(x)]
        for i in range(1, self.num_scales):
            scaled = resize(getattr(self, f'scale{i}')(x), size)
            outs.append(getattr(self, f'process{i}')(scaled + outs[-1]))
        return self.compression(paddle.concat(outs, axis=1)) + self.shortcut(x)


class SegHead(nn.Layer):
    """BN - ReLU - conv3x3 - BN - ReLU - conv1x1 (with bias): ``segmenthead`` upstream."""

    def __init__(self, in_channels, mid_channels, num_classes):
        super().__init__()
        self.bn1 = nn.BatchNorm2D(in_channels)
        self.conv1 = nn.Conv2D(in_channels, mid_channels, 3, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(mid_channels)
        self.conv2 = nn.Conv2D(mid_channels, num_classes, 1)

    def forward(self, x):
        x = self.conv1(F.relu(self.bn1(x)))
        return self.conv2(F.relu(self.bn2(x)))

    def reparameterize(self):
        # bn1 acts before a ReLU on the head's input and stays; bn2 follows conv1 directly.
        self.bn2 = fold_conv_bn(self.conv1, self.bn2)
