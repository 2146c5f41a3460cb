"""GALD-Net: Global Aggregation then Local Distribution (Li et al., BMVC 2019, arXiv:1909.07229),
as released in github.com/lxtGH/GALD-DGCNet (``libs/models/GALDNet.py``).

Data flow (sizes relative to the input), on the dilated deep-stem ResNet (:mod:`.resnet_deep`):

    backbone -> layer4 (2048, 1/8) -> conva 3x3+BN+ReLU (512)
             -> GALD block: down   depthwise 3x3 stride 2 without padding + BN + ReLU (~1/16)
                            GA     spatial grouped non-local (CGNL, 8 groups, dot-product kernel,
                                   grouped 1x1 ``z``, GroupNorm, residual), bilinear up to 1/8
                                   (align_corners=True)
                            LD     mask = sigmoid(up(3 x [depthwise 3x3 s2 unpadded + BN + ReLU]))
                                   out = (y + y * mask) + y   (y: the up-sampled GA output)
             -> convb 3x3+BN+ReLU -> concat with layer4 -> 3x3+BN+ReLU -> 1x1 classifier (1/8)
    training only: dsn on layer3 (1024 -> 3x3 conv with bias, BN, ReLU, Dropout 0.1, 1x1)

The release's non-local has no softmax: per group, one scalar ``<phi, g>`` over C*H*W scales
``theta`` (``use_scale=False``). Logits are upsampled to the input size with
``align_corners=True``, as the release's loss (``CriterionOhemDSN``) and evaluation do.
Attribute names and ``nn.Sequential`` indices are the release's, so checkpoints in its layout
convert by renaming (:mod:`.galdnet_checkpoints`).

The four unpadded stride-2 convolutions need a 1/8 feature map of at least 31x31, i.e. inputs
of at least 239x239 pixels (the release fails below that too); smaller inputs raise a
:class:`~paddleseg_ddr.errors.UserError`. Release facts: tools/reference/GALD_GFF_FACTS.md.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

from ..errors import UserError
from .galdnet_checkpoints import convert
from .resnet_deep import DeepStemSegNet
from .resnet_deep import conv3x3_bn_relu as _conv_bn_relu
from .resnet_deep import up_align_corners as _up
from .variants import Variant, register_variant

MIN_FEATURE = 31   # smallest 1/8 map the down-sampling chain accepts
MIN_INPUT = 239    # smallest input side giving it (stem /2, ceil max-pool /2, layer2 /2)


def _dw_down(channels):
    """Depthwise 3x3 stride 2 without padding (with bias, as the release) + BN + ReLU."""
    return nn.Sequential(nn.Conv2D(channels, channels, 3, stride=2, groups=channels),
                         nn.BatchNorm2D(channels), nn.ReLU())


class SpatialCGNL(nn.Layer):
    """Spatial compact generalised non-local, grouped, with the dot-product kernel: for each of
    ``groups`` channel groups, ``y = <phi, g> * theta`` (one scalar per image and group, over
    the group's C*H*W); then ``z`` (grouped 1x1), GroupNorm, plus the input."""

    def __init__(self, in_channels, channels, groups=8):
        super().__init__()
        self.groups = groups
        self.t = nn.Conv2D(in_channels, channels, 1, bias_attr=False)
        self.p = nn.Conv2D(in_channels, channels, 1, bias_attr=False)
        self.g = nn.Conv2D(in_channels, channels, 1, bias_attr=False)
        self.z = nn.Conv2D(channels, in_channels, 1, groups=groups, bias_attr=False)
        self.gn = nn.GroupNorm(groups, in_channels)

    def forward(self, x):
        t = self.t(x)
        shape = paddle.shape(t)
        grouped = [0, self.groups, -1]  # [N, groups, C/groups*H*W]: channels of a group are contiguous
        att = paddle.sum(self.p(x).reshape(grouped) * self.g(x).reshape(grouped), axis=-1, keepdim=True)
        y = paddle.reshape(att * t.reshape(grouped), shape)
        return self.gn(self.z(y)) + x


class LocalAttenModule(nn.Layer):
    """Local distribution: a sigmoid mask from three unpadded stride-2 depthwise convs,
    up-sampled back; ``x + x * mask``."""

    def __init__(self, channels):
        super().__init__()
        self.dconv1, self.dconv2, self.dconv3 = _dw_down(channels), _dw_down(channels), _dw_down(channels)

    def forward(self, x):
        mask = F.sigmoid(_up(self.dconv3(self.dconv2(self.dconv1(x))), paddle.shape(x)[2:]))
        return x + x * mask


class GALDBlock(nn.Layer):
    """Global aggregation (down-sampled grouped non-local) then local distribution."""

    def __init__(self, in_channels, channels):
        super().__init__()
        self.down = _dw_down(in_channels)
        self.long_relation = SpatialCGNL(in_channels, channels)
        self.local_attention = LocalAttenModule(in_channels)

    def forward(self, x):
        if paddle.in_dynamic_mode() and min(x.shape[2], x.shape[3]) < MIN_FEATURE:  # sizes known in dygraph only
            h, w = x.shape[2], x.shape[3]
            raise UserError(f'GALD-Net needs inputs of at least {MIN_INPUT}x{MIN_INPUT} pixels (its 1/8 feature map, '
                            f'here {h}x{w}, must be at least {MIN_FEATURE}x{MIN_FEATURE} for four unpadded stride-2 '
                            'convolutions): use a larger crop_size / input size.')
        y = _up(self.long_relation(self.down(x)), paddle.shape(x)[2:])
        return self.local_attention(y) + y


class GALDHead(nn.Layer):
    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.conva = _conv_bn_relu(in_channels, channels)
        self.a2block = GALDBlock(channels, channels // 2)
        self.convb = _conv_bn_relu(channels, channels)
        self.bottleneck = nn.Sequential(*_conv_bn_relu(in_channels + channels, channels),
                                        nn.Conv2D(channels, num_classes, 1))

    def forward(self, x):
        y = self.convb(self.a2block(self.conva(x)))
        return self.bottleneck(paddle.concat([x, y], axis=1))


class GALDNet(DeepStemSegNet):
    """The GALD-Net segmentation network.

    Loaders read ``TRAIN_ONLY_PREFIXES`` (the auxiliary ``dsn`` head a deployed checkpoint
    may lack) and ``CLASSIFIER_PREFIXES`` (layers whose shape follows ``num_classes``).

    Args:
        num_classes (int): Number of output classes.
        backbone (nn.Layer, optional): A backbone returning [layer1..layer4] with
            ``feat_channels`` (the release's: DeepStemResNet50/101). Default: None builds a
            DeepStemResNet of ``depth``.
        depth (int, optional): 50 or 101, when ``backbone`` is None. Default: 101.
        head_channels (int, optional): Width of the GALD head. Default: 512.
        aux_head (bool, optional): Build ``dsn`` on layer3 (logits returned in training only).
            Default: True.
        in_channels (int, optional): Input channels of the built backbone (PaddleSeg's builder
            passes the dataset's). Default: 3.
        pretrained (str, optional): ``.pdparams`` of the whole model (e.g. a converted release
            checkpoint or ImageNet backbone, tools/convert_weights.py). Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_logits]`` in training (with
        ``aux_head``), each [N, num_classes, H, W] at the input size (``align_corners=True``).
    """

    CLASSIFIER_PREFIXES = ('head.bottleneck.3.', 'dsn.4.')

    def __init__(self, num_classes, backbone=None, depth=101, head_channels=512, aux_head=True, pretrained=None,
                 in_channels=3):
        super().__init__(backbone, depth, in_channels)
        self.head = GALDHead(self.backbone.feat_channels[3], head_channels, num_classes)
        # the release's dsn: conv with bias, BN, ReLU, Dropout2d(0.1), 1x1
        self._finish(num_classes, head_channels, aux_head, dsn_relu=True, pretrained=pretrained)


@manager.MODELS.add_component
def GALDNet_R50(num_classes=19, **kwargs):
    """GALD-Net on the dilated deep-stem ResNet-50 (47.67 M parameters without ``dsn``)."""
    return GALDNet(num_classes, depth=50, **kwargs)


@manager.MODELS.add_component
def GALDNet_R101(num_classes=19, **kwargs):
    """GALD-Net on the dilated deep-stem ResNet-101 (66.66 M parameters without ``dsn``)."""
    return GALDNet(num_classes, depth=101, **kwargs)


manager.MODELS.add_component(GALDNet)

# Parameters for 19 classes without dsn, equal to the release's models (52,402,662 /
# 71,394,790 with dsn; tests/models/test_galdnet.py); GMACs: convolutions at 1024x2048
# (models/complexity.py, measured). Published Cityscapes test mIoU (paper, fine data only).
for _name, _factory, _params, _gmacs, _published in (
        ('galdnet_r50', GALDNet_R50, 47_672_787, 1649.072, {'cityscapes_test_miou': 80.8}),
        ('galdnet_r101', GALDNet_R101, 66_664_915, 2276.987, {'cityscapes_test_miou': 81.8})):
    register_variant(Variant(name=_name, family='GALD-Net', model_type=_factory.__name__, factory=_factory,
                             params=_params, gmacs=_gmacs, reference=('torch_galdnet', _name), published=_published,
                             convert=convert))
