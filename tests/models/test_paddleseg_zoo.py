"""Seed 004's comparison models as PaddleSeg 2.8 builds them (DeepLabV3, DeepLabV3+, PSPNet,
DANet, GloRe, EMANet), run through the project: registration, the same layers and main logits
as PaddleSeg's own models, what PaddleSeg gets wrong and the project's classes do not, the
configs (recipe, losses per head, no download), sizes. Small backbones (ResNet18_vd) keep it
fast; the registered sizes are the configs' ResNet-101/50 ones. (Training, evaluation, export,
Paddle Inference and ONNX Runtime through the tools: tests/deploy/test_paddleseg_zoo_deploy.py.)"""
import functools
import glob
import os

import numpy as np
import paddle
import paddle.nn as nn
import pytest
import yaml
from paddleseg.cvlibs import manager

from paddleseg_ddr.engine import Builder, load_config
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.models import create_model, get_variant, list_variants
from paddleseg_ddr.models.blocks import AdaptiveAvgPool2DMatmul
from paddleseg_ddr.models.paddleseg_zoo import recipe_backbone
from random_bn import randomize_bn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
ZOO_DIR = os.path.join(ROOT, 'configs', 'paddleseg_zoo')
NAMES = ['deeplabv3_r101', 'deeplabv3p_r101', 'pspnet_r101', 'danet_r101', 'glore_r50', 'emanet_r101']
PADDLESEG_TYPE = {'deeplabv3_r101': 'DeepLabV3', 'deeplabv3p_r101': 'DeepLabV3P', 'pspnet_r101': 'PSPNet',
                  'danet_r101': 'DANet', 'glore_r50': 'GloRe', 'emanet_r101': 'EMANet'}
CONFIGS = {'deeplabv3_r101': 'deeplabv3_resnet101_os8_cityscapes_1024x512_80k.yml',
           'deeplabv3p_r101': 'deeplabv3p_resnet101_os8_cityscapes_1024x512_80k.yml',
           'pspnet_r101': 'pspnet_resnet101_os8_cityscapes_1024x512_80k.yml',
           'danet_r101': 'danet_resnet101_os8_cityscapes_1024x512_80k.yml',
           'glore_r50': 'glore_resnet50_os8_cityscapes_1024x512_80k.yml',
           'emanet_r101': 'emanet_resnet101_os8_cityscapes_1024x512_80k.yml'}
TRAIN_OUTPUTS = {'deeplabv3_r101': 1, 'deeplabv3p_r101': 1, 'pspnet_r101': 2, 'danet_r101': 4, 'glore_r50': 2,
                 'emanet_r101': 2}
# PaddleSeg's own arguments for the same network (its defaults where ours equal them).
PADDLESEG_ARGS = {'deeplabv3_r101': {'backbone_indices': (3,), 'aspp_ratios': (1, 12, 24, 36)},
                  'deeplabv3p_r101': {'backbone_indices': (0, 3), 'aspp_ratios': (1, 12, 24, 36)},
                  'pspnet_r101': {}, 'danet_r101': {'backbone_indices': (2, 3)}, 'glore_r50': {},
                  'emanet_r101': {}}
MULTI_GRID = {'deeplabv3_r101': (1, 2, 4), 'deeplabv3p_r101': (1, 2, 4)}


def small(name, **kwargs):
    """Our model with a ResNet18_vd backbone (random weights)."""
    return create_model(name, backbone_depth=18, **kwargs)


def paddleseg_model(name, depth=18, **kwargs):
    backbone = recipe_backbone(depth, MULTI_GRID.get(name, (1, 1, 1)))
    return manager.MODELS[PADDLESEG_TYPE[name]](19, backbone, **PADDLESEG_ARGS[name], **kwargs)


def test_registered_with_their_variants():
    names = [v.name for v in list_variants() if v.name in NAMES]
    assert names == NAMES
    published = {'deeplabv3_r101': 80.85, 'deeplabv3p_r101': 81.10, 'pspnet_r101': 80.48, 'glore_r50': 78.26,
                 'emanet_r101': 80.00}
    for name in NAMES:
        variant = get_variant(name)
        assert manager.MODELS[variant.model_type] is variant.factory
        assert variant.published.get('cityscapes_val_miou') == published.get(name)
        assert variant.params and variant.gmacs
        # PaddleSeg's own component stays registered and untouched
        assert manager.MODELS[PADDLESEG_TYPE[name]].__module__.startswith('paddleseg.models.')
    assert get_variant('pspnet_r101').published['cityscapes_test_miou'] == 78.4  # seed 004's table


@pytest.mark.parametrize('size', [(13, 17), (8, 8), (5, 7), (37, 64)])
def test_matmul_adaptive_pooling_equals_paddles_and_numpy(size):
    """The exportable pooling: Paddle's AdaptiveAvgPool2D and a NumPy loop over PyTorch's/Paddle's
    bins (floor(i*n/b) .. ceil((i+1)*n/b)), at sizes that do and do not divide."""
    x = np.random.default_rng(0).normal(size=(2, 3, *size)).astype(np.float32)
    for bins in (1, 2, 3, 6):
        ours = AdaptiveAvgPool2DMatmul(bins)(paddle.to_tensor(x)).numpy()
        theirs = nn.AdaptiveAvgPool2D(bins)(paddle.to_tensor(x)).numpy()
        by_hand = np.zeros((2, 3, bins, bins), np.float32)
        for i in range(bins):
            for j in range(bins):
                h0, h1 = i * size[0] // bins, -(-(i + 1) * size[0] // bins)
                w0, w1 = j * size[1] // bins, -(-(j + 1) * size[1] // bins)
                by_hand[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        np.testing.assert_allclose(ours, by_hand, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(theirs, by_hand, rtol=1e-5, atol=1e-6)


@functools.lru_cache(maxsize=None)
def trained_once(name):
    """Our small model after one training step's forward/backward (for the gradient check),
    then with random BN statistics, in eval mode; shared by the tests of this module."""
    paddle.seed(0)
    model = small(name)
    model.train()
    logits = model(paddle.randn([2, 3, 40, 56]))
    paddle.add_n([l.mean() for l in logits]).backward()
    no_grad = [k for k, p in model.named_parameters() if not p.stop_gradient and p.grad is None]
    model.clear_gradients()
    randomize_bn(model)
    model.eval()
    return model, [tuple(l.shape) for l in logits], no_grad


@pytest.mark.parametrize('name', NAMES)
def test_heads_in_training_and_without_aux(name):
    """Training returns one logit per loss term of the recipe, all at the input size, and every
    trainable parameter but EMANet's ema_mid_conv gets a gradient; aux_head=False leaves only
    the main logits and no training-only layer."""
    model, shapes, no_grad = trained_once(name)
    assert shapes == [(2, 19, 40, 56)] * TRAIN_OUTPUTS[name]
    # EMANet's EM iterations run without gradient (as in the EMANet release), so the 1x1 conv
    # before them never gets one
    assert no_grad == (['head.ema_mid_conv.weight', 'head.ema_mid_conv.bias'] if name == 'emanet_r101' else [])
    if TRAIN_OUTPUTS[name] > 1:
        bare = small(name, aux_head=False)
        bare.train()
        assert len(bare(paddle.randn([1, 3, 32, 32]))) == 1
        prefixes = type(bare).TRAIN_ONLY_PREFIXES
        assert prefixes and not [k for k in bare.state_dict() if k.startswith(prefixes)]
        with_aux = [k for k in model.state_dict() if k.startswith(prefixes)]
        assert with_aux and set(bare.state_dict()) == set(model.state_dict()) - set(with_aux)


@pytest.mark.parametrize('name', NAMES)
def test_same_layers_and_main_logits_as_paddleseg(name):
    """Our model has PaddleSeg's parameter names and shapes (its model-zoo checkpoints load), and
    with the same weights gives PaddleSeg's main logits in eval mode. (PaddleSeg's EMANet is
    built without its auxiliary head here: it only builds for 1024-channel layer3s.)"""
    ours, _, _ = trained_once(name)
    extra = {'enable_auxiliary_loss': False} if name == 'emanet_r101' else {}
    theirs = paddleseg_model(name, **extra)
    theirs.eval()
    # (PaddleSeg's EMAHead builds its 1024-channel auxiliary head even when disabled)
    mine = {k: v.shape for k, v in ours.state_dict().items() if not (extra and k.startswith('head.aux.'))}
    assert mine == {k: v.shape for k, v in theirs.state_dict().items() if not (extra and k.startswith('head.aux.'))}
    theirs.set_state_dict({k: v for k, v in ours.state_dict().items() if k in mine})
    x = paddle.to_tensor(np.random.default_rng(2).normal(size=(1, 3, 72, 100)).astype(np.float32))
    with paddle.no_grad():
        a, b = ours(x), theirs(x)
    assert len(a) == 1  # PaddleSeg returns its auxiliary logits in eval mode too (PSPNet, GloRe, EMANet)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=1e-4, atol=1e-4 * float(b[0].abs().max()))


def test_paddleseg_danet_leaves_the_pam_classifier_untrained():
    """PaddleSeg's DANet classifies both attention branches with aux_head_cam; ours uses
    aux_head_pam for the position branch (checked above: every parameter gets a gradient)."""
    paddle.seed(0)
    model = paddleseg_model('danet_r101')
    model.train()
    paddle.add_n([l.mean() for l in model(paddle.randn([1, 3, 32, 32]))]).backward()
    assert [k for k, p in model.named_parameters() if p.grad is None and not p.stop_gradient] == \
        ['head.aux_head_pam.1.weight', 'head.aux_head_pam.1.bias']


def test_emanet_on_a_small_backbone_and_its_moving_bases():
    """PaddleSeg's EMANet fails on ResNet18_vd (auxiliary head built for 1024 channels); ours
    builds it for the backbone. The EM bases move in training only and are saved."""
    with pytest.raises(ValueError, match='channel'):
        theirs = paddleseg_model('emanet_r101')
        theirs.train()
        theirs(paddle.randn([1, 3, 32, 32]))
    paddle.seed(0)
    model = small('emanet_r101')
    before = model.head.emau.mu.numpy().copy()
    model.eval()
    with paddle.no_grad():
        model(paddle.randn([1, 3, 32, 32]))
    np.testing.assert_array_equal(model.head.emau.mu.numpy(), before)
    model.train()
    model(paddle.randn([2, 3, 32, 32]))
    after = model.head.emau.mu.numpy()
    assert after.shape == before.shape and np.abs(after - before).max() > 1e-4
    np.testing.assert_array_equal(model.state_dict()['head.emau.mu'].numpy(), after)


def test_backbone_weights_load_from_a_local_file_only(tmp_path):
    """backbone_pretrained loads through the project's reader; a backbone component with its own
    pretrained (which PaddleSeg would unpickle) or a missing file is refused with what to do."""
    paddle.seed(3)
    source = recipe_backbone(18)
    path = str(tmp_path / 'r18.pdparams')
    paddle.save(source.state_dict(), path)
    model = small('deeplabv3_r101', backbone_pretrained=path)
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(model.backbone.state_dict()[key].numpy(), value.numpy())
    with pytest.raises(UserError, match='not found'):
        small('pspnet_r101', backbone_pretrained=str(tmp_path / 'missing.pdparams'))
    backbone = recipe_backbone(18)
    backbone.pretrained = path  # as PaddleSeg's ResNet_vd(pretrained=...) records it
    with pytest.raises(UserError, match='backbone_pretrained'):
        create_model('glore_r50', backbone=backbone)


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize('name', NAMES)
def test_configs_follow_the_recipe_and_build_the_registered_model(name):
    """Each Cityscapes config builds its registered model (same type, size as registered, no
    weights downloaded: no URL anywhere in it), with one loss term per training output."""
    path = os.path.join(ZOO_DIR, CONFIGS[name])
    cfg = load_config(path)
    dic = cfg.dic
    assert not [s for s in _strings(dic) if '://' in s]
    variant = get_variant(name)
    assert dic['model']['type'] == variant.model_type
    assert len(dic['loss']['types']) == len(dic['loss']['coef']) == TRAIN_OUTPUTS[name]
    assert dic['iters'] == 80000 and dic['batch_size'] == (1 if name == 'danet_r101' else 2)
    assert dic['train_dataset']['transforms'][1]['crop_size'] == [1024, 512]
    model = Builder(cfg).model
    skip = type(model).TRAIN_ONLY_PREFIXES or ('\0',)
    deployed = sum(int(p.numel()) for k, p in model.named_parameters() if not p.stop_gradient and not k.startswith(skip))
    assert deployed == variant.params


def test_every_zoo_config_is_tested_and_the_mini_config_builds():
    listed = {os.path.basename(p) for p in glob.glob(os.path.join(ZOO_DIR, '*.yml'))}
    assert listed == set(CONFIGS.values()) | {'base_cityscapes_1024x512_80k.yml'}
    cfg = load_config(os.path.join(ROOT, 'configs', 'quickstart', 'deeplabv3p_r18_zoo_mini_cityscapes.yml'))
    assert cfg.dic['model']['backbone']['type'] == 'ResNet18_vd'
    assert cfg.dic['model']['backbone']['output_stride'] == 8
    with open(os.path.join(ZOO_DIR, 'base_cityscapes_1024x512_80k.yml')) as f:
        base = yaml.safe_load(f)
    assert base['loss']['types'] == [{'type': 'DDRCrossEntropyLoss'}]
