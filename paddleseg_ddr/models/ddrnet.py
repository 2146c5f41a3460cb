"""DDRNet: Deep Dual-resolution Networks (Hong et al., arXiv:2101.06085).

One definition serves DDRNet-23-slim, DDRNet-23 and DDRNet-39; ``ARCH`` holds the
numbers that tell them apart, and each variant is registered with its published figures
in :mod:`.variants`. Attribute names mirror the official release
(``conv1, layer1..5, layer3_, compression3, down3, spp, final_layer, seghead_extra``;
DDRNet-39 splits stage 3 into ``layer3_1/layer3_2`` with a fusion after each half).

Data flow, with resolutions relative to the input:

    conv1 (1/4) -> layer1 -> layer2 (1/8) -+-> low branch:  layer3 (1/16) -> layer4 (1/32) -> layer5 (1/64) -> DAPPM -+
                                           +-> high branch: layer3_ (1/8) -> layer4_ (1/8)  -> layer5_ (1/8) ---------+-> sum -> head
    with a bilateral fusion after every stage-3 part and after stage 4:
        low  += down(relu(high))                 (strided 3x3 convs)
        high += resize(compression(relu(low)))   (1x1 conv, bilinear)
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

from ..utils.weights import load_pretrained
from .blocks import DAPPM, BasicBlock, Bottleneck, SegHead, conv_bn, make_stage, resize
from .ddrnet_checkpoints import convert_official
from .variants import Variant, register_variant

# planes: width of the stem; blocks: BasicBlocks per stage 1-4; stage3_parts: fusions in stage 3;
# spp/head_planes: DAPPM and head widths (segmentation); last_planes: width before the ImageNet classifier.
ARCH = {
    'ddrnet23_slim': dict(planes=32, blocks=(2, 2, 2, 2), stage3_parts=1, spp_planes=128, head_planes=64, last_planes=1024),
    'ddrnet23': dict(planes=64, blocks=(2, 2, 2, 2), stage3_parts=1, spp_planes=128, head_planes=128, last_planes=2048),
    'ddrnet39': dict(planes=64, blocks=(3, 4, 6, 3), stage3_parts=2, spp_planes=128, head_planes=256, last_planes=2048),
}


def _downsample(in_channels, out_channels, mid_channels, num_convs, padding=None):
    """High-to-low path of a fusion: ``num_convs`` stride-2 3x3 conv-BN, ReLU between."""
    if num_convs == 1:
        return conv_bn(in_channels, out_channels, 3, stride=2, padding=padding)
    return nn.Sequential(*conv_bn(in_channels, mid_channels, 3, stride=2), nn.ReLU(),
                         *conv_bn(mid_channels, out_channels, 3, stride=2))


class DualTrunk(nn.Layer):
    """Stem, stages 1-4 with their bilateral fusions, and the stage-5 high branch: what
    the segmentation and the ImageNet networks share (and what an ImageNet checkpoint
    initialises in the segmentation model, besides stage 5 of the low branch)."""

    def __init__(self, planes, blocks, stage3_parts, in_channels=3, paddleseg_layout=False):
        super().__init__()
        high = planes * 2
        self.conv1 = nn.Sequential(
            nn.Conv2D(in_channels, planes, 3, stride=2, padding=1), nn.BatchNorm2D(planes), nn.ReLU(),
            nn.Conv2D(planes, planes, 3, stride=2, padding=1), nn.BatchNorm2D(planes), nn.ReLU())
        self.layer1 = make_stage(BasicBlock, planes, planes, blocks[0])
        self.layer2 = make_stage(BasicBlock, planes, planes * 2, blocks[1], stride=2)

        # Stages 3 and 4: the low branch goes down (stride 2 at each stage start), the high
        # branch stays at 1/8 with `high` channels, and a bilateral fusion follows each part.
        suffixes = ['3'] if stage3_parts == 1 else [f'3_{i + 1}' for i in range(stage3_parts)]
        self.fusion_stages = suffixes + ['4']
        low_in, high_in = planes * 2, planes * 2
        for suffix in self.fusion_stages:
            in_stage4 = suffix == '4'
            low_out = planes * 8 if in_stage4 else planes * 4
            stride = 2 if low_in != low_out else 1
            n = blocks[3] if in_stage4 else blocks[2] // stage3_parts
            setattr(self, f'layer{suffix}', make_stage(BasicBlock, low_in, low_out, n, stride))
            setattr(self, f'layer{suffix}_', make_stage(BasicBlock, high_in, high, n))
            setattr(self, f'compression{suffix}', conv_bn(low_out, high, 1))
            # PaddleSeg's DDRNet_23 pads its stage-3 downsample 'SAME' (0 before, 1 after).
            padding = 'SAME' if paddleseg_layout and not in_stage4 else None
            setattr(self, f'down{suffix}', _downsample(high, low_out, planes * 4, 2 if in_stage4 else 1, padding))
            low_in, high_in = low_out, high
        self.aux_stage = suffixes[-1]
        self.layer5_ = make_stage(Bottleneck, high, high, 1)

    def init_weights(self):
        """Kaiming-normal (fan_out) convs, unit BN: the official initialisation."""
        for layer in self.sublayers():
            if isinstance(layer, nn.Conv2D):
                out_c, _, kh, kw = layer.weight.shape
                nn.initializer.KaimingNormal(fan_in=out_c * kh * kw)(layer.weight)

    def forward_branches(self, x):
        """(low branch after stage 4, high branch after stage 5, high branch after stage 3)."""
        x = self.layer1(self.conv1(x))
        low = high = self.layer2(F.relu(x))
        after_stage3 = None
        for suffix in self.fusion_stages:
            low = getattr(self, f'layer{suffix}')(F.relu(low))
            high = getattr(self, f'layer{suffix}_')(F.relu(high))
            # Both directions read the pre-fusion features.
            low, high = (low + getattr(self, f'down{suffix}')(F.relu(high)),
                         high + resize(getattr(self, f'compression{suffix}')(F.relu(low)),
                                       paddle.shape(high)[2:]))
            if suffix == self.aux_stage:
                after_stage3 = high
        return low, self.layer5_(F.relu(high)), after_stage3


class DualResNet(DualTrunk):
    """The DDRNet segmentation network.

    Loaders read two class attributes: ``TRAIN_ONLY_PREFIXES`` (layers a deployed checkpoint
    may lack: the auxiliary head) and ``CLASSIFIER_PREFIXES`` (layers whose shape follows
    ``num_classes``, dropped when converting weights trained on another class count).

    Args:
        num_classes (int): Number of output classes.
        planes (int): Stem width; the high-resolution branch has ``2 * planes`` channels.
        blocks (tuple): Number of BasicBlocks in stages 1-4.
        stage3_parts (int): How many halves stage 3 is split into, each followed by a
            bilateral fusion (1 for DDRNet-23, 2 for DDRNet-39).
        spp_planes (int): Branch width inside DAPPM.
        head_planes (int): Hidden width of the segmentation heads.
        in_channels (int, optional): Input channels. Default: 3.
        aux_head (bool, optional): Build the auxiliary head on the high-resolution branch
            after stage 3 (``seghead_extra``). Its logits are returned in training only.
            Default: True.
        paddleseg_layout (bool, optional): Reproduce the two places where PaddleSeg's
            ``DDRNet_23`` departs from the official model (DAPPM average pooling ignores the
            zero padding; ``down3`` pads 'SAME'), for weights converted from PaddleSeg's
            model zoo. Default: False (the official model).
        pretrained (str, optional): Path of weights to load after construction: a Paddle
            ``.pdparams`` (e.g. converted ImageNet weights, see tools/convert_weights.py).
            Keys whose name and shape match are loaded, the rest reported. Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_logits]`` in training
        (when ``aux_head``), each of shape [N, num_classes, H, W] at the input size.
    """

    TRAIN_ONLY_PREFIXES = ('seghead_extra.',)
    CLASSIFIER_PREFIXES = ('final_layer.conv2.', 'seghead_extra.conv2.')

    def __init__(self, num_classes, planes, blocks, stage3_parts, spp_planes, head_planes,
                 in_channels=3, aux_head=True, paddleseg_layout=False, pretrained=None):
        super().__init__(planes, blocks, stage3_parts, in_channels, paddleseg_layout)
        self.layer5 = make_stage(Bottleneck, planes * 8, planes * 8, 1, stride=2)
        self.spp = DAPPM(planes * 16, spp_planes, planes * 4, pool_exclusive=paddleseg_layout)
        self.seghead_extra = SegHead(planes * 2, head_planes, num_classes) if aux_head else None
        self.final_layer = SegHead(planes * 4, head_planes, num_classes)
        self.init_weights()
        if pretrained:
            load_pretrained(self, pretrained)

    def forward(self, x):
        input_size = paddle.shape(x)[2:]
        low, high, after_stage3 = self.forward_branches(x)
        low = resize(self.spp(self.layer5(F.relu(low))), paddle.shape(high)[2:])
        logits = [self.final_layer(low + high)]
        if self.training and self.seghead_extra is not None:
            logits.append(self.seghead_extra(after_stage3))
        return [resize(logit, input_size) for logit in logits]


class DualResNetClassifier(DualTrunk):
    """The ImageNet network of the release: stage 5 keeps the low branch at 1/32
    (stride-1 ``layer5``), ``down5`` brings the high branch down to it, then
    ``last_layer`` (1x1 conv, global pooling) and ``linear``. Returns logits [N, num_classes]."""

    def __init__(self, num_classes, planes, blocks, stage3_parts, last_planes, in_channels=3):
        super().__init__(planes, blocks, stage3_parts, in_channels)
        self.layer5 = make_stage(Bottleneck, planes * 8, planes * 8, 1)
        self.down5 = _downsample(planes * 4, planes * 16, planes * 8, 2)
        self.last_layer = nn.Sequential(nn.Conv2D(planes * 16, last_planes, 1, bias_attr=False),
                                        nn.BatchNorm2D(last_planes), nn.ReLU(), nn.AdaptiveAvgPool2D(1))
        self.linear = nn.Linear(last_planes, num_classes)
        self.init_weights()

    def forward(self, x):
        low, high, _ = self.forward_branches(x)
        x = self.layer5(F.relu(low)) + self.down5(F.relu(high))
        return self.linear(self.last_layer(F.relu(x)).flatten(1))


def _numbers(name, *keys):
    return {k: ARCH[name][k] for k in ('planes', 'blocks', 'stage3_parts') + keys}


def _build(name, num_classes, **kwargs):
    return DualResNet(num_classes=num_classes, **_numbers(name, 'spp_planes', 'head_planes'), **kwargs)


def imagenet_classifier(name, num_classes=1000):
    """The ImageNet DualResNet of a variant ('ddrnet23_slim', 'ddrnet23', 'ddrnet39')."""
    return DualResNetClassifier(num_classes=num_classes, **_numbers(name, 'last_planes'))


@manager.MODELS.add_component
def DDRNet23Slim(num_classes=19, **kwargs):
    """DDRNet-23-slim (5.7 M parameters). See :class:`DualResNet` for the arguments."""
    return _build('ddrnet23_slim', num_classes, **kwargs)


@manager.MODELS.add_component
def DDRNet23(num_classes=19, **kwargs):
    """DDRNet-23 (20.1 M parameters). See :class:`DualResNet` for the arguments."""
    return _build('ddrnet23', num_classes, **kwargs)


@manager.MODELS.add_component
def DDRNet39(num_classes=19, **kwargs):
    """DDRNet-39 (32.4 M parameters). See :class:`DualResNet` for the arguments."""
    return _build('ddrnet39', num_classes, **kwargs)


# Published figures: parameters for 19 classes without the auxiliary head, GMACs at
# 1024x2048 (paper, Table 4 and the release), Cityscapes mIoU (paper), FPS at 1024x2048 on an
# RTX 3090 (RDRNet paper's table; 'gpu_fps').
for _name, _factory, _params, _gmacs, _published in (
        ('ddrnet23_slim', DDRNet23Slim, 5_695_987, 36.3, {'cityscapes_val_miou': 77.8, 'cityscapes_test_miou': 77.4, 'gpu_fps': 131.7}),
        ('ddrnet23', DDRNet23, 20_148_947, 143.1, {'cityscapes_val_miou': 79.5, 'cityscapes_test_miou': 79.4, 'gpu_fps': 54.6}),
        ('ddrnet39', DDRNet39, 32_360_275, 281.1, {'cityscapes_test_miou': 80.4})):
    register_variant(Variant(name=_name, family='DDRNet', model_type=_factory.__name__, factory=_factory,
                             params=_params, gmacs=_gmacs, reference=('torch_ddrnet', _name), published=_published,
                             convert=convert_official))
