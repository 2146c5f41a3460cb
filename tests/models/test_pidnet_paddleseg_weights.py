"""PaddleSeg 2.9.1's PIDNet weights (mmseg layout, no stem conv bias) -> PIDNet, through the CLI.

The fixtures tests/data/paddleseg291_pidnet_{s,m,l}_keys.json are the key names and shapes of
PaddleSeg 2.9.1's ``PIDNet`` (19 classes), recorded once from its model; no PaddleSeg 2.9.1 code
is needed here. A random state dict in that layout goes through ``convert_weights --from
paddleseg_pidnet`` and each converted tensor is traced back to its source by value, so the checks
do not trust the renaming they test.
"""
import json
import re
import os

import numpy as np
import paddle
import pytest

import convert_weights  # tools/, on pytest's pythonpath
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.models.pidnet_checkpoints import STEM_BIASES

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data')
SIZES = {'pidnet_s': 's', 'pidnet_m': 'm', 'pidnet_l': 'l'}


def their_keys(model):
    with open(os.path.join(DATA, f'paddleseg291_pidnet_{SIZES[model]}_keys.json')) as f:
        return [(k, tuple(shape)) for k, shape in json.load(f)['keys']]


def their_state(model, seed=0):
    """A random state dict in PaddleSeg 2.9.1's layout: every tensor distinct (positive, as BN variances are)."""
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(0.01, 1.0, shape).astype(np.float32) for k, shape in their_keys(model)}


def convert(tmp_path, model, state, *extra):
    src, dst = str(tmp_path / f'{model}_paddleseg.pdparams'), str(tmp_path / f'{model}.pdparams')
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, src)
    report = convert_weights.main(['--src', src, '--from', 'paddleseg_pidnet', '--model', model, '--dst', dst, *extra])
    return report, {k: v.numpy() for k, v in paddle.load(dst).items()}


def fingerprint(array):
    return array.shape, array.tobytes()


@pytest.mark.parametrize('model', list(SIZES))
def test_every_key_maps_one_to_one_with_identical_values(tmp_path, model):
    theirs = their_state(model)
    report, ours = convert(tmp_path, model, theirs)
    assert report['left_at_init'] == [] and report['dropped'] == []
    assert sorted(report['zeroed']) == sorted(STEM_BIASES)
    assert len(report['loaded']) == len(theirs) and len(ours) == len(theirs) + len(STEM_BIASES)
    # trace every converted tensor back to its source by value and shape (all sources are distinct)
    source_of = {fingerprint(v): k for k, v in theirs.items()}
    assert len(source_of) == len(theirs)
    used = {}
    for key, value in ours.items():
        if key in STEM_BIASES:
            assert value.shape == ours[key.replace('.bias', '.weight')].shape[:1] and not value.any(), key
            continue
        assert fingerprint(value) in source_of, f'{key}: no tensor of the PaddleSeg file has these values/shape'
        used.setdefault(source_of[fingerprint(value)], []).append(key)
    unused = sorted(set(theirs) - set(used))
    assert not unused, 'PaddleSeg keys left unused: ' + ', '.join(unused[:5])
    assert all(len(keys) == 1 for keys in used.values()), {k: v for k, v in used.items() if len(v) > 1}


# Keys whose shapes cannot tell a wrong mapping: the two inputs of PagFM and LightBag (same
# shapes, asymmetric functions), the heads (S/M: P head and main head alike), the branches.
EXPECTED = {
    'backbone.pag_1.f_p._conv.weight': 'pag3.f_x.0.weight',  # P side: the release's x
    'backbone.pag_1.f_i._conv.weight': 'pag3.f_y.0.weight',  # I side: the release's y
    'backbone.pag_2.f_p._batch_norm._mean': 'pag4.f_x.1._mean',
    'backbone.pag_2.f_i._batch_norm.weight': 'pag4.f_y.1.weight',
    'backbone.dfm.f_p._conv.weight': 'dfm.conv_p.0.weight',
    'backbone.dfm.f_i._conv.weight': 'dfm.conv_i.0.weight',
    'backbone.stem.0._conv.weight': 'conv1.0.weight',
    'backbone.stem.1._batch_norm._variance': 'conv1.4._variance',
    'backbone.stem.2.1.conv_bn._conv.weight': 'layer1.1.conv2.weight',
    'backbone.i_branch_layers.0.1.conv_bn_relu._conv.weight': 'layer3.1.conv1.weight',
    'backbone.p_branch_layers.0.1.conv_bn_relu._conv.weight': 'layer3_.1.conv1.weight',
    'backbone.i_branch_layers.2.0.conv_bn._conv.weight': 'layer5.0.conv3.weight',
    'backbone.p_branch_layers.1.0.conv_bn._conv.weight': 'layer4_.0.conv2.weight',
    'backbone.d_branch_layers.1.0.conv_bn._conv.weight': 'layer4_d.0.conv3.weight',
    'backbone.compression_1._conv.weight': 'compression3.0.weight',
    'backbone.diff_2._batch_norm.bias': 'diff4.1.bias',
    'backbone.spp.scales.0.2.weight': 'spp.scale0.2.weight',
    'backbone.spp.scales.3.1.0.weight': 'spp.scale3.1.weight',
    'backbone.spp.processes.2.weight': 'spp.processes.2.weight',
    'decode_head.conv_seg.weight': 'final_layer.conv2.weight',
    'decode_head.p_cls_seg.bias': 'seghead_p.conv2.bias',
    'decode_head.i_head.conv.2.weight': 'final_layer.conv1.weight',
    'decode_head.p_head.conv.2.weight': 'seghead_p.conv1.weight',
    'decode_head.d_head.norm.weight': 'seghead_d.bn2.weight',
}
EXPECTED_L = {
    'backbone.d_branch_layers.1.conv_bn._conv.weight': 'layer4_d.conv2.weight',  # a single BasicBlock in L
    'backbone.spp.processes.3.2.weight': 'spp.process4.2.weight',
    'backbone.dfm.conv.2.weight': 'dfm.conv.2.weight',
}


@pytest.mark.parametrize('model', ['pidnet_s', 'pidnet_l'])
def test_values_land_where_the_layers_do_the_same_thing(tmp_path, model):
    """A mapping that swapped pag f_p/f_i (or dfm f_p/f_i, or two heads) would still be
    bijective and shape-correct: check values end to end on the keys it could confuse."""
    theirs = their_state(model, seed=1)
    _, ours = convert(tmp_path, model, theirs)
    expected = {k: v for k, v in EXPECTED.items() if k in theirs}
    expected.update(EXPECTED_L if model == 'pidnet_l' else {})
    assert len(expected) >= 20
    for src, dst in expected.items():
        np.testing.assert_array_equal(ours[dst], theirs[src], err_msg=f'{src} -> {dst}')


def test_wrong_model_is_a_clear_error(tmp_path):
    state = their_state('pidnet_s')
    with pytest.raises(UserError, match='wrong --model') as err:  # S weights into M: shapes differ
        convert(tmp_path, 'pidnet_m', state)
    assert 'checkpoint [' in str(err.value)
    with pytest.raises(UserError, match='wrong --model'):  # S weights into L: L's layout differs too
        convert(tmp_path, 'pidnet_l', state)
    args = ['--src', str(tmp_path / 'pidnet_s_paddleseg.pdparams'),  # written above
            '--from', 'paddleseg_pidnet', '--dst', str(tmp_path / 'x.pdparams')]
    with pytest.raises(UserError, match=re.escape('converts to --model pidnet_s | pidnet_m | pidnet_l, not ddrnet23')):
        convert_weights.main(args + ['--model', 'ddrnet23'])
    with pytest.raises(UserError, match='pass one'):
        convert_weights.main(args)
    with pytest.raises(UserError, match=re.escape('--kind cityscapes | imagenet, not imagenet_classifier')):
        convert_weights.main(args + ['--model', 'pidnet_s', '--kind', 'imagenet_classifier'])
    assert not (tmp_path / 'x.pdparams').exists()


def test_backbone_only_weights_convert_as_imagenet(tmp_path):
    """PaddleSeg's ``pidnet_*_imagenet1k.pdparams`` (the configs' model-level ``pretrained``) hold the
    backbone in the same layout: --kind imagenet leaves the heads at initialisation, --kind
    cityscapes refuses."""
    backbone = {k: v for k, v in their_state('pidnet_s').items() if k.startswith('backbone.')}
    with pytest.raises(UserError, match='--kind imagenet'):
        convert(tmp_path, 'pidnet_s', backbone)
    report, ours = convert(tmp_path, 'pidnet_s', backbone, '--kind', 'imagenet')
    assert len(report['loaded']) == len(backbone) and report['dropped'] == []
    assert {k.split('.')[0] for k in report['left_at_init']} == {'final_layer', 'seghead_p', 'seghead_d'}
    assert sorted(report['zeroed']) == sorted(STEM_BIASES) and not ours['conv1.3.bias'].any()
