"""Building blocks of the DDRNet family: residual blocks, DAPPM and the segmentation head.

Sub-layer names and ``nn.Sequential`` indices follow the official release
(github.com/ydhongHIT/DDRNet) so that its checkpoints load by renaming BN buffers only.
Batch-norm defaults (momentum 0.9, epsilon 1e-5) are Paddle's spelling of PyTorch's
(momentum 0.1, epsilon 1e-5) used in the official training.
"""
import contextlib

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


# A mutable holder, not a plain global: Paddle's to_static converts a function once and keeps
# a snapshot of its module's globals, so a rebound global would be frozen at its first value.
_EXPORT_OPTIONS = {'gather_resize': False}


@contextlib.contextmanager
def gather_resize_for_export(enabled=True):
    """Trace :func:`resize` as gathers and multiply-adds instead of ``bilinear_interp``.

    Paddle 3.3.1's oneDNN placement fails on ``bilinear_interp`` in PIR graphs (it cannot
    convert the op's list-of-doubles ``scale`` attribute); the same resize written with
    ``index_select`` runs there and gives the same values (to float rounding). Only for
    ``export.py --resize_op gather``: the default export keeps the native op, and Paddle
    Inference runs it with oneDNN by skipping that pass (faster, see deploy/paddle_inference).
    """
    previous = _EXPORT_OPTIONS['gather_resize']
    _EXPORT_OPTIONS['gather_resize'] = enabled
    try:
        yield
    finally:
        _EXPORT_OPTIONS['gather_resize'] = previous


def _source_index(in_size, out_size):
    """Per output index along one axis: the two source indices and the weight of the second
    (align_corners=False: src = (dst + 0.5) * in / out - 0.5, clamped at 0)."""
    in_size = paddle.cast(in_size if isinstance(in_size, paddle.Tensor) else paddle.to_tensor(in_size), 'int64')
    out_size = paddle.cast(out_size if isinstance(out_size, paddle.Tensor) else paddle.to_tensor(out_size), 'int64')
    src = (paddle.arange(out_size, dtype='float32') + 0.5) * (paddle.cast(in_size, 'float32') / paddle.cast(out_size, 'float32')) - 0.5
    src = paddle.clip(src, min=0.0)
    first = paddle.floor(src)
    weight = src - first
    first = paddle.minimum(paddle.cast(first, 'int64'), in_size - 1)
    return first, paddle.minimum(first + 1, in_size - 1), weight


def _gather_resize(x, size):
    shape = paddle.shape(x)
    for axis, (in_size, out_size) in ((2, (shape[2], size[0])), (3, (shape[3], size[1]))):
        first, second, weight = _source_index(in_size, out_size)
        weight = weight.reshape([1, 1, -1, 1] if axis == 2 else [1, 1, 1, -1])
        x = paddle.index_select(x, first, axis=axis) * (1 - weight) + paddle.index_select(x, second, axis=axis) * weight
    return x


def resize(x, size):
    """Bilinear resize with ``align_corners=False``, as everywhere in the official model."""
    if _EXPORT_OPTIONS['gather_resize']:
        return _gather_resize(x, size)
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def conv_bn(in_channels, out_channels, kernel_size, stride=1, padding=None):
    """Conv (no bias) followed by BN: the compression / downsample unit."""
    return nn.Sequential(
        nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2 if padding is None else padding, bias_attr=False),
        nn.BatchNorm2D(out_channels))


def bn_relu_conv(in_channels, out_channels, kernel_size, pool=None):
    """Pre-activation unit of DAPPM: [pool] - BN - ReLU - conv."""
    layers = [] if pool is None else [pool]
    layers += [
        nn.BatchNorm2D(in_channels), nn.ReLU(),
        nn.Conv2D(in_channels, out_channels, kernel_size,
                  padding=kernel_size // 2, bias_attr=False)
    ]
    return nn.Sequential(*layers)


class BasicBlock(nn.Layer):
    """Two 3x3 convs with a residual; ``no_relu`` leaves the sum un-activated."""
    expansion = 1

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
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        out = out + shortcut
        return out if self.no_relu else F.relu(out)


class Bottleneck(nn.Layer):
    """1x1 - 3x3 - 1x1 residual block with expansion 2 (stage 5 of DDRNet).

    The official Bottleneck defaults to ``no_relu=True``, and stage 5 keeps that default.
    """
    expansion = 2

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
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        out = out + shortcut
        return out if self.no_relu else F.relu(out)


def make_stage(block, in_channels, channels, num_blocks, stride=1):
    """A sequence of residual blocks; as in the official code, the last of several
    blocks has no final ReLU (the caller applies it where the next stage needs it)."""
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = conv_bn(in_channels, out_channels, 1, stride)
    blocks = [block(in_channels, channels, stride, downsample)]
    for i in range(1, num_blocks):
        blocks.append(block(out_channels, channels, no_relu=(i == num_blocks - 1)))
    return nn.Sequential(*blocks)


class DAPPM(nn.Layer):
    """Deep Aggregation Pyramid Pooling Module.

    Five scales (identity, avg-pool k5/s2, k9/s4, k17/s8, global), each fused
    hierarchically with the previous one by a 3x3 conv, then compressed and added
    to a 1x1 shortcut. Average pooling counts the zero padding (PyTorch's default,
    ``exclusive=False`` in Paddle), which the released weights were trained with;
    PaddleSeg's DDRNet_23 excludes it (``pool_exclusive=True``).
    """

    POOLS = ((5, 2), (9, 4), (17, 8))

    def __init__(self, in_channels, branch_channels, out_channels, pool_exclusive=False):
        super().__init__()
        self.scale0 = bn_relu_conv(in_channels, branch_channels, 1)
        for i, (kernel, stride) in enumerate(self.POOLS, start=1):
            pool = nn.AvgPool2D(kernel, stride, kernel // 2, exclusive=pool_exclusive)
            setattr(self, f'scale{i}', bn_relu_conv(in_channels, branch_channels, 1, pool))
        self.scale4 = bn_relu_conv(in_channels, branch_channels, 1, nn.AdaptiveAvgPool2D(1))
        for i in range(1, 5):
            setattr(self, f'process{i}', bn_relu_conv(branch_channels, branch_channels, 3))
        self.compression = bn_relu_conv(branch_channels * 5, out_channels, 1)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        outs = [self.scale0(x)]
        for i in range(1, 5):
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
