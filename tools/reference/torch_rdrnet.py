"""PyTorch re-implementation of the RDRNet release (Yang, Wang, Shi, arXiv 2406.12496; the
mmsegmentation fork github.com/gyyang23/RDRNet: backbone ``RDRNet``, ``RPPM``/``RepParallel``,
``DDRHead`` under ``EncoderDecoder``), written here from the release's structure. Module and
parameter names follow the release exactly, so ``model.state_dict()`` has the keys of its
mmengine checkpoints (``backbone.*``, ``decode_head.*``), in the training graph and, after
``switch_to_deploy``, in the deployed graph (``...reparam_3x3.*``, ``spp.processes.reparam_parallel.*``).

Checked once against the release's own modules (run on mmcv-lite 2.2.0 + mmengine 0.10.7):
same state_dict keys in the same order, bit-identical eval logits, equal training-mode outputs and
BN statistics, same fused tensors (see RDRNET_FACTS.md).

For tests (weight-conversion and re-parameterisation parity) and tools/benchmark.py only:
torch is an optional, test-only dependency and the product never imports this.

Outputs are the head's logits before EncoderDecoder's final resize, at
ceil(H/8) x ceil(W/8): in training mode ``(main, aux)`` (aux only when ``augment``), in eval
mode ``main``. The release's EncoderDecoder then resizes bilinearly (align_corners=False) to
the input size (``predict``) or to the label size (``loss``, both logits).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BACKBONE_BN = dict(momentum=0.03, eps=1e-3)  # RDRNet(norm_cfg=...) default and every config
HEAD_BN = dict()  # DDRHead: norm_cfg=dict(type='BN', requires_grad=True) -> momentum 0.1, eps 1e-5

# name: (channels, num_blocks_per_stage, head channels); ppm_channels is 128 for all four
VARIANTS = {
    'rdrnet_s_simple': (32, [4, 3, [5, 4], [5, 4], [1, 1]], 64),
    'rdrnet_s': (32, [4, 3, [5, 4], [5, 4], [1, 1]], 128),
    'rdrnet_m': (64, [4, 3, [5, 4], [5, 4], [1, 1]], 128),
    'rdrnet_l': (64, [6, 5, [7, 6], [7, 6], [2, 2]], 256),
}
PPM_CHANNELS = 128


def up(x, size):
    return F.interpolate(x, size=list(size), mode='bilinear', align_corners=False)


class ConvModule(nn.Module):
    """The part of mmcv's ConvModule the release uses: attributes ``conv`` and ``bn``; order
    conv -> bn -> act, or (``norm_first``, the release's order=('norm', 'act', 'conv')) bn over
    the INPUT channels -> act -> conv. ``bias='auto'`` means a conv bias only without a norm."""

    def __init__(self, cin, cout, k, stride=1, padding=0, groups=1, bias='auto', bn=BACKBONE_BN, act=False,
                 norm_first=False):
        super().__init__()
        if bias == 'auto':
            bias = bn is None
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=bias)
        if bn is not None:
            self.bn = nn.BatchNorm2d(cin if norm_first else cout, **bn)
        self.act, self.norm_first = act, norm_first

    def forward(self, x):
        if self.norm_first:
            x = self.bn(x) if hasattr(self, 'bn') else x
            return self.conv(F.relu(x) if self.act else x)
        x = self.conv(x)
        x = self.bn(x) if hasattr(self, 'bn') else x
        return F.relu(x) if self.act else x


def fold(conv_module):
    """(kernel, bias) of conv (+ its bias) followed by eval-mode BN."""
    conv, bn = conv_module.conv, conv_module.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * scale.reshape(-1, 1, 1, 1), bn.bias + (bias - bn.running_mean) * scale


class Block1x1(nn.Module):
    """RB's 1x1 path: two stacked 1x1 conv+BN, both convs WITH bias, no activation; the
    stride sits on ``conv1``, padding 0."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = ConvModule(cin, cout, 1, stride, 0, bias=True)
        self.conv2 = ConvModule(cout, cout, 1, 1, 0, bias=True)

    def forward(self, x):
        return self.conv2(self.conv1(x))

    def fused(self):
        """One 1x1 kernel (cout, cin, 1, 1) and bias: W = W2 @ W1, b = W2 @ b1 + b2."""
        k1, b1 = fold(self.conv1)
        k2, b2 = fold(self.conv2)
        w1, w2 = k1[:, :, 0, 0], k2[:, :, 0, 0]
        return (w2 @ w1)[:, :, None, None], w2 @ b1 + b2


class RB(nn.Module):
    """Reparameterizable Block: relu(BN(conv3x3(x)) + Block1x1(x) + BN(x)); the identity BN
    (``path_residual``) only when cin == cout and stride 1, ReLU unless ``act=False``.
    Deployed: relu(reparam_3x3(x)), a 3x3 conv with bias, same stride, padding 1."""

    def __init__(self, cin, cout, stride=1, act=True, deploy=False):
        super().__init__()
        self.in_channels, self.out_channels, self.stride, self.act = cin, cout, stride, act
        if deploy:
            self.reparam_3x3 = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)
        else:
            self.path_residual = nn.BatchNorm2d(cin, **BACKBONE_BN) if cin == cout and stride == 1 else None
            self.path_3x3 = ConvModule(cin, cout, 3, stride, 1, bias=False)
            self.path_1x1 = Block1x1(cin, cout, stride)

    def forward(self, x):
        if hasattr(self, 'reparam_3x3'):
            y = self.reparam_3x3(x)
        else:
            y = self.path_3x3(x) + self.path_1x1(x)
            if self.path_residual is not None:
                y = y + self.path_residual(x)
        return F.relu(y) if self.act else y

    @torch.no_grad()
    def switch_to_deploy(self):
        if hasattr(self, 'reparam_3x3'):
            return
        kernel, bias = fold(self.path_3x3)
        k1, b1 = self.path_1x1.fused()
        kernel = kernel + F.pad(k1, [1, 1, 1, 1])
        bias = bias + b1
        bn = self.path_residual
        if bn is not None:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            identity = torch.zeros_like(kernel)
            identity[torch.arange(self.in_channels), torch.arange(self.in_channels), 1, 1] = scale
            kernel, bias = kernel + identity, bias + bn.bias - bn.running_mean * scale
        self.reparam_3x3 = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True,
                                     dtype=kernel.dtype, device=kernel.device)
        self.reparam_3x3.weight.copy_(kernel)
        self.reparam_3x3.bias.copy_(bias)
        del self.path_residual, self.path_3x3, self.path_1x1


class Bottleneck(nn.Module):
    """mmseg's Bottleneck (expansion 2): 1x1+BN+ReLU, 3x3(stride)+BN+ReLU, 1x1+BN, + shortcut;
    NO output ReLU (act_cfg_out=None on every block the release builds)."""
    expansion = 2

    def __init__(self, cin, c, stride=1, downsample=None):
        super().__init__()
        self.conv1 = ConvModule(cin, c, 1, act=True)
        self.conv2 = ConvModule(c, c, 3, stride, 1, act=True)
        self.conv3 = ConvModule(c, c * 2, 1)
        self.downsample = downsample

    def forward(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        return y + (x if self.downsample is None else self.downsample(x))


def make_bottlenecks(cin, c, n, stride=1):
    ds = None
    if stride != 1 or cin != c * 2:
        ds = nn.Sequential(nn.Conv2d(cin, c * 2, 1, stride, bias=False), nn.BatchNorm2d(c * 2, **BACKBONE_BN))
    return nn.Sequential(Bottleneck(cin, c, stride, ds), *[Bottleneck(c * 2, c) for _ in range(1, n)])


class RepParallel(nn.Module):
    """relu(BN(x)) (kept when deployed), then two parallel grouped 3x3 conv+BN summed;
    deployed: one grouped 3x3 conv with bias (``reparam_parallel``)."""

    def __init__(self, cin, cout, groups, deploy=False):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin, **BACKBONE_BN)
        self.cin, self.cout, self.groups = cin, cout, groups
        if deploy:
            self.reparam_parallel = nn.Conv2d(cin, cout, 3, 1, 1, groups=groups, bias=True)
        else:
            self.parallel1 = ConvModule(cin, cout, 3, 1, 1, groups=groups, bias=False)
            self.parallel2 = ConvModule(cin, cout, 3, 1, 1, groups=groups, bias=False)

    def forward(self, x):
        x = F.relu(self.norm(x))
        if hasattr(self, 'reparam_parallel'):
            return self.reparam_parallel(x)
        return self.parallel1(x) + self.parallel2(x)

    @torch.no_grad()
    def switch_to_deploy(self):
        if hasattr(self, 'reparam_parallel'):
            return
        (k1, b1), (k2, b2) = fold(self.parallel1), fold(self.parallel2)
        self.reparam_parallel = nn.Conv2d(self.cin, self.cout, 3, 1, 1, groups=self.groups, bias=True,
                                          dtype=k1.dtype, device=k1.device)
        self.reparam_parallel.weight.copy_(k1 + k2)
        self.reparam_parallel.bias.copy_(b1 + b2)
        del self.parallel1, self.parallel2


class RPPM(nn.Module):
    """DAPPM's scales (BN->ReLU->1x1 conv, pooled by AvgPool 5/2/2, 9/4/4, 17/8/8 counting the
    padding, and global), each pooled scale upsampled and added to scale 0, the four sums
    concatenated into RepParallel (groups 4), then compression(cat[scale0, that]) + shortcut."""

    def __init__(self, cin, cb, cout, deploy=False):
        super().__init__()

        def pre(ci, co):
            return ConvModule(ci, co, 1, bias=False, act=True, norm_first=True)

        self.scales = nn.ModuleList(
            [pre(cin, cb)]
            + [nn.Sequential(nn.AvgPool2d(k, s, p), pre(cin, cb)) for k, s, p in ((5, 2, 2), (9, 4, 4), (17, 8, 8))]
            + [nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), pre(cin, cb))])
        self.processes = RepParallel(cb * 4, cb * 4, 4, deploy)
        self.compression = pre(cb * 5, cout)
        self.shortcut = pre(cin, cout)

    def forward(self, x):
        x0 = self.scales[0](x)
        feats = [up(self.scales[i](x), x.shape[2:]) + x0 for i in range(1, 5)]
        return self.compression(torch.cat([x0, self.processes(torch.cat(feats, 1))], 1)) + self.shortcut(x)


class RDRNet(nn.Module):
    def __init__(self, channels, blocks, ppm_channels=PPM_CHANNELS, in_channels=3, deploy=False):
        super().__init__()
        c = channels

        def rbs(cin, cout, n, act=True):
            return [RB(cin, cout, 1, act, deploy) for _ in range(n)]

        self.stem = nn.Sequential(
            RB(in_channels, c, 2, deploy=deploy),
            RB(c, c, 2, deploy=deploy), *rbs(c, c, blocks[0]),
            RB(c, c * 2, 2, deploy=deploy), *rbs(c * 2, c * 2, blocks[1]))
        self.semantic_branch_layers = nn.ModuleList([
            nn.Sequential(RB(c * 2, c * 4, 2, deploy=deploy), *rbs(c * 4, c * 4, blocks[2][0] - 1),
                          *rbs(c * 4, c * 4, 1, act=False)),
            nn.Sequential(RB(c * 4, c * 8, 2, deploy=deploy), *rbs(c * 8, c * 8, blocks[3][0] - 1),
                          *rbs(c * 8, c * 8, 1, act=False)),
            nn.Sequential(make_bottlenecks(c * 8, c * 8, blocks[4][0], 2)),  # note: Sequential in a Sequential
        ])
        self.compression_1 = ConvModule(c * 4, c * 2, 1)
        self.down_1 = ConvModule(c * 2, c * 4, 3, 2, 1)
        self.compression_2 = ConvModule(c * 8, c * 2, 1)
        self.down_2 = nn.Sequential(ConvModule(c * 2, c * 4, 3, 2, 1, act=True), ConvModule(c * 4, c * 8, 3, 2, 1))
        self.detail_branch_layers = nn.ModuleList([
            nn.Sequential(*rbs(c * 2, c * 2, blocks[2][1] - 1), *rbs(c * 2, c * 2, 1, act=False)),
            nn.Sequential(*rbs(c * 2, c * 2, blocks[3][1] - 1), *rbs(c * 2, c * 2, 1, act=False)),
            make_bottlenecks(c * 2, c * 2, blocks[4][1]),
        ])
        self.spp = RPPM(c * 16, ppm_channels, c * 4, deploy)

    def forward(self, x):
        size = (math.ceil(x.shape[-2] / 8), math.ceil(x.shape[-1] / 8))
        x = self.stem(x)
        # stage 4
        s = self.semantic_branch_layers[0](x)
        d = self.detail_branch_layers[0](x)
        comp = self.compression_1(F.relu(s))
        s = s + self.down_1(F.relu(d))
        d = d + up(comp, size)
        context = d  # the aux head's input (training only)
        # stage 5
        s = self.semantic_branch_layers[1](F.relu(s))
        d = self.detail_branch_layers[1](F.relu(d))
        comp = self.compression_2(F.relu(s))
        s = s + self.down_2(F.relu(d))
        d = d + up(comp, size)
        # stage 6
        d = self.detail_branch_layers[2](F.relu(d))
        s = up(self.spp(self.semantic_branch_layers[2](F.relu(s))), size)
        return (context, d + s) if self.training else d + s


def base_head(cin, c):
    """DDRHead._make_base_head: [BN(cin)->ReLU->3x3 conv (no bias)], BN(c), ReLU."""
    return nn.Sequential(ConvModule(cin, c, 3, 1, 1, bn=HEAD_BN, act=True, norm_first=True),
                         nn.BatchNorm2d(c, **HEAD_BN), nn.ReLU())


class DDRHead(nn.Module):
    def __init__(self, cin, c, num_classes=19, augment=True):
        super().__init__()
        self.conv_seg = nn.Conv2d(c, num_classes, 1)  # BaseDecodeHead's classifier (dropout_ratio=0: none)
        self.head = base_head(cin, c)
        self.augment = augment
        if augment:
            self.aux_head = base_head(cin // 2, c)
            self.aux_cls_seg = nn.Conv2d(c, num_classes, 1)

    def forward(self, inputs):
        if self.training:
            context, x = inputs
            main = self.conv_seg(self.head(x))
            return (main, self.aux_cls_seg(self.aux_head(context))) if self.augment else main
        return self.conv_seg(self.head(inputs))


class RDRNetSeg(nn.Module):
    """EncoderDecoder(backbone=RDRNet, decode_head=DDRHead) up to the head's logits."""

    def __init__(self, channels, blocks, head_channels, num_classes=19, augment=True, deploy=False):
        super().__init__()
        self.backbone = RDRNet(channels, blocks, deploy=deploy)
        self.decode_head = DDRHead(channels * 4, head_channels, num_classes, augment)

    def forward(self, x):
        return self.decode_head(self.backbone(x))


def build(name, augment=True, num_classes=19, deploy=False):
    """The release's model for variant ``name`` (keys of VARIANTS), as constructed (training
    graph unless ``deploy``, the release's ``deploy=True`` construction), torch default init."""
    channels, blocks, head = VARIANTS[name]
    return RDRNetSeg(channels, blocks, head, num_classes, augment, deploy)


def randomized(name, augment=True, seed=0, deploy=False):
    """A reference model with random weights, random conv biases and non-trivial BN
    statistics/affine terms, in eval mode; ``deploy`` re-parameterises it afterwards (same
    function, fused graph)."""
    torch.manual_seed(seed)
    model = build(name, augment)
    _randomize_bn(model)
    if deploy:
        switch_to_deploy(model)
    return model.eval()


def switch_to_deploy(model):
    """The release's re-parameterisation, in place (``runner.model.backbone.switch_to_deploy()``):
    every RB becomes one 3x3 conv with bias, RPPM's parallel pair one grouped conv. The
    BatchNorms' running statistics are used, so do this in eval state. Returns ``model``."""
    for m in list(model.modules()):
        if isinstance(m, (RB, RepParallel)):
            m.switch_to_deploy()
    return model


def _randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def count_macs(model, input_shape=(1, 3, 1024, 2048)):
    """Convolution multiply-accumulates of one eval forward (output elements x input channels
    per group x kernel area), as paddleseg_ddr.models.complexity.count_macs counts them.
    Runs on the 'meta' device (shapes only, no arithmetic)."""
    import copy
    meta = copy.deepcopy(model).to('meta').eval()
    macs = []

    def hook(m, inputs, output):
        macs.append(output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1])

    for m in meta.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        meta(torch.zeros(input_shape, device='meta'))
    return sum(macs)
