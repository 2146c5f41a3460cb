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
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .reparameterize import bn_scale_shift, conv_bn_kernel_bias, conv_with, fold_conv_bn


def resize(x, size):
    """Bilinear resize with ``align_corners=False``, as everywhere in the official models."""
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def conv_bn(in_channels, out_channels, kernel_size, stride=1, padding=None, norm=nn.BatchNorm2D, groups=1):
    """Conv (no bias) followed by BN: the compression / downsample unit."""
    return nn.Sequential(
        nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2 if padding is None else padding, groups=groups, bias_attr=False),
        norm(out_channels))


def bn_relu_conv(in_channels, out_channels, kernel_size, pool=None, norm=nn.BatchNorm2D, groups=1):
    """Pre-activation unit of DAPPM: [pool] - BN - ReLU - conv (the BN cannot be folded)."""
    layers = [] if pool is None else [pool]
    layers += [
        norm(in_channels), nn.ReLU(),
        nn.Conv2D(in_channels, out_channels, kernel_size,
                  padding=kernel_size // 2, groups=groups, bias_attr=False)
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

    def __init__(self, in_channels, channels, stride=1, downsample=None, no_relu=False, norm=nn.BatchNorm2D):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, channels, 3, stride, 1, bias_attr=False)
        self.bn1 = norm(channels)
        self.conv2 = nn.Conv2D(channels, channels, 3, 1, 1, bias_attr=False)
        self.bn2 = norm(channels)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return self._residual(self.bn2(self.conv2(out)), x)


class Bottleneck(_ResidualBlock):
    """1x1 - 3x3 - 1x1 residual block with expansion 2 (stage 5 of DDRNet, PIDNet's).

    The official Bottleneck defaults to ``no_relu=True``, and stage 5 keeps that default.
    ``dilation`` dilates (and pads by as much) the 3x3 conv, for dilated ResNets.
    """
    expansion = 2
    FOLDABLE = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'))

    def __init__(self, in_channels, channels, stride=1, downsample=None, no_relu=True, norm=nn.BatchNorm2D,
                 dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, channels, 1, bias_attr=False)
        self.bn1 = norm(channels)
        self.conv2 = nn.Conv2D(channels, channels, 3, stride, dilation, dilation=dilation, bias_attr=False)
        self.bn2 = norm(channels)
        self.conv3 = nn.Conv2D(channels, channels * self.expansion, 1, bias_attr=False)
        self.bn3 = norm(channels * self.expansion)
        self.downsample = downsample
        self.no_relu = no_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self._residual(self.bn3(self.conv3(out)), x)


class ResNetBottleneck(Bottleneck):
    """The classic ResNet-50/101 Bottleneck: expansion 4 and a ReLU after the sum
    (``no_relu=False``), as in torchvision and the GALD-DGCNet release."""
    expansion = 4

    def __init__(self, in_channels, channels, stride=1, downsample=None, no_relu=False, norm=nn.BatchNorm2D,
                 dilation=1):
        super().__init__(in_channels, channels, stride, downsample, no_relu, norm, dilation)


def make_stage(block, in_channels, channels, num_blocks, stride=1, last_relu=False, norm=nn.BatchNorm2D,
               dilations=None):
    """A sequence of ``num_blocks`` residual blocks of type ``block``.

    As in the official DDRNet, PIDNet and mmsegmentation code the last of several blocks has
    no final ReLU (the caller applies it where the next stage needs it); ``last_relu=True``
    keeps it. The first block keeps its class default (BasicBlock: ReLU; Bottleneck: none).
    A strided or widening first block gets a 1x1 conv+BN shortcut. ``dilations`` (one per
    block, Bottleneck blocks only) dilates each block's 3x3 conv: dilated ResNets with
    multi-grid.
    """
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = conv_bn(in_channels, out_channels, 1, stride, norm=norm)
    if dilations is not None and len(dilations) != num_blocks:
        raise ValueError(f'{len(dilations)} dilations for {num_blocks} blocks')
    extra = (lambda i: {}) if dilations is None else (lambda i: {'dilation': dilations[i]})
    blocks = [block(in_channels, channels, stride, downsample, norm=norm, **extra(0))]
    for i in range(1, num_blocks):
        blocks.append(block(out_channels, channels, no_relu=(i == num_blocks - 1 and not last_relu), norm=norm,
                            **extra(i)))
    return nn.Sequential(*blocks)


class DAPPM(nn.Layer):
    """Deep Aggregation Pyramid Pooling Module (DDRNet, PIDNet-L), and its parallel form
    (PIDNet's PAPPM, RDRNet's RPPM).

    Scales: identity, one average pooling per ``pools`` entry (kernel, stride) and global
    pooling, each followed by BN-ReLU-conv1x1 and resized back. DAPPM fuses them
    hierarchically, each pooled scale with the previous output by its own BN-ReLU-conv3x3
    (``process1..``); the parallel form adds every pooled scale to the identity scale and
    processes all of them at once with one grouped layer (``processes``, made by
    ``parallel(channels, groups, norm)``). The scales are concatenated, compressed and added
    to a 1x1 shortcut. Average pooling counts the zero padding (PyTorch's default,
    ``exclusive=False`` in Paddle), which the released weights were trained with;
    PaddleSeg's DDRNet_23 excludes it (``pool_exclusive=True``).

    Args:
        in_channels (int): Input channels.
        branch_channels (int): Width of each scale.
        out_channels (int): Output channels.
        pools (tuple): (kernel, stride) of the average poolings between identity and global.
            Default: DDRNet's ((5, 2), (9, 4), (17, 8)).
        pool_exclusive (bool): Exclude the padding from the averages. Default: False.
        norm (callable): Batch-norm factory, ``norm(channels)``. Default: nn.BatchNorm2D.
        parallel (callable, optional): Factory of the parallel processing layer; None builds
            DAPPM's hierarchical one. Default: None.
    """

    def __init__(self, in_channels, branch_channels, out_channels, pools=((5, 2), (9, 4), (17, 8)),
                 pool_exclusive=False, norm=nn.BatchNorm2D, parallel=None):
        super().__init__()
        self.num_scales = len(pools) + 2
        self.parallel = parallel is not None
        self.scale0 = bn_relu_conv(in_channels, branch_channels, 1, norm=norm)
        for i, (kernel, stride) in enumerate(pools, start=1):
            pool = nn.AvgPool2D(kernel, stride, kernel // 2, exclusive=pool_exclusive)
            setattr(self, f'scale{i}', bn_relu_conv(in_channels, branch_channels, 1, pool, norm=norm))
        setattr(self, f'scale{len(pools) + 1}',
                bn_relu_conv(in_channels, branch_channels, 1, nn.AdaptiveAvgPool2D(1), norm=norm))
        if self.parallel:
            groups = self.num_scales - 1
            self.processes = parallel(branch_channels * groups, groups, norm)
        else:
            for i in range(1, self.num_scales):
                setattr(self, f'process{i}', bn_relu_conv(branch_channels, branch_channels, 3, norm=norm))
        self.compression = bn_relu_conv(branch_channels * self.num_scales, out_channels, 1, norm=norm)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1, norm=norm)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        outs = [self.scale0(x)]
        scaled = [resize(getattr(self, f'scale{i}')(x), size) for i in range(1, self.num_scales)]
        if self.parallel:
            outs.append(self.processes(paddle.concat([s + outs[0] for s in scaled], axis=1)))
        else:
            for i in range(1, self.num_scales):  # (to_static does not take enumerate(start=))
                outs.append(getattr(self, f'process{i}')(scaled[i - 1] + outs[-1]))
        return self.compression(paddle.concat(outs, axis=1)) + self.shortcut(x)


class SegHead(nn.Layer):
    """BN - ReLU - conv3x3 - BN - ReLU - conv1x1 (with bias): ``segmenthead`` of DDRNet,
    ``DDRHead``'s head + ``conv_seg`` in mmsegmentation (RDRNet)."""

    def __init__(self, in_channels, mid_channels, num_classes, norm=nn.BatchNorm2D):
        super().__init__()
        self.bn1 = norm(in_channels)
        self.conv1 = nn.Conv2D(in_channels, mid_channels, 3, padding=1, bias_attr=False)
        self.bn2 = norm(mid_channels)
        self.conv2 = nn.Conv2D(mid_channels, num_classes, 1)

    def forward(self, x):
        x = self.conv1(F.relu(self.bn1(x)))
        return self.conv2(F.relu(self.bn2(x)))

    def reparameterize(self):
        # bn1 acts before a ReLU on the head's input and stays; bn2 follows conv1 directly.
        self.bn2 = fold_conv_bn(self.conv1, self.bn2)


class RepBlock(nn.Layer):
    """Re-parameterisable block (RDRNet's RB): trains with three paths, runs as one 3x3 conv.

    Training graph: ``path_3x3`` (3x3 conv + BN) + ``path_1x1`` (1x1 conv + BN, then 1x1
    conv + BN, both convs with bias) + ``path_residual`` (a BN of the input, when input and
    output shapes match), then ReLU unless ``act=False`` (the last block of a stage). After
    :meth:`reparameterize`: ``reparam_3x3``, one 3x3 conv with bias equal to the sum (the
    1x1 path is the product of its two kernels put at the 3x3 centre, which holds with
    stride 2 too; the identity is a centred unit kernel).
    """

    def __init__(self, in_channels, out_channels, stride=1, act=True, norm=nn.BatchNorm2D):
        super().__init__()
        self.act = act
        self.path_3x3 = conv_bn(in_channels, out_channels, 3, stride, norm=norm)
        self.path_1x1 = nn.Sequential(
            nn.Conv2D(in_channels, out_channels, 1, stride=stride), norm(out_channels),
            nn.Conv2D(out_channels, out_channels, 1), norm(out_channels))
        self.path_residual = norm(in_channels) if in_channels == out_channels and stride == 1 else None

    def forward(self, x):
        if hasattr(self, 'reparam_3x3'):
            out = self.reparam_3x3(x)
        else:
            out = self.path_3x3(x) + self.path_1x1(x)
            if self.path_residual is not None:
                out = out + self.path_residual(x)
        return F.relu(out) if self.act else out

    @paddle.no_grad()
    def reparameterize(self):
        if hasattr(self, 'reparam_3x3'):
            return
        kernel, bias = conv_bn_kernel_bias(*self.path_3x3)
        k1, b1 = conv_bn_kernel_bias(self.path_1x1[0], self.path_1x1[1])
        k2, b2 = conv_bn_kernel_bias(self.path_1x1[2], self.path_1x1[3])
        k2 = k2[:, :, 0, 0]
        kernel[:, :, 1, 1] += k2 @ k1[:, :, 0, 0]
        bias = bias + k2 @ b1 + b2
        if self.path_residual is not None:
            scale, shift = bn_scale_shift(self.path_residual)
            kernel[np.arange(len(scale)), np.arange(len(scale)), 1, 1] += scale
            bias = bias + shift
        self.reparam_3x3 = conv_with(self.path_3x3[0], kernel, bias)
        for name in ('path_3x3', 'path_1x1', 'path_residual'):
            delattr(self, name)


class RepParallel(nn.Layer):
    """BN - ReLU, then two parallel grouped 3x3 conv+BN summed (RDRNet's RPPM processing);
    :meth:`reparameterize` merges them into ``reparam_parallel``, one grouped conv with bias.
    The input BN and ReLU stay."""

    def __init__(self, channels, groups, norm=nn.BatchNorm2D):
        super().__init__()
        self.norm = norm(channels)
        self.parallel1 = conv_bn(channels, channels, 3, groups=groups, norm=norm)
        self.parallel2 = conv_bn(channels, channels, 3, groups=groups, norm=norm)

    def forward(self, x):
        x = F.relu(self.norm(x))
        if hasattr(self, 'reparam_parallel'):
            return self.reparam_parallel(x)
        return self.parallel1(x) + self.parallel2(x)

    @paddle.no_grad()
    def reparameterize(self):
        if hasattr(self, 'reparam_parallel'):
            return
        (k1, b1), (k2, b2) = conv_bn_kernel_bias(*self.parallel1), conv_bn_kernel_bias(*self.parallel2)
        self.reparam_parallel = conv_with(self.parallel1[0], k1 + k2, b1 + b2)
        delattr(self, 'parallel1')
        delattr(self, 'parallel2')


def _pool_matrix(n, bins):
    """[bins, n] float32 matrix whose row i averages positions floor(i*n/bins) to
    ceil((i+1)*n/bins) - 1: adaptive average pooling along one axis, from the runtime size."""
    i = paddle.arange(bins, dtype='int64')
    start = (i * n) // bins
    end = ((i + 1) * n + bins - 1) // bins
    pos = paddle.arange(n, dtype='int64')
    inside = paddle.logical_and(pos.unsqueeze(0) >= start.unsqueeze(1), pos.unsqueeze(0) < end.unsqueeze(1))
    return inside.astype('float32') / (end - start).astype('float32').unsqueeze(1)


class AdaptiveAvgPool2DMatmul(nn.Layer):
    """``nn.AdaptiveAvgPool2D(bins)`` as ``P_h @ x @ P_w^T`` with averaging matrices built from
    the input's runtime size: the same bins, exported as matmuls that paddle2onnx converts for a
    dynamic input shape (its adaptive pooling needs a static one)."""

    def __init__(self, output_size):
        super().__init__()
        self.bins = int(output_size[0] if isinstance(output_size, (tuple, list)) else output_size)
        if isinstance(output_size, (tuple, list)) and output_size[0] != output_size[1]:
            raise ValueError(f'square bins only, got {output_size}')

    def forward(self, x):
        if self.bins == 1:
            return x.mean(axis=[2, 3], keepdim=True)
        shape = paddle.shape(x)
        rows, cols = _pool_matrix(shape[2], self.bins), _pool_matrix(shape[3], self.bins)
        return paddle.matmul(paddle.matmul(rows, x), cols, transpose_y=True)
