"""BiSeNetV1 (ResNet18_vd) and BiSeNetV2 as PaddleSeg 2.8 builds them, registered under the
project's names so that they train, evaluate, export and deploy through its engine.

Both keep PaddleSeg's layers and parameter names (a PaddleSeg checkpoint of either model
loads as it is); PaddleSeg itself is not modified. What PaddleSeg 2.8.0 does wrong on
Paddle 3.3.1 in this path, and what is done here instead:

* ``BiseNetV1`` (paddleseg/models/bisenetv1.py)

  - its heads upsample by ``scale_factor=8``: the logits come out at 8 * ceil(H/8) x
    8 * ceil(W/8), not at the input size, so the loss (and the metrics, and prediction) fail
    on any image whose sides are not multiples of 8 ("Input(Logits) and Input(Label) should
    in same shape"). Here every head resizes to the input size (bilinear,
    ``align_corners=True`` as PaddleSeg's heads: the same logits when the sides are
    multiples of 8);
  - paddle2onnx 2.1 cannot convert its exported graph: the ``scale_factor`` resize becomes a
    ``bilinear_interp`` whose ``scale`` attribute paddle2onnx's PIR parser rejects ("the 0th
    elementwise MUST be ir::FloatAttribute"). Resizing to a size avoids it;
  - ``pretrained`` is stored but never loaded (``init_weight`` is not called); here it is;
  - its forward adds in place (``fm += last_fm``), which Paddle 3's static graph warns
    about ("PIR not support input out tensor"); here it does not.

* ``BiSeNetV2`` (paddleseg/models/bisenet.py) runs unchanged; the subclass adds what the
  project's tools read (``TRAIN_ONLY_PREFIXES``, ``CLASSIFIER_PREFIXES``), loads
  ``pretrained`` through the project's restricted reader instead of a plain
  ``paddle.load``, folds its conv+BN pairs for export (:meth:`reparameterize`), and makes
  the auxiliary heads optional (``aux_head``, both models).

* PaddleSeg's ``CrossEntropyLoss`` and ``OhemCrossEntropyLoss`` fail on Paddle 3 (int64
  times float32): configs use ``DDRCrossEntropyLoss`` and ``DDROhemCrossEntropyLoss``.

Pretrained files: a path, or a URL as in PaddleSeg's configs. A URL is fetched into
PaddleSeg's cache (``~/.paddleseg/pretrained_model/<name>/model.pdparams``) as PaddleSeg does,
and a file already there is used without the network; a download that fails or a missing
path stops with one message saying what to do.
"""

import paddle
import paddle.nn as nn
from paddleseg.cvlibs import manager
from paddleseg.models.backbones.resnet_vd import ResNet18_vd
from paddleseg.models.bisenet import BiSeNetV2 as _PaddleSegBiSeNetV2
from paddleseg.models.bisenetv1 import BiseNetV1 as _PaddleSegBiseNetV1
from paddleseg.models.bisenetv1 import SpatialPath

from ..errors import UserError
from ..utils.weights import load_pretrained
from .paddleseg_compat import fold_paddleseg_conv_bn, resolve_pretrained
from .variants import Variant, register_variant

def _resize(x, size):
    return nn.functional.interpolate(x, size=size, mode='bilinear', align_corners=True)


@manager.MODELS.add_component
class DDRBiSeNetV1(_PaddleSegBiseNetV1):
    """PaddleSeg's BiSeNetV1 (``BiseNetV1``), logits at the input size; see the module notes.

    Args:
        num_classes (int, optional): Number of classes. Default: 19.
        output_stride (int, optional): Output stride of the built-in ResNet18_vd backbone:
            8 (its last two stages dilated, PaddleSeg's recipe), 16, or None (32, no
            dilation, mmsegmentation's setting). Default: 8.
        backbone_pretrained (str, optional): ImageNet weights of the built-in backbone, a
            path or a URL (PaddleSeg's recipe: ``resnet18_vd_ssld_v2.tar.gz``). Default: None.
        backbone (paddle.nn.Layer, optional): Another backbone returning four feature maps of
            64/128/256/512 channels (a ``backbone:`` component in the config, PaddleSeg's
            way); replaces the built-in one. Default: None.
        conv_channel (int, optional): Width of the context path. Default: 128.
        in_channels (int, optional): Input channels (PaddleSeg's builder passes the dataset's).
            Default: 3.
        aux_head (bool, optional): Build the two context-path heads (training only; PaddleSeg
            always builds them). Default: True.
        pretrained (str, optional): Weights of the whole model (path or URL). Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux_a, aux_b]`` in training (the
        heads on the two refined context features, the deepest last; PaddleSeg returns them in
        the reverse order, main last), each [N, num_classes, H, W].
    """
    TRAIN_ONLY_PREFIXES = ('heads.0.', 'heads.1.')
    CLASSIFIER_PREFIXES = ('heads.0.conv_1x1.', 'heads.1.conv_1x1.', 'heads.2.conv_1x1.')

    def __init__(self, num_classes=19, output_stride=8, backbone_pretrained=None, backbone=None,
                 conv_channel=128, in_channels=3, aux_head=True, pretrained=None):
        if backbone is not None and backbone_pretrained:
            raise UserError('model.backbone_pretrained is for the built-in ResNet18_vd backbone: with a '
                            '`backbone:` component, give its own `pretrained:` instead.')
        if backbone is None:
            backbone = ResNet18_vd(output_stride=output_stride, in_channels=in_channels)
            if backbone_pretrained:
                load_pretrained(backbone, resolve_pretrained(backbone_pretrained, 'backbone weights',
                                                             'model.backbone_pretrained'))
        super().__init__(num_classes, backbone, conv_channel=conv_channel, pretrained=None)
        if in_channels != 3:  # PaddleSeg's spatial path takes RGB only
            self.spatial_path = SpatialPath(in_channels, 128)
        self.aux_head = bool(aux_head)
        if not self.aux_head:  # placeholders keep the main head's name, heads.2
            self.heads[0], self.heads[1] = nn.Identity(), nn.Identity()
        if pretrained:
            load_pretrained(self, resolve_pretrained(pretrained, 'pretrained weights', 'model.pretrained'))

    def forward(self, x):
        size = paddle.shape(x)[2:]
        spatial = self.spatial_path(x)
        c32, c16, c8 = self.backbone(x)[:0:-1]  # deepest first; the stride-4 map is not used
        context = _resize(self.global_context(c32), paddle.shape(c32)[2:])
        features = []
        for fm, arm, refine, target in zip((c32, c16), self.arms, self.refines, (c16, c8)):
            context = refine(_resize(arm(fm) + context, paddle.shape(target)[2:]))
            features.append(context)
        features.append(self.ffm(spatial, context))
        with_aux = self.training and self.aux_head
        pairs = list(zip(self.heads, features)) if with_aux else [(self.heads[-1], features[-1])]
        return [_resize(head.conv_1x1(head.conv_3x3(feature)), size) for head, feature in pairs[::-1]]

    def reparameterize(self):
        """Fold the conv+BN pairs (export; see :mod:`.reparameterize`)."""
        fold_paddleseg_conv_bn(self)


@manager.MODELS.add_component
class DDRBiSeNetV2(_PaddleSegBiSeNetV2):
    """PaddleSeg's ``BiSeNetV2``; see the module notes.

    Args:
        num_classes (int, optional): Number of classes. Default: 19.
        lambd (float, optional): Width factor of the semantic branch. Default: 0.25.
        align_corners (bool, optional): Of the resizes. Default: False.
        in_channels (int, optional): Input channels. Default: 3.
        aux_head (bool, optional): Build the four auxiliary heads (training only; PaddleSeg
            always builds them). Default: True.
        pretrained (str, optional): Weights of the whole model (path or URL). Default: None.
    Returns (from forward):
        list[Tensor]: ``[logits]`` in eval mode, ``[logits, aux1, aux2, aux3, aux4]`` in
        training (the four semantic-branch heads), each [N, num_classes, H, W].
    """
    TRAIN_ONLY_PREFIXES = ('aux_head1.', 'aux_head2.', 'aux_head3.', 'aux_head4.')
    CLASSIFIER_PREFIXES = ('head.conv_1x1.',) + tuple(f'aux_head{i}.conv_1x1.' for i in range(1, 5))

    def __init__(self, num_classes=19, lambd=0.25, align_corners=False, in_channels=3, aux_head=True,
                 pretrained=None):
        super().__init__(num_classes, lambd=lambd, align_corners=align_corners, in_channels=in_channels,
                         pretrained=None)  # PaddleSeg's Kaiming initialisation
        self.aux_head = bool(aux_head)
        if not self.aux_head:
            for i in range(1, 5):
                delattr(self, f'aux_head{i}')
        if pretrained:
            load_pretrained(self, resolve_pretrained(pretrained, 'pretrained weights', 'model.pretrained'))

    def forward(self, x):
        """PaddleSeg's forward, with the auxiliary heads optional."""
        feat1, feat2, feat3, feat4, semantic = self.sb(x)
        logits = [self.head(self.bga(self.db(x), semantic))]
        if self.training and self.aux_head:
            logits += [self.aux_head1(feat1), self.aux_head2(feat2), self.aux_head3(feat3), self.aux_head4(feat4)]
        size = paddle.shape(x)[2:]
        return [nn.functional.interpolate(logit, size, mode='bilinear', align_corners=self.align_corners)
                for logit in logits]

    def reparameterize(self):
        """Fold the conv+BN pairs (export; see :mod:`.reparameterize`). The context block's BN
        on the pooled vector precedes its convolution and stays."""
        fold_paddleseg_conv_bn(self)


# PaddleSeg's published Cityscapes val mIoU (configs/bisenet, configs/bisenetv1 READMEs of
# PaddleSeg 2.8: single scale / flip / multi-scale + flip). PaddleSeg publishes no sizes: params
# (deployed graph, no auxiliary heads, 19 classes) and gmacs (convolutions at 1024x2048) are
# measured on these models (tests/models/test_bisenet.py), not published figures.
register_variant(Variant(
    name='bisenetv1', family='BiSeNet', model_type='DDRBiSeNetV1', factory=DDRBiSeNetV1,
    params=12_918_643, gmacs=452.505,
    published={'cityscapes_val_miou': 75.19, 'cityscapes_val_miou_flip': 75.99,
               'cityscapes_val_miou_ms_flip': 76.81}))
register_variant(Variant(
    name='bisenetv2', family='BiSeNet', model_type='DDRBiSeNetV2', factory=DDRBiSeNetV2,
    params=2_315_259, gmacs=64.032,
    published={'cityscapes_val_miou': 73.19, 'cityscapes_val_miou_flip': 74.19,
               'cityscapes_val_miou_ms_flip': 74.61}))
