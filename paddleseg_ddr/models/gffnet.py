"""GFF-Net: Gated Fully Fusion for semantic segmentation (Li et al., AAAI 2020, arXiv:1904.01803)
on the dilated deep-stem ResNet-101.

Data flow (sizes relative to the input):

    backbone -> layer1 (256, 1/4) ----------------------------\
             -> layer3 (1024, 1/8) ---------------------------+-> GFF -> DFP -> cls (1/4)
             -> layer4 (2048, 1/8) -> PPM (bins 1,2,3,6) (256) /
    training only: dsn on layer3 (1024 -> 3x3 conv with bias, BN, ReLU, Dropout 0.1, 1x1)

GFF (gated fully fusion): each level i is reduced to 128 channels (``d_in``), gated by its
own sigmoid gate G_i (1x1 conv on the raw level) and enriched by the others through theirs:
``X_i + G_i * X_i + (1 - G_i) * sum_{j != i} up(G_j * X_j)``. DFP (dense feature pyramid):
densely connected BN-ReLU-1x1-BN-ReLU-3x3 blocks (dilations 3, 6, 9) from the context down,
their outputs and the reduced context concatenated, then two 3x3 conv+BN+ReLU and a 1x1
classifier. All resizes bilinear with ``align_corners=True``; logits upsampled to the input.

Sources. The authors released only a WideResNet-38 GFF-Net (github.com/lxtGH/DecoupleSegNets,
``network/gffnets.py``): the GFF and DFP layers, their widths, the order of the updates (each
level is fused with the lower levels already updated, as that code does, not simultaneously
as the paper's equation reads) and the classifier follow that code. Where that code's backbone
makes it inapplicable, the ResNet-101 variant follows the paper: the dilated ResNet-101 with
PSPNet's pyramid pooling on top (paper Fig. 3) instead of WideResNet-38 + ASPP; its layer1 and
layer3 take the places of WideResNet's mod2 (1/4) and mod5 (1/8). The auxiliary head on layer3
(loss weight 0.4) is PSPNet's deep supervision, as the GALD-DGCNet release trains. Checkpoints
in the layout of ``tools/reference/torch_gffnet.py`` convert by renaming
(:mod:`.gffnet_checkpoints`). Facts: tools/reference/GALD_GFF_FACTS.md.
"""
import paddle
import paddle.nn as nn
from paddleseg.cvlibs import manager

from ..utils.weights import load_pretrained
from .gffnet_checkpoints import convert
from .blocks import AdaptiveAvgPool2DMatmul
from .resnet_deep import DeepStemResNet
from .resnet_deep import up_align_corners as _up
from .variants import Variant, register_variant


def _conv_bn_relu(in_channels, out_channels, kernel_size=1):
    return nn.Sequential(nn.Conv2D(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias_attr=False),
                         nn.BatchNorm2D(out_channels), nn.ReLU())


def _gate(in_channels, channels):
    return nn.Sequential(nn.Conv2D(in_channels, channels, 1), nn.Sigmoid())


class DenseBlock(nn.Sequential):
    """BN-ReLU-1x1 conv-BN-ReLU-3x3 dilated conv (convs with bias), as the release's."""

    def __init__(self, in_channels, mid_channels, out_channels, dilation):
        super().__init__(('norm1', nn.BatchNorm2D(in_channels)), ('relu1', nn.ReLU()),
                         ('conv1', nn.Conv2D(in_channels, mid_channels, 1)),
                         ('norm2', nn.BatchNorm2D(mid_channels)), ('relu2', nn.ReLU()),
                         ('conv2', nn.Conv2D(mid_channels, out_channels, 3, padding=dilation, dilation=dilation)))


class PPM(nn.Layer):
    """PSPNet's pyramid pooling: per bin, adaptive average pooling (exportable form, see
    :class:`.blocks.AdaptiveAvgPool2DMatmul`), 1x1 conv+BN+ReLU, up-sampling; the
    input and all scales concatenated, then a 3x3 conv+BN+ReLU."""

    def __init__(self, in_channels, channels=512, out_channels=256, bins=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.LayerList([nn.Sequential(AdaptiveAvgPool2DMatmul(b), *_conv_bn_relu(in_channels, channels))
                                    for b in bins])
        self.bottleneck = _conv_bn_relu(in_channels + len(bins) * channels, out_channels, 3)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        return self.bottleneck(paddle.concat([x] + [_up(stage(x), size) for stage in self.stages], axis=1))


class GFFDFPHead(nn.Layer):
    """Gated fully fusion of three levels (low 1/4, middle 1/8, context), then the dense
    feature pyramid and the classifier; logits at the low level's size."""

    def __init__(self, in_channels, num_classes, channels=128):
        super().__init__()
        low, mid, ctx = in_channels
        c = channels
        self.d_in1, self.d_in2, self.d_in3 = _conv_bn_relu(low, c), _conv_bn_relu(mid, c), _conv_bn_relu(ctx, c)
        self.gate1, self.gate2, self.gate3 = _gate(low, c), _gate(mid, c), _gate(ctx, c)
        self.dense_3 = DenseBlock(c, c, c, 3)
        self.dense_6 = DenseBlock(2 * c, c, c, 6)
        self.dense_9 = DenseBlock(3 * c, c, c, 9)
        self.cls = nn.Sequential(nn.Conv2D(4 * c, 256, 3, padding=1, bias_attr=False), nn.BatchNorm2D(256), nn.ReLU(),
                                 nn.Conv2D(256, 256, 3, padding=1, bias_attr=False), nn.BatchNorm2D(256), nn.ReLU(),
                                 nn.Conv2D(256, num_classes, 1, bias_attr=False))

    def forward(self, low, mid, ctx):
        s_low, s_mid, s_ctx = paddle.shape(low)[2:], paddle.shape(mid)[2:], paddle.shape(ctx)[2:]
        g1, g2, g3 = self.gate1(low), self.gate2(mid), self.gate3(ctx)
        low, mid, ctx = self.d_in1(low), self.d_in2(mid), self.d_in3(ctx)
        # GFF, in the release's order: each level sees the levels updated before it
        low = low + g1 * low + (1 - g1) * (_up(g2 * mid, s_low) + _up(g3 * ctx, s_low))
        mid = mid + g2 * mid + (1 - g2) * (_up(g1 * low, s_mid) + _up(g3 * ctx, s_mid))
        ctx_f = ctx + ctx * g3 + (1 - g3) * (_up(g2 * mid, s_ctx) + _up(g1 * low, s_ctx))
        ctx_f, ctx, mid = _up(ctx_f, s_low), _up(ctx, s_low), _up(mid, s_low)
        # DFP: dense connections from the context down
        a = self.dense_3(ctx_f)
        b = self.dense_6(paddle.concat([a, mid], axis=1))
        c = self.dense_9(paddle.concat([a, b, low], axis=1))
        return self.cls(paddle.concat([a, ctx, b, c], axis=1))


class GFFNet(nn.Layer):
    """The GFF-Net segmentation network.

    Loaders read ``TRAIN_ONLY_PREFIXES`` (the auxiliary ``dsn`` head a deployed checkpoint
    may lack) and ``CLASSIFIER_PREFIXES`` (layers whose shape follows ``num_classes``).

    Args:
        num_classes (int): Number of output classes.
        backbone (nn.Layer, optional): A backbone returning [layer1..layer4] with
            ``feat_channels``. Default: None builds a DeepStemResNet of ``depth``.
        depth (int, optional): 50 or 101, when ``backbone`` is None. Default: 101 (the paper's).
        aux_head (bool, optional): Build ``dsn`` on layer3 (logits returned in training only).
            Default: True.
        in_channels (int, optional): Input channels of the built backbone (PaddleSeg's builder
            passes the dataset's). Default: 3.
        pretrained (str, optional): ``.pdparams`` of the whole model (e.g. the release's
            ImageNet ``resnet101-deep.pth`` converted by tools/convert_weights.py). Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_logits]`` in training (with
        ``aux_head``), each [N, num_classes, H, W] at the input size (``align_corners=True``).
    """

    TRAIN_ONLY_PREFIXES = ('dsn.',)
    CLASSIFIER_PREFIXES = ('gff_head.cls.6.', 'dsn.4.')

    def __init__(self, num_classes, backbone=None, depth=101, aux_head=True, pretrained=None,
                 in_channels=3):
        super().__init__()
        self.backbone = DeepStemResNet(depth, in_channels=in_channels) if backbone is None else backbone
        channels = self.backbone.feat_channels
        self.ppm = PPM(channels[3])
        self.gff_head = GFFDFPHead((channels[0], channels[2], 256), num_classes)
        self.dsn = nn.Sequential(nn.Conv2D(channels[2], 512, 3, padding=1), nn.BatchNorm2D(512), nn.ReLU(),
                                 nn.Dropout2D(0.1), nn.Conv2D(512, num_classes, 1)) if aux_head else None
        if pretrained:
            load_pretrained(self, pretrained)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        layer1, _, layer3, layer4 = self.backbone(x)
        logits = [self.gff_head(layer1, layer3, self.ppm(layer4))]
        if self.training and self.dsn is not None:
            logits.append(self.dsn(layer3))
        return [_up(logit, size) for logit in logits]


@manager.MODELS.add_component
def GFFNet_R101(num_classes=19, **kwargs):
    """GFF-Net on the dilated deep-stem ResNet-101 (58.97 M parameters without ``dsn``)."""
    return GFFNet(num_classes, depth=101, **kwargs)


manager.MODELS.add_component(GFFNet)

# Parameters for 19 classes without dsn (63,703,379 with it), equal to the reference's
# (tests/models/test_gffnet.py; the paper gives no count); GMACs: convolutions at 1024x2048
# (models/complexity.py, measured). Published: Cityscapes test mIoU (paper, ResNet-101).
register_variant(Variant(name='gffnet_r101', family='GFF-Net', model_type='GFFNet_R101', factory=GFFNet_R101,
                         params=58_973_504, gmacs=2128.685, reference=('torch_gffnet', 'gffnet_r101'),
                         published={'cityscapes_test_miou': 82.3}, convert=convert))
