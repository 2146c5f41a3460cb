"""PyTorch re-implementation of the GALD-DGCNet release's DGCNet ("Dual-Seg") and its dilated
deep-stem ResNet (github.com/lxtGH/GALD-DGCNet, ``libs/models/DualGCNNet.py`` and the ResNet
parts of ``libs/models/GALDNet.py``), written here from reading the release: same attribute
names (so ``state_dict()`` has the release's keys), same data flow. Logits come out at 1/8
like the release's; callers upsample with ``align_corners=True`` as its loss and eval do.
Facts relied on: tools/reference/DGCNET_FACTS.md. For tests (conversion parity) and
benchmarks only: torch is an optional, test-only dependency and the product never imports this."""
import torch
import torch.nn as nn
import torch.nn.functional as F

DEPTHS = {'dgcnet_r50': (3, 4, 6, 3), 'dgcnet_r101': (3, 4, 23, 3)}


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, c, stride=1, dilation=1, downsample=None, multi_grid=1):
        super().__init__()
        d = dilation * multi_grid
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, stride, padding=d, dilation=d, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class DeepResNet(nn.Module):
    """The release's backbone part of ``ResNet``/``GALDNet`` (conv1, bn1, maxpool, layer1-4)."""

    def __init__(self, layers):
        super().__init__()
        self.inplanes = 128
        self.conv1 = nn.Sequential(conv3x3(3, 64, 2), nn.BatchNorm2d(64), nn.ReLU(),
                                   conv3x3(64, 64), nn.BatchNorm2d(64), nn.ReLU(),
                                   conv3x3(64, 128))
        self.bn1 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], dilation=2)
        self.layer4 = self._make_layer(512, layers[3], dilation=4, multi_grid=(1, 2, 4))

    def _make_layer(self, planes, blocks, stride=1, dilation=1, multi_grid=1):
        ds = None
        if stride != 1 or self.inplanes != planes * 4:
            ds = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        grid = (lambda i: multi_grid[i % len(multi_grid)]) if isinstance(multi_grid, tuple) else (lambda i: 1)
        mods = [Bottleneck(self.inplanes, planes, stride, dilation, ds, grid(0))]
        self.inplanes = planes * 4
        for i in range(1, blocks):
            mods.append(Bottleneck(self.inplanes, planes, dilation=dilation, multi_grid=grid(i)))
        return nn.Sequential(*mods)

    def features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [l1, l2, l3, self.layer4(l3)]


class SpatialGCN(nn.Module):
    def __init__(self, plane):
        super().__init__()
        inter = plane // 2
        self.node_k = nn.Conv2d(plane, inter, 1)
        self.node_v = nn.Conv2d(plane, inter, 1)
        self.node_q = nn.Conv2d(plane, inter, 1)
        self.conv_wg = nn.Conv1d(inter, inter, 1, bias=False)
        self.bn_wg = nn.BatchNorm1d(inter)
        self.out = nn.Sequential(nn.Conv2d(inter, plane, 1), nn.BatchNorm2d(plane))

    def forward(self, x):
        k, v, q = self.node_k(x), self.node_v(x), self.node_q(x)
        b, c, h, w = k.shape
        k = k.view(b, c, -1).permute(0, 2, 1)             # b, hw, c
        q = q.view(b, c, -1)                              # b, c, hw
        v = v.view(b, c, -1).permute(0, 2, 1)             # b, hw, c
        av = torch.softmax(torch.bmm(q, v), dim=2)        # b, c, c
        av = torch.bmm(k, av).transpose(1, 2)             # b, c, hw
        avw = self.bn_wg(self.conv_wg(av)).view(b, c, h, -1)
        return F.relu(self.out(avw) + x)


class DualGCN(nn.Module):
    def __init__(self, planes, ratio=4):
        super().__init__()
        c = planes // ratio
        self.phi, self.bn_phi = nn.Conv2d(planes, 2 * c, 1, bias=False), nn.BatchNorm2d(2 * c)
        self.theta, self.bn_theta = nn.Conv2d(planes, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv_adj, self.bn_adj = nn.Conv1d(c, c, 1, bias=False), nn.BatchNorm1d(c)
        self.conv_wg, self.bn_wg = nn.Conv1d(2 * c, 2 * c, 1, bias=False), nn.BatchNorm1d(2 * c)
        self.conv3, self.bn3 = nn.Conv2d(2 * c, planes, 1, bias=False), nn.BatchNorm2d(planes)
        dw = lambda: nn.Conv2d(planes, planes, 3, 2, 1, groups=planes, bias=False)
        self.local = nn.Sequential(dw(), nn.BatchNorm2d(planes), dw(), nn.BatchNorm2d(planes),
                                   dw(), nn.BatchNorm2d(planes))
        self.gcn_local_attention = SpatialGCN(planes)
        self.final = nn.Sequential(nn.Conv2d(2 * planes, planes, 1, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        local = self.gcn_local_attention(self.local(x))
        local = F.interpolate(local, size=x.shape[2:], mode='bilinear', align_corners=True)
        spatial = x * local + x
        n, _, h, w = x.shape
        xs = self.bn_phi(self.phi(x)).view(n, -1, h * w)        # n, 2c, hw
        b = self.bn_theta(self.theta(x)).view(n, -1, h * w)     # n, c, hw
        z_idt = torch.matmul(xs, b.transpose(1, 2))             # n, 2c, c
        z = self.bn_adj(self.conv_adj(z_idt.transpose(1, 2).contiguous()))  # n, c, 2c
        z = z.transpose(1, 2).contiguous() + z_idt
        z = self.bn_wg(self.conv_wg(z))
        y = torch.matmul(z, b).view(n, -1, h, w)
        g = F.relu(x + self.bn3(self.conv3(y)))
        return self.final(torch.cat((spatial, g), 1))


class DualGCNHead(nn.Module):
    def __init__(self, inplanes, interplanes, num_classes):
        super().__init__()
        self.conva = nn.Sequential(nn.Conv2d(inplanes, interplanes, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(interplanes), nn.ReLU())
        self.dualgcn = DualGCN(interplanes)
        self.convb = nn.Sequential(nn.Conv2d(interplanes, interplanes, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(interplanes), nn.ReLU())
        self.bottleneck = nn.Sequential(
            nn.Conv2d(inplanes + interplanes, interplanes, 3, padding=1, bias=False),
            nn.BatchNorm2d(interplanes), nn.ReLU(), nn.Conv2d(interplanes, num_classes, 1))

    def forward(self, x):
        out = self.convb(self.dualgcn(self.conva(x)))
        return self.bottleneck(torch.cat([x, out], 1))


class DualSeg(DeepResNet):
    """``DualSeg_res50`` / ``DualSeg_res101`` of the release: [main] in eval, [main, dsn] in
    training when ``dsn``; logits at the backbone's 1/8 size."""

    def __init__(self, layers, num_classes=19, dsn=True):
        super().__init__(layers)
        self.head = DualGCNHead(2048, 512, num_classes)
        if dsn:  # conv 1024->512 WITH bias, BN, no ReLU, Dropout2d(0.1), 1x1
            self.dsn = nn.Sequential(nn.Conv2d(1024, 512, 3, 1, 1), nn.BatchNorm2d(512), nn.Dropout2d(0.1),
                                     nn.Conv2d(512, num_classes, 1))

    def forward(self, x):
        _, _, l3, l4 = self.features(x)
        out = [self.head(l4)]
        if self.training and hasattr(self, 'dsn'):
            out.append(self.dsn(l3))
        return out


class DeepResNetImageNet(DeepResNet):
    """The ImageNet network whose weights are ``resnet*-deep.pth``: backbone + global pooling + ``fc``.
    (Only its keys matter for conversion; the release ships no ImageNet model code.)"""

    def __init__(self, layers, num_classes=1000):
        super().__init__(layers)
        self.fc = nn.Linear(2048, num_classes)


def _randomize(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


def randomized(name, augment, seed=0, num_classes=19):
    """The release's DGCNet ``name`` ('dgcnet_r50' / 'dgcnet_r101') with random weights and
    non-trivial BN statistics, in eval mode; ``augment`` builds the auxiliary ``dsn`` head."""
    torch.manual_seed(seed)
    return _randomize(DualSeg(DEPTHS[name], num_classes, dsn=augment))


def randomized_imagenet(name, seed=0):
    """An ImageNet deep ResNet of the depth of ``name`` with random weights (keys of ``resnet*-deep.pth``)."""
    torch.manual_seed(seed)
    return _randomize(DeepResNetImageNet(DEPTHS[name]))


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def conv_macs(model, shape):
    """Multiply-accumulates of the 2D convolutions of one forward at ``shape`` (the convention of
    paddleseg_ddr/models/complexity.py). Works on the meta device: shapes only, no arithmetic."""
    macs = []

    def hook(m, inputs, output):
        macs.append(output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1])

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return sum(macs)
