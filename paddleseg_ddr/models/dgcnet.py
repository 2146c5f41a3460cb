"""DGCNet: Dual Graph Convolutional Network (Zhang, Li et al., BMVC 2019, arXiv:1909.06121),
as released in github.com/lxtGH/GALD-DGCNet (``libs/models/DualGCNNet.py``, "Dual-Seg").

Data flow (sizes relative to the input), on the dilated deep-stem ResNet (:mod:`.resnet_deep`):

    backbone -> layer4 (2048, 1/8) -> conva 3x3+BN+ReLU (512)
             -> DualGCN: coordinate space  x * up(SpatialGCN(3 x dw-conv s2 (x))) + x
                         feature space     relu(x + BN(conv(Z B)))  with Z the projected graph
                                           after a Laplacian-style update (1D convs + BN)
                         both concatenated, 1x1 conv + BN
             -> convb 3x3+BN+ReLU -> concat with layer4 -> 3x3+BN+ReLU -> 1x1 classifier (1/8)
    training only: dsn on layer3 (1024 -> 3x3 conv with bias, BN, no ReLU, Dropout 0.1, 1x1)

Logits are upsampled to the input size with ``align_corners=True``, as the release's loss
(``CriterionOhemDSN``) and ``eval.py`` do. Attribute names and ``nn.Sequential`` indices
are the release's, so its checkpoints convert by renaming (:mod:`.dgcnet_checkpoints`).
Release facts relied on: tools/reference/DGCNET_FACTS.md.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

from .dgcnet_checkpoints import convert
from .resnet_deep import DeepStemSegNet
from .resnet_deep import conv3x3_bn_relu as _conv_bn_relu
from .resnet_deep import up_align_corners as _up
from .variants import Variant, register_variant


class SpatialGCN(nn.Layer):
    """Graph convolution over the positions of a (down-sampled) map: nodes k, q, v (1x1
    convs with bias, half width), a channel-by-channel affinity ``softmax(q v^T)`` applied
    to k, a 1D conv + BN state update, a 1x1 conv + BN back to full width, residual, ReLU."""

    def __init__(self, channels):
        super().__init__()
        inter = channels // 2
        self.node_k = nn.Conv2D(channels, inter, 1)
        self.node_v = nn.Conv2D(channels, inter, 1)
        self.node_q = nn.Conv2D(channels, inter, 1)
        self.conv_wg = nn.Conv1D(inter, inter, 1, bias_attr=False)
        self.bn_wg = nn.BatchNorm1D(inter)
        self.out = nn.Sequential(nn.Conv2D(inter, channels, 1), nn.BatchNorm2D(channels))

    def forward(self, x):
        k = self.node_k(x)
        shape = paddle.shape(k)
        k = k.flatten(2).transpose([0, 2, 1])                  # N, HW, C
        q = self.node_q(x).flatten(2)                          # N, C, HW
        v = self.node_v(x).flatten(2).transpose([0, 2, 1])     # N, HW, C
        affinity = F.softmax(paddle.bmm(q, v), axis=2)        # N, C, C
        av = paddle.bmm(k, affinity).transpose([0, 2, 1])      # N, C, HW
        avw = self.bn_wg(self.conv_wg(av)).reshape(shape)
        return F.relu(self.out(avw) + x)


class DualGCN(nn.Layer):
    """The coordinate-space and feature-space graph reasoning of DGCNet, fused by a 1x1 conv."""

    def __init__(self, channels, ratio=4):
        super().__init__()
        c = channels // ratio
        # feature space: projection to 2c x c graph, Laplacian-style update, re-projection
        self.phi = nn.Conv2D(channels, 2 * c, 1, bias_attr=False)
        self.bn_phi = nn.BatchNorm2D(2 * c)
        self.theta = nn.Conv2D(channels, c, 1, bias_attr=False)
        self.bn_theta = nn.BatchNorm2D(c)
        self.conv_adj = nn.Conv1D(c, c, 1, bias_attr=False)          # adjacency A_g
        self.bn_adj = nn.BatchNorm1D(c)
        self.conv_wg = nn.Conv1D(2 * c, 2 * c, 1, bias_attr=False)  # state update W_g
        self.bn_wg = nn.BatchNorm1D(2 * c)
        self.conv3 = nn.Conv2D(2 * c, channels, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(channels)
        # coordinate space: three depthwise stride-2 convs (1/8 of the size), spatial GCN
        layers = []
        for _ in range(3):
            layers += [nn.Conv2D(channels, channels, 3, stride=2, padding=1, groups=channels, bias_attr=False),
                       nn.BatchNorm2D(channels)]
        self.local = nn.Sequential(*layers)
        self.gcn_local_attention = SpatialGCN(channels)
        self.final = nn.Sequential(nn.Conv2D(2 * channels, channels, 1, bias_attr=False), nn.BatchNorm2D(channels))

    def forward(self, x):
        local = _up(self.gcn_local_attention(self.local(x)), paddle.shape(x)[2:])
        spatial = x * local + x

        projected = self.bn_phi(self.phi(x))
        shape = paddle.shape(projected)
        projected = projected.flatten(2)                        # N, 2c, HW
        b = self.bn_theta(self.theta(x)).flatten(2)             # N, c, HW
        z_idt = paddle.matmul(projected, b, transpose_y=True)   # N, 2c, c
        z = self.bn_adj(self.conv_adj(z_idt.transpose([0, 2, 1])))  # N, c, 2c
        z = z.transpose([0, 2, 1]) + z_idt                      # (I - A_g) Z, A_g's sign learnt
        z = self.bn_wg(self.conv_wg(z))
        y = paddle.matmul(z, b).reshape(shape)                  # N, 2c, H, W
        graph = F.relu(x + self.bn3(self.conv3(y)))
        return self.final(paddle.concat([spatial, graph], axis=1))


class DualGCNHead(nn.Layer):
    """conva -> DualGCN -> convb -> bottleneck on [backbone feature, head feature] -> classifier
    (``bottleneck.3``)."""

    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.conva = _conv_bn_relu(in_channels, channels)
        self.dualgcn = DualGCN(channels)
        self.convb = _conv_bn_relu(channels, channels)
        self.bottleneck = nn.Sequential(
            nn.Conv2D(in_channels + channels, channels, 3, padding=1, bias_attr=False),
            nn.BatchNorm2D(channels), nn.ReLU(), nn.Conv2D(channels, num_classes, 1))

    def forward(self, x):
        out = self.convb(self.dualgcn(self.conva(x)))
        return self.bottleneck(paddle.concat([x, out], axis=1))


class DGCNet(DeepStemSegNet):
    """The DGCNet segmentation network.

    Loaders read ``TRAIN_ONLY_PREFIXES`` (the auxiliary ``dsn`` head a deployed checkpoint
    may lack) and ``CLASSIFIER_PREFIXES`` (layers whose shape follows ``num_classes``).

    Args:
        num_classes (int): Number of output classes.
        backbone (nn.Layer, optional): A backbone returning [layer1..layer4] with
            ``feat_channels`` (the release's: DeepStemResNet50/101). Default: None builds a
            DeepStemResNet of ``depth``.
        depth (int, optional): 50 or 101, when ``backbone`` is None. Default: 101.
        head_channels (int, optional): Width of the DualGCN head. Default: 512.
        aux_head (bool, optional): Build ``dsn`` on layer3 (logits returned in training only).
            Default: True.
        in_channels (int, optional): Input channels of the built backbone. Default: 3.
        pretrained (str, optional): ``.pdparams`` of the whole model (e.g. the release's
            checkpoints or ImageNet backbone converted by tools/convert_weights.py). Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_logits]`` in training (with
        ``aux_head``), each [N, num_classes, H, W] at the input size (``align_corners=True``).
    """

    CLASSIFIER_PREFIXES = ('head.bottleneck.3.', 'dsn.3.')

    def __init__(self, num_classes, backbone=None, depth=101, head_channels=512, aux_head=True, in_channels=3,
                 pretrained=None):
        super().__init__(backbone, depth, in_channels)
        self.head = DualGCNHead(self.backbone.feat_channels[3], head_channels, num_classes)
        # the release's dsn: conv with bias, BN, no ReLU (unlike GALD's), Dropout2d(0.1), 1x1
        self._finish(num_classes, head_channels, aux_head, dsn_relu=False, pretrained=pretrained)


@manager.MODELS.add_component
def DGCNet_R50(num_classes=19, **kwargs):
    """DGCNet on the dilated deep-stem ResNet-50 (48.78 M parameters without ``dsn``)."""
    return DGCNet(num_classes, depth=50, **kwargs)


@manager.MODELS.add_component
def DGCNet_R101(num_classes=19, **kwargs):
    """DGCNet on the dilated deep-stem ResNet-101 (67.78 M parameters without ``dsn``)."""
    return DGCNet(num_classes, depth=101, **kwargs)


manager.MODELS.add_component(DGCNet)

# Parameters for 19 classes without dsn, measured equal to the release's models
# (tests/models/test_dgcnet.py); GMACs: convolutions at 1024x2048 (models/complexity.py; the
# graph's matrix products and 1D convs add 2.3 G more). The max-pool's ceil_mode makes the 1/8
# maps 129x257 at that size.
# Published Cityscapes mIoU: test from the paper/README (R101 only); val: the release README's
# expected range after its recipe (R50 79.6-79.8, R101 80.3-80.4), its lower end given here.
for _name, _factory, _params, _gmacs, _published in (
        ('dgcnet_r50', DGCNet_R50, 48_784_595, 1674.2, {'cityscapes_val_miou': 79.6}),
        ('dgcnet_r101', DGCNet_R101, 67_776_723, 2302.1, {'cityscapes_val_miou': 80.3, 'cityscapes_test_miou': 82.0})):
    register_variant(Variant(name=_name, family='DGCNet', model_type=_factory.__name__, factory=_factory,
                             params=_params, gmacs=_gmacs, reference=('torch_dgcnet', _name), published=_published,
                             convert=convert))
