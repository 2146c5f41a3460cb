"""PIDNet: a real-time network with Proportional, Integral and Derivative branches (Xu et al.,
CVPR 2023; release github.com/XuJiacong/PIDNet).

DDRNet's stem and blocks with three branches after stage 2, all from the shared blocks:
the I branch (context, down to 1/64, DAPPM or its parallel form PAPPM), the P branch (detail
at 1/8, fed by the I branch through pixel-attention-guided fusion, ``PagFM``) and the D branch
(boundaries at 1/8, fed by the I branch through ``diff`` convolutions); a boundary-attention
fusion (``Bag``/``LightBag``) lets the D branch weigh P against I before the head. Sub-layer
names follow the release, so its checkpoints map by renaming BN buffers (and one name, see
:mod:`.pidnet_checkpoints`).

Training returns three heads: the main logits, the P branch's auxiliary logits and the D
branch's one-channel boundary logits; the model owns its loss (:meth:`PIDNet.compute_loss`,
the release's four terms). Logits come out at the input size, resized with
``align_corners=True`` as the release's loss and evaluation do; internal resizes use False.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

from ..errors import UserError
from ..utils.weights import load_pretrained
from .blocks import DAPPM, BasicBlock, Bottleneck, SegHead, bn_relu_conv, conv_bn, make_stage, resize
from .pidnet_checkpoints import convert_release
from .variants import Variant, register_variant

# m: BasicBlocks in stages 1-2 and the P branch; n: in the I branch's stages 3-4; planes: stem
# width p; ppm_planes: pyramid pooling width; head_planes: hidden width of the heads.
ARCH = {
    'pidnet_s': dict(m=2, n=3, planes=32, ppm_planes=96, head_planes=128),
    'pidnet_m': dict(m=2, n=3, planes=64, ppm_planes=96, head_planes=128),
    'pidnet_l': dict(m=3, n=4, planes=64, ppm_planes=112, head_planes=256),
}


class PagFM(nn.Layer):
    """Pixel-attention-guided fusion: ``sigma = sigmoid(sum_c f_x(x) * up(f_y(y)))`` per pixel,
    output ``(1 - sigma) * x + sigma * up(y)`` (x: P features, y: I features at lower resolution)."""

    def __init__(self, in_channels, mid_channels):
        super().__init__()
        self.f_x = conv_bn(in_channels, mid_channels, 1)
        self.f_y = conv_bn(in_channels, mid_channels, 1)

    def forward(self, x, y):
        size = paddle.shape(x)[2:]
        sigma = F.sigmoid(paddle.sum(self.f_x(x) * resize(self.f_y(y), size), axis=1, keepdim=True))
        return (1 - sigma) * x + sigma * resize(y, size)


class LightBag(nn.Layer):
    """Light boundary-attention-guided fusion (PIDNet-S/M): ``s = sigmoid(d)``;
    ``conv_p((1 - s) * i + p) + conv_i(i + s * p)``."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv_p = conv_bn(in_channels, out_channels, 1)
        self.conv_i = conv_bn(in_channels, out_channels, 1)

    def forward(self, p, i, d):
        s = F.sigmoid(d)
        return self.conv_p((1 - s) * i + p) + self.conv_i(i + s * p)


class Bag(nn.Layer):
    """Boundary-attention-guided fusion (PIDNet-L): ``conv(s * p + (1 - s) * i)``, s = sigmoid(d)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = bn_relu_conv(in_channels, out_channels, 3)

    def forward(self, p, i, d):
        s = F.sigmoid(d)
        return self.conv(s * p + (1 - s) * i)


def _single_block(in_channels, channels):
    """One BasicBlock without output ReLU, with a 1x1 conv+BN shortcut when the width changes
    (the release's ``_make_single_layer``: not wrapped in a Sequential)."""
    downsample = conv_bn(in_channels, channels, 1) if in_channels != channels else None
    return BasicBlock(in_channels, channels, 1, downsample, no_relu=True)


class PIDNet(nn.Layer):
    """The PIDNet segmentation network.

    Args:
        num_classes (int): Number of output classes.
        m (int): BasicBlocks per stage in stages 1-2 and in the P branch.
        n (int): BasicBlocks per stage in the I branch's stages 3-4.
        planes (int): Stem width p (P branch 2p, I branch up to 16p).
        ppm_planes (int): Width of each pyramid-pooling scale.
        head_planes (int): Hidden width of the main and P heads.
        in_channels (int, optional): Input channels. Default: 3.
        aux_head (bool, optional): Build the training heads (P: ``seghead_p``, D: ``seghead_d``),
            whose logits are returned in training only. Default: True.
        pretrained (str, optional): Weights to initialise from (.pdparams or .safetensors),
            e.g. the release's converted ImageNet weights. Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode; in training ``[logits, p_logits, boundary]``
        (with ``aux_head``), all at the input size.
    """
    TRAIN_ONLY_PREFIXES = ('seghead_p.', 'seghead_d.')
    CLASSIFIER_PREFIXES = ('final_layer.conv2.', 'seghead_p.conv2.')

    def __init__(self, num_classes, m, n, planes, ppm_planes, head_planes, in_channels=3, aux_head=True,
                 pretrained=None):
        super().__init__()
        p = planes
        large = m > 2  # the release keys its layout on m == 2 (S, M) vs L
        self.conv1 = nn.Sequential(
            nn.Conv2D(in_channels, p, 3, stride=2, padding=1), nn.BatchNorm2D(p), nn.ReLU(),
            nn.Conv2D(p, p, 3, stride=2, padding=1), nn.BatchNorm2D(p), nn.ReLU())
        self.layer1 = make_stage(BasicBlock, p, p, m)
        self.layer2 = make_stage(BasicBlock, p, 2 * p, m, stride=2)
        # I branch
        self.layer3 = make_stage(BasicBlock, 2 * p, 4 * p, n, stride=2)
        self.layer4 = make_stage(BasicBlock, 4 * p, 8 * p, n, stride=2)
        self.layer5 = make_stage(Bottleneck, 8 * p, 8 * p, 2, stride=2)
        # P branch, fed by the I branch
        self.compression3 = conv_bn(4 * p, 2 * p, 1)
        self.compression4 = conv_bn(8 * p, 2 * p, 1)
        self.pag3 = PagFM(2 * p, p)
        self.pag4 = PagFM(2 * p, p)
        self.layer3_ = make_stage(BasicBlock, 2 * p, 2 * p, m)
        self.layer4_ = make_stage(BasicBlock, 2 * p, 2 * p, m)
        self.layer5_ = make_stage(Bottleneck, 2 * p, 2 * p, 1)
        # D branch, fed by the I branch
        d3 = 2 * p if large else p
        self.layer3_d = _single_block(2 * p, d3)
        self.layer4_d = _single_block(2 * p, 2 * p) if large else make_stage(Bottleneck, p, p, 1)
        self.diff3 = conv_bn(4 * p, d3, 3)
        self.diff4 = conv_bn(8 * p, 2 * p, 3)
        self.layer5_d = make_stage(Bottleneck, 2 * p, 2 * p, 1)
        if large:
            self.spp = DAPPM(16 * p, ppm_planes, 4 * p)
            self.dfm = Bag(4 * p, 4 * p)
        else:
            self.spp = DAPPM(16 * p, ppm_planes, 4 * p,
                             parallel=lambda ch, groups, norm: bn_relu_conv(ch, ch, 3, norm=norm, groups=groups))
            self.dfm = LightBag(4 * p, 4 * p)
        self.final_layer = SegHead(4 * p, head_planes, num_classes)
        self.seghead_p = SegHead(2 * p, head_planes, num_classes) if aux_head else None
        self.seghead_d = SegHead(2 * p, p, 1) if aux_head else None
        self._init_weights()
        if pretrained:
            load_pretrained(self, pretrained)

    def _init_weights(self):
        """Kaiming-normal (fan_out) convs, unit BN: the release's initialisation."""
        for layer in self.sublayers():
            if isinstance(layer, nn.Conv2D):
                out_c, _, kh, kw = layer.weight.shape
                nn.initializer.KaimingNormal(fan_in=out_c * kh * kw)(layer.weight)

    def forward(self, x):
        input_size = paddle.shape(x)[2:]
        x = self.layer1(self.conv1(x))
        x = F.relu(self.layer2(F.relu(x)))
        x_p, x_d = self.layer3_(x), self.layer3_d(x)
        size = paddle.shape(x_p)[2:]
        x = F.relu(self.layer3(x))
        x_p = self.pag3(x_p, self.compression3(x))
        x_d = x_d + resize(self.diff3(x), size)
        # The release's heads read these after its in-place ReLU of the next stage's input.
        p_feature = F.relu(x_p)
        x = F.relu(self.layer4(x))
        x_p = self.layer4_(p_feature)
        x_d = self.layer4_d(F.relu(x_d))
        x_p = self.pag4(x_p, self.compression4(x))
        x_d = x_d + resize(self.diff4(x), size)
        d_feature = F.relu(x_d)
        x_p = self.layer5_(F.relu(x_p))
        x_d = self.layer5_d(d_feature)
        x = resize(self.spp(self.layer5(x)), size)
        logits = [self.final_layer(self.dfm(x_p, x, x_d))]
        if self.training and self.seghead_p is not None:
            logits += [self.seghead_p(p_feature), self.seghead_d(d_feature)]
        return [F.interpolate(logit, size=input_size, mode='bilinear', align_corners=True) for logit in logits]

    def compute_loss(self, logits, batch, losses):
        """The release's loss: ``coef[0]`` x the P head's loss (``types[0]``, weighted CE over all
        pixels) + ``coef[1]`` x the main head's (``types[1]``, OHEM) + ``coef[2]`` x the boundary
        head's (``types[2]``, class-balanced BCE against ``batch['edge']``) + ``coef[3]`` x the
        main head's loss (``types[3]``) on the pixels whose boundary probability exceeds 0.8.
        Without the training heads (``aux_head=False``) only the main term is computed."""
        label = batch['label']
        types, coefs = losses['types'], losses['coef']
        if len(logits) == 1:
            main = coefs[1] * types[1](logits[0], label)
            return main, [main]
        if len(types) != 4 or len(coefs) != 4:
            raise UserError('PIDNet trains with four loss terms (P head, main head, boundary head, boundary-aware '
                            f'main head): loss.types and loss.coef need 4 entries, got {len(types)} and {len(coefs)}.')
        if 'edge' not in batch:
            raise UserError("PIDNet's boundary head needs edge labels: put `- type: AddEdgeLabel` first in "
                            'train_dataset.transforms.')
        main, p_logits, boundary = logits
        label = label.squeeze(1) if label.ndim == 4 else label
        edge = batch['edge']
        edge = (edge.squeeze(1) if edge.ndim == 4 else edge) == 1  # padding may have written 255
        bd_label = paddle.where(F.sigmoid(boundary[:, 0]) > 0.8, label, paddle.full_like(label, 255))
        terms = [coefs[0] * types[0](p_logits, label), coefs[1] * types[1](main, label),
                 coefs[2] * types[2](boundary, edge), coefs[3] * types[3](main, bd_label)]
        return paddle.add_n(terms), terms


def _build(name, num_classes, **kwargs):
    return PIDNet(num_classes=num_classes, **ARCH[name], **kwargs)


@manager.MODELS.add_component
def PIDNetS(num_classes=19, **kwargs):
    """PIDNet-S (7.6 M parameters for inference). See :class:`PIDNet` for the arguments."""
    return _build('pidnet_s', num_classes, **kwargs)


@manager.MODELS.add_component
def PIDNetM(num_classes=19, **kwargs):
    """PIDNet-M (28.5 M parameters for inference). See :class:`PIDNet` for the arguments."""
    return _build('pidnet_m', num_classes, **kwargs)


@manager.MODELS.add_component
def PIDNetL(num_classes=19, **kwargs):
    """PIDNet-L (36.9 M parameters for inference). See :class:`PIDNet` for the arguments."""
    return _build('pidnet_l', num_classes, **kwargs)


# Inference-graph parameters for 19 classes (the release's structure, measured on the
# reference re-implementation; published 7.6 / 28.5 / 36.9 M), GFLOPs at 1024x2048 and
# Cityscapes mIoU and RTX 3090 FPS as the RDRNet paper's table gives them (trained without
# ImageNet there).
for _name, _factory, _params, _gmacs, _published in (
        ('pidnet_s', PIDNetS, 7_625_715, 47.3, {'cityscapes_val_miou': 76.4, 'cityscapes_test_miou': 76.2, 'gpu_fps': 102.6}),
        ('pidnet_m', PIDNetM, 28_538_515, 177.0, {'cityscapes_val_miou': 78.2, 'cityscapes_test_miou': 78.3, 'gpu_fps': 42.0}),
        ('pidnet_l', PIDNetL, 36_939_571, 275.0, {'cityscapes_val_miou': 78.8, 'cityscapes_test_miou': 78.4, 'gpu_fps': 31.8})):
    register_variant(Variant(name=_name, family='PIDNet', model_type=_factory.__name__, factory=_factory,
                             params=_params, gmacs=_gmacs, reference=('torch_pidnet', _name), published=_published,
                             convert=convert_release))
