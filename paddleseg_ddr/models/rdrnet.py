"""RDRNet: Reparameterizable Dual-Resolution Network (Yang, Wang, Shi, arXiv:2406.12496).

DDRNet's two branches and bilateral fusions, with every residual block replaced by a
:class:`~.blocks.RepBlock` that trains with three paths and runs as one 3x3 convolution, and
DDRNet's pyramid pooling replaced by its parallel form with a re-parameterisable processing
layer (RPPM). The network trains as the training graph; :func:`.reparameterize.reparameterize`
(called by export, val and predict) turns it into the fused graph. Sub-layer names follow
the release (github.com/gyyang23/RDRNet, an mmsegmentation fork: ``stem``,
``semantic_branch_layers``, ``detail_branch_layers``, ``compression_1/2``, ``down_1/2``,
``spp``), so its checkpoints map by the renaming in :mod:`.rdrnet_checkpoints`.

Data flow, with resolutions relative to the input (c = ``channels``):

    stem: RB s2 (1/2) -> RB s2 + n0 RB (1/4) -> RB s2 + n1 RB (1/8, 2c)
    stage 4: semantic RB s2 ... (1/16, 4c) | detail RBs (1/8, 2c), then a bilateral fusion:
        semantic += down_1(relu(detail));  detail += resize(compression_1(relu(semantic)))
        (the auxiliary head reads the detail branch here)
    stage 5: the same at 1/32 (8c) with down_2 (two stride-2 convs) and compression_2
    stage 6: Bottleneck s2 (1/64, 16c) -> RPPM -> resize  +  detail Bottleneck (1/8, 4c) -> head
The last RB of each semantic/detail stage has no ReLU; Bottlenecks have no output ReLU. The
backbone's BNs use momentum 0.03 (Paddle: 0.97) and epsilon 1e-3; the head's the defaults.
"""
import functools

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

from ..utils.weights import load_pretrained
from .blocks import DAPPM, Bottleneck, RepBlock, RepParallel, SegHead, conv_bn, make_stage, resize
from .rdrnet_checkpoints import convert_release
from .variants import Variant, register_variant

# channels: base width c; blocks: RBs (besides each stage's first, strided one) in stages 2 and
# 3, [semantic, detail] blocks in stages 4 and 5, and [semantic, detail] Bottlenecks in stage 6;
# head_channels: hidden width of the heads.
ARCH = {
    'rdrnet_s_simple': dict(channels=32, blocks=(4, 3, (5, 4), (5, 4), (1, 1)), head_channels=64),
    'rdrnet_s': dict(channels=32, blocks=(4, 3, (5, 4), (5, 4), (1, 1)), head_channels=128),
    'rdrnet_m': dict(channels=64, blocks=(4, 3, (5, 4), (5, 4), (1, 1)), head_channels=128),
    'rdrnet_l': dict(channels=64, blocks=(6, 5, (7, 6), (7, 6), (2, 2)), head_channels=256),
}

BACKBONE_NORM = functools.partial(nn.BatchNorm2D, momentum=0.97, epsilon=1e-3)


def _rep_stage(in_channels, out_channels, num_blocks, stride, last_act=True):
    """``num_blocks`` RepBlocks, the first with ``stride``; the last without ReLU unless ``last_act``."""
    return [RepBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1,
                     act=last_act or i < num_blocks - 1, norm=BACKBONE_NORM) for i in range(num_blocks)]


class RDRNet(nn.Layer):
    """The RDRNet segmentation network (backbone + DDRHead).

    Args:
        num_classes (int): Number of output classes.
        channels (int): Base width c; the detail branch has 2c channels.
        blocks (tuple): (n2, n3, (semantic, detail) of stage 4, of stage 5, Bottlenecks of
            stage 6), as the release's ``num_blocks_per_stage``.
        head_channels (int): Hidden width of the segmentation heads.
        ppm_channels (int, optional): Width of each RPPM scale. Default: 128.
        in_channels (int, optional): Input channels. Default: 3.
        aux_head (bool, optional): Build the auxiliary head on the detail branch after the
            first fusion; its logits are returned in training only. Default: True.
        pretrained (str, optional): Weights to initialise from (.pdparams or .safetensors).
            Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_logits]`` in training, each
        [N, num_classes, H, W] at the input size (the heads work at ceil(H/8) x ceil(W/8)).
    """
    TRAIN_ONLY_PREFIXES = ('aux_head.',)
    CLASSIFIER_PREFIXES = ('head.conv2.', 'aux_head.conv2.')

    def __init__(self, num_classes, channels, blocks, head_channels, ppm_channels=128, in_channels=3,
                 aux_head=True, pretrained=None):
        super().__init__()
        c, norm = channels, BACKBONE_NORM
        n2, n3, stage4, stage5, stage6 = blocks
        self.stem = nn.Sequential(
            RepBlock(in_channels, c, 2, norm=norm),
            *_rep_stage(c, c, n2 + 1, 2),
            *_rep_stage(c, 2 * c, n3 + 1, 2))
        self.semantic_branch_layers = nn.LayerList([
            nn.Sequential(*_rep_stage(2 * c, 4 * c, stage4[0] + 1, 2, last_act=False)),
            nn.Sequential(*_rep_stage(4 * c, 8 * c, stage5[0] + 1, 2, last_act=False)),
            make_stage(Bottleneck, 8 * c, 8 * c, stage6[0], stride=2, norm=norm)])
        self.detail_branch_layers = nn.LayerList([
            nn.Sequential(*_rep_stage(2 * c, 2 * c, stage4[1], 1, last_act=False)),
            nn.Sequential(*_rep_stage(2 * c, 2 * c, stage5[1], 1, last_act=False)),
            make_stage(Bottleneck, 2 * c, 2 * c, stage6[1], norm=norm)])
        self.compression_1 = conv_bn(4 * c, 2 * c, 1, norm=norm)
        self.down_1 = conv_bn(2 * c, 4 * c, 3, stride=2, norm=norm)
        self.compression_2 = conv_bn(8 * c, 2 * c, 1, norm=norm)
        self.down_2 = nn.Sequential(*conv_bn(2 * c, 4 * c, 3, stride=2, norm=norm), nn.ReLU(),
                                    *conv_bn(4 * c, 8 * c, 3, stride=2, norm=norm))
        self.spp = DAPPM(16 * c, ppm_channels, 4 * c, norm=norm,
                         parallel=lambda ch, groups, nrm: RepParallel(ch, groups, nrm))
        self.head = SegHead(4 * c, head_channels, num_classes)
        self.aux_head = SegHead(2 * c, head_channels, num_classes) if aux_head else None
        self._init_weights()
        if pretrained:
            load_pretrained(self, pretrained)

    def _init_weights(self):
        """Kaiming-normal (fan_out) convs with zero biases, unit BN: the release's initialisation."""
        for layer in self.sublayers():
            if isinstance(layer, nn.Conv2D):
                out_c, _, kh, kw = layer.weight.shape
                nn.initializer.KaimingNormal(fan_in=out_c * kh * kw)(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)

    def forward(self, x):
        input_size = paddle.shape(x)[2:]
        x = self.stem(x)
        size = paddle.shape(x)[2:]  # ceil(H/8) x ceil(W/8): the detail branch's resolution
        semantic, detail = self.semantic_branch_layers[0](x), self.detail_branch_layers[0](x)
        semantic, detail = (semantic + self.down_1(F.relu(detail)),
                            detail + resize(self.compression_1(F.relu(semantic)), size))
        after_stage4 = detail
        semantic = self.semantic_branch_layers[1](F.relu(semantic))
        detail = self.detail_branch_layers[1](F.relu(detail))
        semantic, detail = (semantic + self.down_2(F.relu(detail)),
                            detail + resize(self.compression_2(F.relu(semantic)), size))
        detail = self.detail_branch_layers[2](F.relu(detail))
        semantic = resize(self.spp(self.semantic_branch_layers[2](F.relu(semantic))), size)
        logits = [self.head(detail + semantic)]
        if self.training and self.aux_head is not None:
            logits.append(self.aux_head(after_stage4))
        return [resize(logit, input_size) for logit in logits]


def _build(name, num_classes, **kwargs):
    return RDRNet(num_classes=num_classes, **ARCH[name], **kwargs)


@manager.MODELS.add_component
def RDRNetSSimple(num_classes=19, **kwargs):
    """RDRNet-S-Simple (7.2 M parameters deployed). See :class:`RDRNet` for the arguments."""
    return _build('rdrnet_s_simple', num_classes, **kwargs)


@manager.MODELS.add_component
def RDRNetS(num_classes=19, **kwargs):
    """RDRNet-S (7.3 M parameters deployed). See :class:`RDRNet` for the arguments."""
    return _build('rdrnet_s', num_classes, **kwargs)


@manager.MODELS.add_component
def RDRNetM(num_classes=19, **kwargs):
    """RDRNet-M (26.0 M parameters deployed). See :class:`RDRNet` for the arguments."""
    return _build('rdrnet_m', num_classes, **kwargs)


@manager.MODELS.add_component
def RDRNetL(num_classes=19, **kwargs):
    """RDRNet-L (36.9 M parameters deployed). See :class:`RDRNet` for the arguments."""
    return _build('rdrnet_l', num_classes, **kwargs)


# Published figures (paper, Table; the release's README): parameters of the deployed graph
# with the auxiliary head, GFLOPs at 1024x2048, Cityscapes mIoU, RTX 3090 FPS at 1024x2048.
for _name, _factory, _params, _gmacs, _published in (
        ('rdrnet_s_simple', RDRNetSSimple, 7_200_000, 41.0, {'cityscapes_val_miou': 76.7, 'cityscapes_test_miou': 75.4, 'gpu_fps': 134.6}),
        ('rdrnet_s', RDRNetS, 7_300_000, 43.4, {'cityscapes_val_miou': 76.8, 'cityscapes_test_miou': 76.0, 'gpu_fps': 129.4}),
        ('rdrnet_m', RDRNetM, 26_000_000, 162.0, {'cityscapes_val_miou': 78.8, 'cityscapes_test_miou': 78.3, 'gpu_fps': 52.5}),
        ('rdrnet_l', RDRNetL, 36_900_000, 238.0, {'cityscapes_val_miou': 79.6, 'cityscapes_test_miou': 78.6, 'gpu_fps': 39.0})):
    register_variant(Variant(name=_name, family='RDRNet', model_type=_factory.__name__, factory=_factory,
                             params=_params, gmacs=_gmacs, reference=('torch_rdrnet', _name), published=_published,
                             convert=convert_release))
