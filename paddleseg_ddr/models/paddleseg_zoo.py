"""The accurate models seed 004 compares with — DeepLabV3, DeepLabV3+, PSPNet, DANet, GloRe and
EMANet — as PaddleSeg 2.8 builds them (ResNet*_vd backbones at output stride 8), registered
under the project's names so that they train, evaluate, export and deploy through its engine.

Each class subclasses PaddleSeg's model and keeps its layers and parameter names: a PaddleSeg
model-zoo checkpoint loads as it is (``pretrained``). PaddleSeg itself is not modified. What
PaddleSeg 2.8.0 does wrong on Paddle 3.3.1 / paddle2onnx 2.1 in this path, and what is done here:

* PSPNet's pyramid pooling (``layers.PPModule``) uses ``AdaptiveAvgPool2D`` with bins 2, 3
  and 6: paddle2onnx converts adaptive pooling only for a static input shape ("Adaptive only
  support static input shape") and then aborts the whole process (SIGABRT), so a dynamic-size
  export never reaches ONNX Runtime. Here the pooling is :class:`AdaptiveAvgPool2DMatmul`: the
  same bins (start floor(i*n/b), end ceil((i+1)*n/b)) as two small averaging matrices built
  from the runtime size, which every engine runs at any input size;
* PSPNet, GloRe and EMANet compute their auxiliary head in eval mode too (PaddleSeg returns two
  logits at evaluation and puts the auxiliary branch into every exported graph); here auxiliary
  heads run in training only and ``aux_head: False`` drops them;
* DANet feeds its position-attention features to the channel-attention auxiliary classifier
  (``aux_head_cam`` twice), so ``aux_head_pam`` never gets a gradient (and multi-card
  ``DataParallel`` stops on unused parameters); here each branch has its own classifier, as
  in the DANet paper;
* EMANet's auxiliary head is built for 1024 input channels whatever the backbone (ResNet-50/101
  layer3): with a ResNet-18/34_vd it fails. Here it reads the backbone's own layer3 width;
* the backbones' ``pretrained`` is loaded by PaddleSeg with ``paddle.load`` (a pickle) after a
  download from a URL; here ImageNet weights are ``backbone_pretrained`` (a local file, or a URL
  fetched into PaddleSeg's cache when there is a network), read with the project's restricted
  reader. The configs leave both empty: nothing is downloaded;
* ``CrossEntropyLoss`` fails on Paddle 3 (int64 times float32): configs use
  ``DDRCrossEntropyLoss``, the same rule.

All six return ``[logits, aux...]`` in training and ``[logits]`` in eval, each at the input
size (bilinear, ``align_corners`` as configured; DANet resizes with ``align_mode=1`` as PaddleSeg
does). Export folds the conv+BN pairs (:meth:`reparameterize`).
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager
from paddleseg.models import layers
from paddleseg.models.backbones import resnet_vd
from paddleseg.models.danet import DANet as _PaddleSegDANet
from paddleseg.models.deeplab import DeepLabV3 as _PaddleSegDeepLabV3
from paddleseg.models.deeplab import DeepLabV3P as _PaddleSegDeepLabV3P
from paddleseg.models.emanet import EMANet as _PaddleSegEMANet
from paddleseg.models.glore import GloRe as _PaddleSegGloRe
from paddleseg.models.pspnet import PSPNet as _PaddleSegPSPNet

from ..errors import UserError
from ..utils.weights import load_pretrained
from .paddleseg_compat import fold_paddleseg_conv_bn, resolve_pretrained
from .blocks import AdaptiveAvgPool2DMatmul
from .variants import Variant, register_variant

BACKBONE_DEPTHS = (18, 34, 50, 101, 152)


def recipe_backbone(depth=101, multi_grid=(1, 1, 1), in_channels=3):
    """PaddleSeg's ``ResNet<depth>_vd`` at output stride 8 (layer3 dilated 2, layer4 4 times
    ``multi_grid``), no weights loaded."""
    if depth not in BACKBONE_DEPTHS:
        raise UserError(f'backbone_depth {depth!r} is not a ResNet_vd depth: use one of '
                        f"{', '.join(map(str, BACKBONE_DEPTHS))}.")
    return getattr(resnet_vd, f'ResNet{depth}_vd')(output_stride=8, multi_grid=tuple(multi_grid),
                                                   in_channels=in_channels)


def _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained):
    """The model's backbone: a ``backbone:`` component of the config (PaddleSeg's way) or the
    recipe's ResNet_vd; ImageNet weights from ``backbone_pretrained`` through the project's reader."""
    if backbone is None:
        backbone = recipe_backbone(backbone_depth, multi_grid, in_channels)
    elif getattr(backbone, 'pretrained', None):
        raise UserError('model.backbone.pretrained is loaded by PaddleSeg with a pickle reader: leave it empty '
                        'and give the ImageNet weights as model.backbone_pretrained=<file> instead.')
    if backbone_pretrained:
        load_pretrained(backbone, resolve_pretrained(backbone_pretrained, 'backbone weights',
                                                     'model.backbone_pretrained'))
    return backbone


def _no_aux_head(model, aux_head):
    """DeepLabV3/V3+ have no auxiliary head in PaddleSeg's recipe; ``aux_head: False`` is accepted
    so that tools asking every model for its deployed graph (e.g. tools/benchmark.py) can."""
    if aux_head:
        raise UserError(f'{model} has no auxiliary head (PaddleSeg\'s recipe trains the main head only): '
                        'remove model.aux_head or set it to False.')


class _ZooModel:
    """What the six share: optional pretrained whole-model weights, the conv+BN folding for
    export, and the hook that keeps auxiliary heads out of eval/export."""

    def _load_pretrained(self, pretrained):
        if pretrained:
            load_pretrained(self, resolve_pretrained(pretrained, 'pretrained weights', 'model.pretrained'))

    def _resize_all(self, logits, x):
        size = paddle.shape(x)[2:]
        return [F.interpolate(logit, size, mode='bilinear', align_corners=self.align_corners) for logit in logits]

    def reparameterize(self):
        """Fold the conv+BN pairs (export; see :mod:`.reparameterize`)."""
        fold_paddleseg_conv_bn(self)


_COMMON_ARGS = """
        num_classes (int, optional): Number of classes. Default: 19.
        backbone (paddle.nn.Layer, optional): A ``backbone:`` component of the config (PaddleSeg's
            way, e.g. ResNet101_vd with output_stride 8; its own ``pretrained`` must stay empty).
            Default: None, the recipe's ResNet<backbone_depth>_vd at output stride 8.
        backbone_depth (int, optional): Depth of the built-in ResNet_vd (18, 34, 50, 101, 152).
        backbone_pretrained (str, optional): ImageNet weights of the backbone (a .pdparams path,
            e.g. PaddleSeg's resnet101_vd_ssld model.pdparams, or its URL). Default: None.
        in_channels (int, optional): Input channels of the built-in backbone. Default: 3.
        align_corners (bool, optional): Of the logit resizes. Default: False (PaddleSeg's recipe).
        pretrained (str, optional): Weights of the whole model (path or URL), e.g. PaddleSeg's
            model-zoo Cityscapes model.pdparams. Default: None."""


@manager.MODELS.add_component
class DDRDeepLabV3(_ZooModel, _PaddleSegDeepLabV3):
    __doc__ = f"""PaddleSeg's ``DeepLabV3`` (ASPP on the last backbone stage); no auxiliary head.

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): Dilation multipliers of the built-in backbone's last stage.
            Default: (1, 2, 4), PaddleSeg's recipe.
        backbone_indices, aspp_ratios, aspp_out_channels: PaddleSeg's. Defaults: (3,),
            (1, 12, 24, 36), 256 (the recipe for output stride 8).
        aux_head (bool, optional): Must be False (there is none). Default: False.
    Returns (from forward): ``[logits]``, [N, num_classes, H, W].
    """
    TRAIN_ONLY_PREFIXES = ()
    CLASSIFIER_PREFIXES = ('head.cls.',)

    def __init__(self, num_classes=19, backbone=None, backbone_depth=101, multi_grid=(1, 2, 4),
                 backbone_pretrained=None, backbone_indices=(3,), aspp_ratios=(1, 12, 24, 36),
                 aspp_out_channels=256, aux_head=False, in_channels=3, align_corners=False, pretrained=None):
        _no_aux_head(type(self).__name__, aux_head)
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices),
                         aspp_ratios=tuple(aspp_ratios), aspp_out_channels=aspp_out_channels,
                         align_corners=align_corners, pretrained=None)
        self._load_pretrained(pretrained)


@manager.MODELS.add_component
class DDRDeepLabV3P(_ZooModel, _PaddleSegDeepLabV3P):
    __doc__ = f"""PaddleSeg's ``DeepLabV3P`` (DeepLabV3+: ASPP + a decoder on the stride-4 features);
    no auxiliary head.

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): As DDRDeepLabV3. Default: (1, 2, 4).
        backbone_indices, aspp_ratios, aspp_out_channels: PaddleSeg's. Defaults: (0, 3),
            (1, 12, 24, 36), 256.
        aux_head (bool, optional): Must be False (there is none). Default: False.
    Returns (from forward): ``[logits]``, [N, num_classes, H, W].
    """
    TRAIN_ONLY_PREFIXES = ()
    CLASSIFIER_PREFIXES = ('head.decoder.conv.',)

    def __init__(self, num_classes=19, backbone=None, backbone_depth=101, multi_grid=(1, 2, 4),
                 backbone_pretrained=None, backbone_indices=(0, 3), aspp_ratios=(1, 12, 24, 36),
                 aspp_out_channels=256, aux_head=False, in_channels=3, align_corners=False, pretrained=None):
        _no_aux_head(type(self).__name__, aux_head)
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices),
                         aspp_ratios=tuple(aspp_ratios), aspp_out_channels=aspp_out_channels,
                         align_corners=align_corners, pretrained=None)
        self._load_pretrained(pretrained)


@manager.MODELS.add_component
class DDRPSPNet(_ZooModel, _PaddleSegPSPNet):
    __doc__ = f"""PaddleSeg's ``PSPNet`` with an exportable pyramid pooling
    (:class:`AdaptiveAvgPool2DMatmul`, same bins).

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): Default: (1, 1, 1), PaddleSeg's recipe.
        backbone_indices, pp_out_channels, bin_sizes: PaddleSeg's. Defaults: (2, 3), 1024, (1, 2, 3, 6).
        aux_head (bool, optional): The auxiliary head on layer3 (PaddleSeg's
            ``enable_auxiliary_loss``; training only). Default: True.
    Returns (from forward): ``[logits]`` in eval, ``[logits, aux]`` in training.
    """
    TRAIN_ONLY_PREFIXES = ('head.auxlayer.',)
    CLASSIFIER_PREFIXES = ('head.conv.', 'head.auxlayer.conv.')

    def __init__(self, num_classes=19, backbone=None, backbone_depth=101, multi_grid=(1, 1, 1),
                 backbone_pretrained=None, backbone_indices=(2, 3), pp_out_channels=1024,
                 bin_sizes=(1, 2, 3, 6), aux_head=True, in_channels=3, align_corners=False, pretrained=None):
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices),
                         pp_out_channels=pp_out_channels, bin_sizes=tuple(bin_sizes),
                         enable_auxiliary_loss=bool(aux_head), align_corners=align_corners, pretrained=None)
        self.aux_head = bool(aux_head)
        for stage in self.head.psp_module.stages:
            pool = stage._sub_layers['0']
            stage._sub_layers['0'] = AdaptiveAvgPool2DMatmul(pool._output_size)
        self._load_pretrained(pretrained)

    def forward(self, x):
        self.head.enable_auxiliary_loss = self.training and self.aux_head  # aux head: training only
        return self._resize_all(self.head(self.backbone(x)), x)


@manager.MODELS.add_component
class DDRDANet(_ZooModel, _PaddleSegDANet):
    __doc__ = f"""PaddleSeg's ``DANet`` (position and channel attention on the last stage), each
    attention branch with its own auxiliary classifier.

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): Default: (1, 1, 1), PaddleSeg's recipe.
        backbone_indices: PaddleSeg's. Default: (2, 3).
        aux_head (bool, optional): The three auxiliary classifiers (channel-attention branch,
            position-attention branch, backbone features; training only). Default: True.
    Returns (from forward): ``[logits]`` in eval, ``[logits, cam, pam, aux]`` in training
    (PaddleSeg's order and recipe coefficients 1, 1, 1, 0.4).
    """
    TRAIN_ONLY_PREFIXES = ('head.aux_head.', 'head.aux_head_pam.', 'head.aux_head_cam.')
    CLASSIFIER_PREFIXES = ('head.cls_head.',) + TRAIN_ONLY_PREFIXES

    def __init__(self, num_classes=19, backbone=None, backbone_depth=101, multi_grid=(1, 1, 1),
                 backbone_pretrained=None, backbone_indices=(2, 3), aux_head=True, in_channels=3,
                 align_corners=False, pretrained=None):
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices),
                         align_corners=align_corners, pretrained=None)
        self.aux_head = bool(aux_head)
        if not self.aux_head:
            for name in ('aux_head', 'aux_head_pam', 'aux_head_cam'):
                delattr(self.head, name)
        self._load_pretrained(pretrained)

    def forward(self, x):
        head = self.head
        feats = self.backbone(x)[self.backbone_indices[-1]]
        channel = head.conv1(head.cam(head.channel_conv(feats)))
        position = head.conv2(head.pam(head.position_conv(feats)))
        logits = [head.cls_head(position + channel)]
        if self.training and self.aux_head:
            logits += [head.aux_head_cam(channel), head.aux_head_pam(position), head.aux_head(feats)]
        size = paddle.shape(x)[2:]
        return [F.interpolate(logit, size, mode='bilinear', align_corners=self.align_corners, align_mode=1)
                for logit in logits]


@manager.MODELS.add_component
class DDRGloRe(_ZooModel, _PaddleSegGloRe):
    __doc__ = f"""PaddleSeg's ``GloRe`` (graph-based global reasoning unit on the last stage).

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): Default: (1, 1, 1), PaddleSeg's recipe.
        backbone_indices, gru_channels, gru_num_state, gru_num_node: PaddleSeg's. Defaults:
            (2, 3), 512, 128, 64.
        aux_head (bool, optional): The auxiliary head on layer3 (training only). Default: True.
    Returns (from forward): ``[logits]`` in eval, ``[logits, aux]`` in training.
    """
    TRAIN_ONLY_PREFIXES = ('head.auxlayer.',)
    CLASSIFIER_PREFIXES = ('head.classifier.', 'head.auxlayer.conv.')

    def __init__(self, num_classes=19, backbone=None, backbone_depth=50, multi_grid=(1, 1, 1),
                 backbone_pretrained=None, backbone_indices=(2, 3), gru_channels=512, gru_num_state=128,
                 gru_num_node=64, aux_head=True, in_channels=3, align_corners=False, pretrained=None):
        if gru_channels != 512:  # PaddleSeg's classifier is built for 512 input channels
            raise UserError(f'model.gru_channels must be 512 (PaddleSeg\'s GloRe classifier reads 512 channels), '
                            f'got {gru_channels}.')
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices), gru_channels=gru_channels,
                         gru_num_state=gru_num_state, gru_num_node=gru_num_node,
                         enable_auxiliary_loss=bool(aux_head), align_corners=align_corners, pretrained=None)
        self.aux_head = bool(aux_head)
        if not self.aux_head:
            delattr(self.head, 'auxlayer')
        self._load_pretrained(pretrained)

    def forward(self, x):
        self.head.enable_auxiliary_loss = self.training and self.aux_head  # aux head: training only
        return self._resize_all(self.head(self.backbone(x)), x)


@manager.MODELS.add_component
class DDREMANet(_ZooModel, _PaddleSegEMANet):
    __doc__ = f"""PaddleSeg's ``EMANet`` (expectation-maximisation attention). In training the
    EM bases ``head.emau.mu`` follow a moving average of the batch's (``momentum``; averaged
    over the ranks of a multi-card run), as PaddleSeg does; eval and export use the stored bases.

    Args:{_COMMON_ARGS}
        multi_grid (tuple, optional): Default: (1, 1, 1), PaddleSeg's recipe.
        backbone_indices, ema_channels, gc_channels, num_bases, stage_num, momentum,
            concat_input: PaddleSeg's. Defaults: (2, 3), 512, 256, 64, 3, 0.1, True.
        aux_head (bool, optional): The auxiliary head on layer3 (training only), built for the
            backbone's layer3 width. Default: True.
    Returns (from forward): ``[logits]`` in eval, ``[logits, aux]`` in training.
    """
    TRAIN_ONLY_PREFIXES = ('head.aux.',)
    CLASSIFIER_PREFIXES = ('head.cls.', 'head.aux.2.')

    def __init__(self, num_classes=19, backbone=None, backbone_depth=101, multi_grid=(1, 1, 1),
                 backbone_pretrained=None, backbone_indices=(2, 3), ema_channels=512, gc_channels=256,
                 num_bases=64, stage_num=3, momentum=0.1, concat_input=True, aux_head=True, in_channels=3,
                 align_corners=False, pretrained=None):
        backbone = _backbone(backbone, backbone_depth, multi_grid, in_channels, backbone_pretrained)
        super().__init__(num_classes, backbone, backbone_indices=tuple(backbone_indices), ema_channels=ema_channels,
                         gc_channels=gc_channels, num_bases=num_bases, stage_num=stage_num, momentum=momentum,
                         concat_input=concat_input, enable_auxiliary_loss=bool(aux_head),
                         align_corners=align_corners, pretrained=None)
        self.aux_head = bool(aux_head)
        if self.aux_head:  # PaddleSeg builds it for 1024 channels (ResNet-50/101's layer3) whatever the backbone
            self.head.aux = nn.Sequential(
                layers.ConvBNReLU(backbone.feat_channels[backbone_indices[0]], 256, kernel_size=3),
                nn.Dropout2D(p=0.1), nn.Conv2D(256, num_classes, 1))
        else:
            delattr(self.head, 'aux')
        self._load_pretrained(pretrained)

    def forward(self, x):
        self.head.enable_auxiliary_loss = self.training and self.aux_head  # aux head: training only
        feats = self.backbone(x)
        return self._resize_all(self.head([feats[i] for i in self.backbone_indices]), x)


# Published Cityscapes mIoU (%). 'cityscapes_val_miou*': PaddleSeg 2.8's model zoo (configs/<model>/
# README.md), its own weights for exactly this model and backbone (1024x512 crops, 80k iterations;
# single scale / flip / multi-scale + flip). 'cityscapes_test_miou': the papers' test-server figures
# (fine annotations only): PSPNet's 78.4 from seed 004's table; DANet (not in that table, and
# PaddleSeg has no ResNet-101 result) its paper's 81.5.
# Not published, measured on these models: params (trainable, 19 classes, inference graph = no
# auxiliary heads, BN counted, before folding; checked by tests/models/test_paddleseg_zoo.py) and
# gmacs (complexity.count_macs, convolutions at 1024x2048: counted at 128x256, 256x512 and
# 512x1024 and extrapolated, exact because every convolution's work is either proportional to the
# pixel count or fixed (ASPP image pooling, PSP bins): the three sizes fit one line exactly, and
# DeepLabV3 counted directly at 1024x2048 gives the same 1919.926403072 G).
# Attention and graph matrix products are not convolutions and are not in gmacs: at 1024x2048
# DANet's position attention adds 618.5 G (N = 128*256 positions: N*N*64 + N*N*512) and its
# channel attention 17.2 G; EMANet's EM steps about 7.5 G; GloRe's projections about 0.5 G.
ZOO = (
    ('deeplabv3_r101', 'DeepLabV3', DDRDeepLabV3, 'ResNet101_vd', 58_060_659, 1919.926,
     {'cityscapes_val_miou': 80.85, 'cityscapes_val_miou_flip': 81.09, 'cityscapes_val_miou_ms_flip': 81.78}),
    ('deeplabv3p_r101', 'DeepLabV3+', DDRDeepLabV3P, 'ResNet101_vd', 45_715_523, 1530.961,
     {'cityscapes_val_miou': 81.10, 'cityscapes_val_miou_flip': 81.38, 'cityscapes_val_miou_ms_flip': 81.76}),
    ('pspnet_r101', 'PSPNet', DDRPSPNet, 'ResNet101_vd', 84_491_123, 2665.633,
     {'cityscapes_val_miou': 80.48, 'cityscapes_val_miou_flip': 80.74, 'cityscapes_val_miou_ms_flip': 81.29,
      'cityscapes_test_miou': 78.4}),
    ('danet_r101', 'DANet', DDRDANet, 'ResNet101_vd', 66_456_565, 2212.143,
     {'cityscapes_test_miou': 81.5}),
    ('glore_r50', 'GloRe', DDRGloRe, 'ResNet50_vd', 24_772_211, 847.417,
     {'cityscapes_val_miou': 78.26, 'cityscapes_val_miou_flip': 78.61, 'cityscapes_val_miou_ms_flip': 79.12}),
    ('emanet_r101', 'EMANet', DDREMANet, 'ResNet101_vd', 58_978_931, 1967.171,
     {'cityscapes_val_miou': 80.00, 'cityscapes_val_miou_flip': 80.23, 'cityscapes_val_miou_ms_flip': 80.76}),
)
BACKBONES = {name: backbone for name, _, _, backbone, _, _, _ in ZOO}

for _name, _family, _cls, _backbone_name, _params, _gmacs, _published in ZOO:
    register_variant(Variant(name=_name, family=_family, model_type=_cls.__name__, factory=_cls,
                             params=_params, gmacs=_gmacs, published=_published))
