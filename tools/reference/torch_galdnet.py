"""PyTorch re-implementation of the GALD-Net release (github.com/lxtGH/GALD-DGCNet,
``libs/models/GALDNet.py``), written here from reading it: attribute names and data flow as
the release has them, so its ``state_dict`` is what the release's training script saves.
For tests (weight-conversion parity) and benchmarks only: torch is a test-only dependency
and the product never imports this.

The release's deep-stem dilated ResNet (conv1 = 3x3/2 64, 3x3 64, 3x3 128; bn1; max-pool
3/2/1 ceil_mode; layer3 dilation 2, layer4 dilation 4 with multi-grid 1,2,4; output stride
8) is written here too (a minimal copy, so this file stands alone).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def up(x, size):
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, c, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class DeepResNet(nn.Module):
    """The release's backbone (the GALDNet/DualSeg trunk: ``conv1``, ``bn1``, ``layer1-4``)."""

    def __init__(self, layers):
        super().__init__()
        self.inplanes = 128
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.layer1 = self._make(64, layers[0])
        self.layer2 = self._make(128, layers[1], stride=2)
        self.layer3 = self._make(256, layers[2], dilation=2)
        self.layer4 = self._make(512, layers[3], dilation=4, grids=(1, 2, 4))

    def _make(self, c, n, stride=1, dilation=1, grids=None):
        ds = None
        if stride != 1 or self.inplanes != 4 * c:
            ds = nn.Sequential(nn.Conv2d(self.inplanes, 4 * c, 1, stride, bias=False), nn.BatchNorm2d(4 * c))
        blocks = []
        for i in range(n):
            grid = grids[i % len(grids)] if grids else 1
            blocks.append(Bottleneck(self.inplanes, c, stride if i == 0 else 1, dilation * grid, ds if i == 0 else None))
            self.inplanes = 4 * c
        return nn.Sequential(*blocks)

    def stem(self, x):
        return self.maxpool(F.relu(self.bn1(self.conv1(x))))


class SpatialCGNL(nn.Module):
    """Grouped spatial non-local with the dot-product kernel (no softmax, no scaling: the
    release's ``use_scale=False``): per group, one scalar ``<p, g>`` over C*H*W times ``t``;
    then a grouped 1x1 ``z``, GroupNorm, residual."""

    def __init__(self, cin, c, groups=8):
        super().__init__()
        self.groups = groups
        self.t = nn.Conv2d(cin, c, 1, bias=False)
        self.p = nn.Conv2d(cin, c, 1, bias=False)
        self.g = nn.Conv2d(cin, c, 1, bias=False)
        self.z = nn.Conv2d(c, cin, 1, groups=groups, bias=False)
        self.gn = nn.GroupNorm(groups, cin)

    def forward(self, x):
        t, p, g = self.t(x), self.p(x), self.g(x)
        b, c, h, w = t.shape
        outs = []
        for ti, pi, gi in zip(t.chunk(self.groups, 1), p.chunk(self.groups, 1), g.chunk(self.groups, 1)):
            att = torch.bmm(pi.reshape(b, 1, -1), gi.reshape(b, -1, 1))
            outs.append(torch.bmm(att, ti.reshape(b, 1, -1)).reshape(b, c // self.groups, h, w))
        return self.gn(self.z(torch.cat(outs, 1))) + x


def dw_down(c):
    return nn.Sequential(nn.Conv2d(c, c, 3, 2, groups=c), nn.BatchNorm2d(c), nn.ReLU())


class LocalAttenModule(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dconv1, self.dconv2, self.dconv3 = dw_down(c), dw_down(c), dw_down(c)

    def forward(self, x):
        mask = torch.sigmoid(up(self.dconv3(self.dconv2(self.dconv1(x))), x.shape[2:]))
        return x + x * mask


class GALDBlock(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.down = dw_down(cin)
        self.long_relation = SpatialCGNL(cin, c)
        self.local_attention = LocalAttenModule(cin)

    def forward(self, x):
        x = up(self.long_relation(self.down(x)), x.shape[2:])
        return self.local_attention(x) + x


def cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class GALDHead(nn.Module):
    def __init__(self, cin, c, num_classes):
        super().__init__()
        self.conva = cbr(cin, c)
        self.a2block = GALDBlock(c, c // 2)
        self.convb = cbr(c, c)
        self.bottleneck = nn.Sequential(*cbr(cin + c, c), nn.Conv2d(c, num_classes, 1))

    def forward(self, x):
        y = self.convb(self.a2block(self.conva(x)))
        return self.bottleneck(torch.cat([x, y], 1))


class GALDNet(DeepResNet):
    """The release's ``GALDNet``: logits at 1/8 (``[main, dsn]`` in training, ``[main]`` in
    eval); the training script and evaluation upsample them with align_corners=True."""

    def __init__(self, layers, num_classes=19):
        super().__init__(layers)
        self.head = GALDHead(2048, 512, num_classes)
        self.dsn = nn.Sequential(nn.Conv2d(1024, 512, 3, padding=1), nn.BatchNorm2d(512), nn.ReLU(),
                                 nn.Dropout2d(0.1), nn.Conv2d(512, num_classes, 1))

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        dsn = self.dsn(x) if self.training else None
        out = self.head(self.layer4(x))
        return [out, dsn] if self.training else [out]


VARIANTS = {'galdnet_r50': [3, 4, 6, 3], 'galdnet_r101': [3, 4, 23, 3]}


def randomize_norms(model, seed=1):
    """BN statistics/affine and GroupNorm affine far from identity (a missed one shows)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                n = m.weight.numel()
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)


def randomized(name, augment=True, seed=0, num_classes=19):
    """A release model with random weights and BN/GN statistics, in eval mode. The release
    always builds its ``dsn`` head; ``augment`` only matters for what the caller compares."""
    torch.manual_seed(seed)
    model = GALDNet(VARIANTS[name], num_classes)
    randomize_norms(model, seed + 1)
    return model.eval()


def count_parameters(model, aux=True):
    return sum(p.numel() for n, p in model.named_parameters() if aux or not n.startswith('dsn.'))


if __name__ == '__main__':
    for name in VARIANTS:
        m = GALDNet(VARIANTS[name])
        print(name, count_parameters(m), count_parameters(m, aux=False))
