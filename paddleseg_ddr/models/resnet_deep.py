"""The dilated deep-stem ResNet-50/101 of the GALD-DGCNet release (github.com/lxtGH/GALD-DGCNet,
``libs/models/GALDNet.py``, shared by GALD-Net and DGCNet), registered as a PaddleSeg backbone.

Neither PaddleSeg's ``ResNet*_vd`` nor mmsegmentation's ResNetV1c: the stem is 64-64-128
wide (theirs 32-32-64), the stem's third conv is followed by a separate ``bn1`` and the
max-pool rounds up (``ceil_mode=True``), layer3 is dilated 2 and layer4 dilated 4 with a
multi-grid (1, 2, 4), i.e. 3x3 dilations 4, 8, 16 in the three layer4 blocks. Attribute
names are the release's (``conv1.0/1/3/4/6``, ``bn1``, ``layer1..4``), so its ImageNet
checkpoints (``resnet50-deep.pth``, ``resnet101-deep.pth``) load by renaming BN buffers and
dropping ``fc.`` (see :mod:`.dgcnet_checkpoints`).

Interface (for the heads built on it: DGCNet, GALD-Net, GFF-Net):

    backbone = DeepStemResNet101()          # or DeepStemResNet50(); manager.BACKBONES type names
    feats = backbone(x)                     # [layer1, layer2, layer3, layer4]
    backbone.feat_channels                  # [256, 512, 1024, 2048]
    backbone.feat_strides                   # [4, 8, 8, 8] (layer1 at 1/4, the rest at 1/8)

The output sizes follow the release exactly: stem conv stride 2 -> ceil(H/2); max-pool 3/2/1
with ceil_mode -> ceil((ceil(H/2) - 1) / 2) + 1; layer2 stride 2 -> ceil(that / 2); layer3 and
layer4 keep layer2's size. Heads hold the backbone as ``self.backbone`` so that converted
release checkpoints (``backbone.conv1.0.weight`` ...) match.

Parameters (trainable, no fc): ResNet-50 23,631,808 (23.63 M), ResNet-101 42,623,936 (42.62 M),
equal to the release's (tests/models/test_resnet_deep.py).
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.weights import load_pretrained, read_params
from .blocks import ResNetBottleneck, make_stage

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2D(in_channels, out_channels, 3, stride=stride, padding=1, bias_attr=False)


class DeepStemResNet(nn.Layer):
    """Dilated ResNet with the deep stem, output stride 8.

    Args:
        depth (int): 50 or 101.
        in_channels (int, optional): Input channels. Default: 3.
        multi_grid (tuple, optional): Dilation multipliers of layer4's blocks (cycled), times
            layer4's dilation 4. Default: (1, 2, 4), the release's.
        pretrained (str, optional): A ``.pdparams`` / ``.safetensors`` file whose keys are
            the backbone's, bare or under ``backbone.`` (what tools/convert_weights.py
            writes from ``resnet*-deep.pth`` for a model holding this backbone). Default: None.
    Returns (from forward):
        list[Tensor]: layer1..layer4 outputs, channels ``feat_channels`` (256, 512, 1024,
        2048) at strides ``feat_strides`` (4, 8, 8, 8).
    """

    def __init__(self, depth=101, in_channels=3, multi_grid=(1, 2, 4), pretrained=None):
        super().__init__()
        if depth not in DEPTHS:
            raise UserError(f'DeepStemResNet depth {depth} is not one of {sorted(DEPTHS)}.')
        self.depth = depth
        blocks = DEPTHS[depth]
        # The third stem conv's BN is `bn1`, outside the Sequential: the release's layout.
        self.conv1 = nn.Sequential(
            _conv3x3(in_channels, 64, stride=2), nn.BatchNorm2D(64), nn.ReLU(),
            _conv3x3(64, 64), nn.BatchNorm2D(64), nn.ReLU(),
            _conv3x3(64, 128))
        self.bn1 = nn.BatchNorm2D(128)
        self.maxpool = nn.MaxPool2D(3, stride=2, padding=1, ceil_mode=True)
        block = ResNetBottleneck
        self.layer1 = make_stage(block, 128, 64, blocks[0], last_relu=True)
        self.layer2 = make_stage(block, 256, 128, blocks[1], stride=2, last_relu=True)
        self.layer3 = make_stage(block, 512, 256, blocks[2], last_relu=True, dilations=[2] * blocks[2])
        self.layer4 = make_stage(block, 1024, 512, blocks[3], last_relu=True,
                                 dilations=[4 * multi_grid[i % len(multi_grid)] for i in range(blocks[3])])
        self.feat_channels = [64 * block.expansion, 128 * block.expansion, 256 * block.expansion,
                              512 * block.expansion]
        self.feat_strides = [4, 8, 8, 8]
        # Paddle's default initialisation (Kaiming-normal convs, unit BN) is kept: the release
        # defines none (it starts from ImageNet weights), and a second pass would double the
        # build time (Paddle's CPU Gaussian sampler is slow).
        if pretrained:
            self.load_pretrained(pretrained)

    def load_pretrained(self, path):
        """Load backbone weights from ``path`` (keys bare or under ``backbone.``)."""
        path, params = read_params(path, 'pretrained backbone')
        params = {k[len('backbone.'):] if k.startswith('backbone.') else k: v for k, v in params.items()}
        state = self.state_dict()
        loaded = {k: v for k, v in params.items() if k in state and list(v.shape) == list(state[k].shape)}
        if not loaded:
            raise UserError(f"pretrained backbone '{path}' shares no tensor with {type(self).__name__}: convert the "
                            "release's resnet*-deep.pth with `python tools/convert_weights.py --src resnet101-deep.pth "
                            "--model dgcnet_r101 --kind imagenet --dst <file>.pdparams`.")
        self.set_state_dict(loaded)
        logger.info(f"Loaded {len(loaded)}/{len(state)} backbone tensors from '{path}'.")
        return loaded

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats


@manager.BACKBONES.add_component
def DeepStemResNet50(**kwargs):
    """Dilated deep-stem ResNet-50 (23.63 M parameters). See :class:`DeepStemResNet`."""
    return DeepStemResNet(depth=50, **kwargs)


@manager.BACKBONES.add_component
def DeepStemResNet101(**kwargs):
    """Dilated deep-stem ResNet-101 (42.62 M parameters). See :class:`DeepStemResNet`."""
    return DeepStemResNet(depth=101, **kwargs)


def up_align_corners(x, size):
    """The release's resize of logits to the input (and inside its heads): bilinear,
    ``align_corners=True``."""
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


def conv3x3_bn_relu(in_channels, out_channels):
    """The release heads' 3x3 conv (no bias) + BN + ReLU."""
    return nn.Sequential(nn.Conv2D(in_channels, out_channels, 3, padding=1, bias_attr=False),
                         nn.BatchNorm2D(out_channels), nn.ReLU())


class DeepStemSegNet(nn.Layer):
    """What the release's models on this backbone share (GALD-Net, DGCNet): the backbone as
    ``self.backbone``, a ``head`` on layer4, the auxiliary ``dsn`` head on layer3 (3x3 conv
    with bias, BN, ReLU or not as the model's release has it, Dropout2D(0.1), 1x1 classifier;
    logits in training only, declared in ``TRAIN_ONLY_PREFIXES``), every logit resized to the
    input with ``align_corners=True``. Subclasses build ``self.head`` after calling
    ``__init__`` and then :meth:`_finish`.
    """
    TRAIN_ONLY_PREFIXES = ('dsn.',)

    def __init__(self, backbone=None, depth=101, in_channels=3):
        super().__init__()
        self.backbone = DeepStemResNet(depth, in_channels=in_channels) if backbone is None else backbone

    def _finish(self, num_classes, head_channels, aux_head, dsn_relu, pretrained):
        channels = self.backbone.feat_channels[2]
        layers = [nn.Conv2D(channels, head_channels, 3, padding=1), nn.BatchNorm2D(head_channels)]
        layers += [nn.ReLU()] if dsn_relu else []
        layers += [nn.Dropout2D(0.1), nn.Conv2D(head_channels, num_classes, 1)]
        self.dsn = nn.Sequential(*layers) if aux_head else None
        if pretrained:
            load_pretrained(self, pretrained)

    def forward(self, x):
        size = paddle.shape(x)[2:]
        _, _, layer3, layer4 = self.backbone(x)
        logits = [self.head(layer4)]
        if self.training and self.dsn is not None:
            logits.append(self.dsn(layer3))
        return [up_align_corners(logit, size) for logit in logits]
