"""PyTorch re-implementation of the official DDRNet segmentation layout (attribute names and
data flow of github.com/ydhongHIT/DDRNet, written here from the paper and the release's
structure). For tests (weight-conversion parity) and tools/benchmark.py only: torch is an
optional, test-only dependency and the product never imports this."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def up(x, h, w):
    return F.interpolate(x, size=[h, w], mode='bilinear', align_corners=False)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, c, stride=1, downsample=None, no_relu=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = y + (x if self.downsample is None else self.downsample(x))
        return y if self.no_relu else F.relu(y)


class Bottle(nn.Module):
    expansion = 2

    def __init__(self, cin, c, stride=1, downsample=None, no_relu=True):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, 2 * c, 1, bias=False), nn.BatchNorm2d(2 * c)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y)) + (x if self.downsample is None else self.downsample(x))
        return y if self.no_relu else F.relu(y)


def make(block, cin, c, n, stride=1):
    ds = None
    if stride != 1 or cin != c * block.expansion:
        ds = nn.Sequential(nn.Conv2d(cin, c * block.expansion, 1, stride, bias=False), nn.BatchNorm2d(c * block.expansion))
    mods = [block(cin, c, stride, ds)]
    for i in range(1, n):
        mods.append(block(c * block.expansion, c, 1, no_relu=(i == n - 1)))
    return nn.Sequential(*mods)


def pre(cin, cout, k, pool=None):
    mods = ([pool] if pool is not None else []) + [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)]
    return nn.Sequential(*mods)


class DAPPM(nn.Module):
    def __init__(self, cin, cb, cout):
        super().__init__()
        self.scale1 = pre(cin, cb, 1, nn.AvgPool2d(5, 2, 2))
        self.scale2 = pre(cin, cb, 1, nn.AvgPool2d(9, 4, 4))
        self.scale3 = pre(cin, cb, 1, nn.AvgPool2d(17, 8, 8))
        self.scale4 = pre(cin, cb, 1, nn.AdaptiveAvgPool2d((1, 1)))
        self.scale0 = pre(cin, cb, 1)
        for i in range(1, 5):
            setattr(self, f'process{i}', pre(cb, cb, 3))
        self.compression = pre(cb * 5, cout, 1)
        self.shortcut = pre(cin, cout, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        xs = [self.scale0(x)]
        xs.append(self.process1(up(self.scale1(x), h, w) + xs[0]))
        xs.append(self.process2(up(self.scale2(x), h, w) + xs[1]))
        xs.append(self.process3(up(self.scale3(x), h, w) + xs[2]))
        xs.append(self.process4(up(self.scale4(x), h, w) + xs[3]))
        return self.compression(torch.cat(xs, 1)) + self.shortcut(x)


class Head(nn.Module):
    def __init__(self, cin, cmid, ncls):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cmid, 3, padding=1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cmid), nn.Conv2d(cmid, ncls, 1, bias=True)

    def forward(self, x):
        return self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))


class OfficialDDRNet(nn.Module):
    def __init__(self, layers, planes, spp_planes, head_planes, num_classes=19, augment=False):
        super().__init__()
        hp = planes * 2
        self.split = layers[2] == 6  # DDRNet-39 splits stage 3
        self.augment = augment
        self.conv1 = nn.Sequential(nn.Conv2d(3, planes, 3, 2, 1), nn.BatchNorm2d(planes), nn.ReLU(),
                                   nn.Conv2d(planes, planes, 3, 2, 1), nn.BatchNorm2d(planes), nn.ReLU())
        self.layer1 = make(Basic, planes, planes, layers[0])
        self.layer2 = make(Basic, planes, planes * 2, layers[1], 2)
        if self.split:
            self.layer3_1 = make(Basic, planes * 2, planes * 4, layers[2] // 2, 2)
            self.layer3_2 = make(Basic, planes * 4, planes * 4, layers[2] // 2)
            self.compression3_1 = nn.Sequential(nn.Conv2d(planes * 4, hp, 1, bias=False), nn.BatchNorm2d(hp))
            self.compression3_2 = nn.Sequential(nn.Conv2d(planes * 4, hp, 1, bias=False), nn.BatchNorm2d(hp))
            self.down3_1 = nn.Sequential(nn.Conv2d(hp, planes * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 4))
            self.down3_2 = nn.Sequential(nn.Conv2d(hp, planes * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 4))
            self.layer3_1_ = make(Basic, planes * 2, hp, layers[2] // 2)
            self.layer3_2_ = make(Basic, hp, hp, layers[2] // 2)
        else:
            self.layer3 = make(Basic, planes * 2, planes * 4, layers[2], 2)
            self.compression3 = nn.Sequential(nn.Conv2d(planes * 4, hp, 1, bias=False), nn.BatchNorm2d(hp))
            self.down3 = nn.Sequential(nn.Conv2d(hp, planes * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 4))
            self.layer3_ = make(Basic, planes * 2, hp, 2)
        self.layer4 = make(Basic, planes * 4, planes * 8, layers[3], 2)
        self.compression4 = nn.Sequential(nn.Conv2d(planes * 8, hp, 1, bias=False), nn.BatchNorm2d(hp))
        self.down4 = nn.Sequential(nn.Conv2d(hp, planes * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 4), nn.ReLU(),
                                   nn.Conv2d(planes * 4, planes * 8, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 8))
        self.layer4_ = make(Basic, hp, hp, layers[3] if self.split else 2)
        self.layer5_ = make(Bottle, hp, hp, 1)
        self.layer5 = make(Bottle, planes * 8, planes * 8, 1, 2)
        self.spp = DAPPM(planes * 16, spp_planes, planes * 4)
        if augment:
            self.seghead_extra = Head(hp, head_planes, num_classes)
        self.final_layer = Head(planes * 4, head_planes, num_classes)

    def forward(self, x):
        h, w = x.shape[-2] // 8, x.shape[-1] // 8
        x = self.layer1(self.conv1(x))
        x = self.layer2(F.relu(x))
        stages = [('3_1', '3_1'), ('3_2', '3_2')] if self.split else [('3', '3')]
        hi = x
        for low_name, _ in stages:
            lo_new = getattr(self, f'layer{low_name}')(F.relu(x))
            hi = getattr(self, f'layer{low_name}_')(F.relu(hi))
            x = lo_new + getattr(self, f'down{low_name}')(F.relu(hi))
            hi = hi + up(getattr(self, f'compression{low_name}')(F.relu(lo_new)), h, w)
        extra = hi
        lo_new = self.layer4(F.relu(x))
        hi = self.layer4_(F.relu(hi))
        x = lo_new + self.down4(F.relu(hi))
        hi = hi + up(self.compression4(F.relu(lo_new)), h, w)
        hi = self.layer5_(F.relu(hi))
        x = up(self.spp(self.layer5(F.relu(x))), h, w)
        out = self.final_layer(x + hi)
        return [out, self.seghead_extra(extra)] if self.augment else out


VARIANTS = {'ddrnet23_slim': ([2, 2, 2, 2], 32, 128, 64), 'ddrnet23': ([2, 2, 2, 2], 64, 128, 128),
            'ddrnet39': ([3, 4, 6, 3], 64, 128, 256)}


def randomized(name, augment, seed=0):
    """A reference model with random weights and non-trivial BN statistics, in eval mode."""
    torch.manual_seed(seed)
    model = OfficialDDRNet(*VARIANTS[name], augment=augment)
    _randomize_bn(model)
    return model.eval()


class OfficialClassifier(OfficialDDRNet):
    """The release's ImageNet network: stride-1 layer5, down5, last_layer, linear."""

    def __init__(self, layers, planes, spp_planes, head_planes, last_planes, num_classes=1000):
        super().__init__(layers, planes, spp_planes, head_planes)
        del self.spp, self.final_layer
        self.layer5 = make(Bottle, planes * 8, planes * 8, 1)
        self.down5 = nn.Sequential(nn.Conv2d(planes * 4, planes * 8, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 8), nn.ReLU(),
                                   nn.Conv2d(planes * 8, planes * 16, 3, 2, 1, bias=False), nn.BatchNorm2d(planes * 16))
        self.last_layer = nn.Sequential(nn.Conv2d(planes * 16, last_planes, 1, bias=False), nn.BatchNorm2d(last_planes),
                                        nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)))
        self.linear = nn.Linear(last_planes, num_classes)
        self.last_planes = last_planes

    def forward(self, x):
        h, w = x.shape[-2] // 8, x.shape[-1] // 8
        x = self.layer2(F.relu(self.layer1(self.conv1(x))))
        stages = ['3_1', '3_2'] if self.split else ['3']
        hi = x
        for name in stages:
            lo_new = getattr(self, f'layer{name}')(F.relu(x))
            hi = getattr(self, f'layer{name}_')(F.relu(hi))
            x = lo_new + getattr(self, f'down{name}')(F.relu(hi))
            hi = hi + up(getattr(self, f'compression{name}')(F.relu(lo_new)), h, w)
        lo_new = self.layer4(F.relu(x))
        hi = self.layer4_(F.relu(hi))
        x = lo_new + self.down4(F.relu(hi))
        hi = hi + up(self.compression4(F.relu(lo_new)), h, w)
        x = self.layer5(F.relu(x)) + self.down5(F.relu(self.layer5_(F.relu(hi))))
        return self.linear(self.last_layer(F.relu(x)).view(-1, self.last_planes))


LAST_PLANES = {'ddrnet23_slim': 1024, 'ddrnet23': 2048, 'ddrnet39': 2048}


def randomized_classifier(name, seed=0):
    torch.manual_seed(seed)
    model = OfficialClassifier(*VARIANTS[name], LAST_PLANES[name])
    _randomize_bn(model)
    return model.eval()


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
