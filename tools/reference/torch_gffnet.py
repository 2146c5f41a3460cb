"""PyTorch reference of GFF-Net on ResNet-101 (Li et al., "Gated Fully Fusion for Semantic
Segmentation", AAAI 2020). For tests (weight-conversion parity) and benchmarks only.

The authors released only a WideResNet-38 version (github.com/lxtGH/DecoupleSegNets,
``network/gffnets.py``, ``WiderResNetGFFDFPHead``). The GFF + DFP head here is written from
reading that file: the same three inputs (a stride-4 level, a stride-8 level, the context),
the same layers (``d_in1-3`` 1x1 conv+BN+ReLU to 128, ``gate1-3`` 1x1 conv+sigmoid on the raw
inputs, ``dense_3/6/9`` BN-ReLU-1x1-BN-ReLU-3x3 blocks dilated 3/6/9, ``cls``), the same order of
updates (each level fused with the already-updated lower levels) and align_corners=True
resizes. What follows the paper instead of that code (no ResNet-101 code exists):

- the backbone: the dilated ResNet-101 (output stride 8; here the GALD-DGCNet release's
  deep-stem one, the same trunk as :mod:`torch_galdnet`); its layer1 (256 ch, 1/4) and layer3
  (1024 ch, 1/8) take the places of WideResNet's mod2 (128 ch, 1/4) and mod5 (1024 ch, 1/8);
- the context on top: PSPNet's pyramid pooling module (paper Fig. 3: "ResNet with PPM on the
  top"; bins 1, 2, 3, 6, 1x1 conv to 512 + BN + ReLU each, concatenated with layer4, 3x3 conv
  to 256 + BN + ReLU) in place of the release's ASPP + ``bot_aspp``;
- an auxiliary head on layer3 for training (PSPNet's deep supervision, the GALD-DGCNet
  release's ``dsn``: 3x3 1024->512 with bias, BN, ReLU, Dropout 0.1, 1x1), loss weight 0.4.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_galdnet import DeepResNet, randomize_norms


def up(x, size):
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


def conv_bn_relu(cin, cout, k=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def conv_sigmoid(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.Sigmoid())


class DenseBlock(nn.Sequential):
    def __init__(self, cin, c1, c2, dilation):
        super().__init__()
        self.add_module('norm1', nn.BatchNorm2d(cin))
        self.add_module('relu1', nn.ReLU())
        self.add_module('conv1', nn.Conv2d(cin, c1, 1))
        self.add_module('norm2', nn.BatchNorm2d(c1))
        self.add_module('relu2', nn.ReLU())
        self.add_module('conv2', nn.Conv2d(c1, c2, 3, dilation=dilation, padding=dilation))


class PPM(nn.Module):
    def __init__(self, cin, c=512, out=256, bins=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), *conv_bn_relu(cin, c)) for b in bins)
        self.bottleneck = conv_bn_relu(cin + len(bins) * c, out, 3)

    def forward(self, x):
        size = x.shape[2:]
        return self.bottleneck(torch.cat([x] + [up(s(x), size) for s in self.stages], 1))


class GFFDFPHead(nn.Module):
    def __init__(self, channels, num_classes, c=128):
        super().__init__()
        low, mid, ctx = channels
        self.d_in1, self.d_in2, self.d_in3 = conv_bn_relu(low, c), conv_bn_relu(mid, c), conv_bn_relu(ctx, c)
        self.gate1, self.gate2, self.gate3 = conv_sigmoid(low, c), conv_sigmoid(mid, c), conv_sigmoid(ctx, c)
        self.dense_3 = DenseBlock(c, c, c, 3)
        self.dense_6 = DenseBlock(2 * c, c, c, 6)
        self.dense_9 = DenseBlock(3 * c, c, c, 9)
        self.cls = nn.Sequential(nn.Conv2d(4 * c, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
                                 nn.Conv2d(256, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
                                 nn.Conv2d(256, num_classes, 1, bias=False))

    def forward(self, low, mid, ctx):
        s_low, s_mid, s_ctx = low.shape[2:], mid.shape[2:], ctx.shape[2:]
        g1, g2, g3 = self.gate1(low), self.gate2(mid), self.gate3(ctx)
        low, mid, ctx = self.d_in1(low), self.d_in2(mid), self.d_in3(ctx)
        low = low + g1 * low + (1 - g1) * (up(g2 * mid, s_low) + up(g3 * ctx, s_low))
        mid = mid + g2 * mid + (1 - g2) * (up(g1 * low, s_mid) + up(g3 * ctx, s_mid))
        ctx_f = ctx + ctx * g3 + (1 - g3) * (up(g2 * mid, s_ctx) + up(g1 * low, s_ctx))
        ctx_f, ctx, mid = up(ctx_f, s_low), up(ctx, s_low), up(mid, s_low)
        a = self.dense_3(ctx_f)
        b = self.dense_6(torch.cat([a, mid], 1))
        c = self.dense_9(torch.cat([a, b, low], 1))
        return self.cls(torch.cat([a, ctx, b, c], 1))


class GFFNet(DeepResNet):
    """Logits at 1/4 (``[main, dsn]`` in training, dsn at 1/8; ``[main]`` in eval)."""

    def __init__(self, layers, num_classes=19):
        super().__init__(layers)
        self.ppm = PPM(2048)
        self.gff_head = GFFDFPHead((256, 1024, 256), num_classes)
        self.dsn = nn.Sequential(nn.Conv2d(1024, 512, 3, padding=1), nn.BatchNorm2d(512), nn.ReLU(),
                                 nn.Dropout2d(0.1), nn.Conv2d(512, num_classes, 1))

    def forward(self, x):
        l1 = self.layer1(self.stem(x))
        l3 = self.layer3(self.layer2(l1))
        out = self.gff_head(l1, l3, self.ppm(self.layer4(l3)))
        return [out, self.dsn(l3)] if self.training else [out]


VARIANTS = {'gffnet_r101': [3, 4, 23, 3]}


def randomized(name, augment=True, seed=0, num_classes=19):
    """A model with random weights and BN statistics, in eval mode (``augment``: the dsn head
    is always built, as in the GALD-DGCNet release; it only matters for what is compared)."""
    torch.manual_seed(seed)
    model = GFFNet(VARIANTS[name], num_classes)
    randomize_norms(model, seed + 1)
    return model.eval()


def count_parameters(model, aux=True):
    return sum(p.numel() for n, p in model.named_parameters() if aux or not n.startswith('dsn.'))


if __name__ == '__main__':
    for name in VARIANTS:
        m = GFFNet(VARIANTS[name])
        print(name, count_parameters(m), count_parameters(m, aux=False))
