"""Checkpoint adapter: the PIDNet release (PyTorch) -> :class:`PIDNet`.

The model keeps the release's names, so the mapping is a renaming: the Cityscapes/CamVid
``.pt`` files prefix every key with ``model.`` (and carry the loss's class weights,
``sem_loss.criterion.weight``, which are dropped), the ImageNet ``.pth.tar`` files keep them
under ``state_dict``; BN buffers are renamed and the parallel pyramid pooling's processing
layer is ``processes`` here (``scale_process`` in the release).

PaddleSeg 2.9.1's ``PIDNet`` (``pidnet_{small,medium,large}_*.pdparams``) holds the same
tensors in mmsegmentation's layout (``backbone.``/``decode_head.``, PaddleSeg's ``ConvBNAct``
names) without the stem convolutions' biases: :func:`convert_paddleseg` renames them
(:func:`paddleseg_to_ours`) and sets those two biases to zero, which makes the conversion exact.
"""
import os

import numpy as np

from ..errors import UserError
from ..utils.weights import read_params
from .conversion import load_converted, paddle_names, rename, unwrap_state_dict
from .torch_checkpoint import read_torch_checkpoint

_RULES = [(r'^spp\.scale_process\.', 'spp.processes.')]


def release_to_ours(key):
    return rename(key, _RULES)


def release_state_dict(obj):
    """Paddle-named arrays of a release checkpoint object (as read from its .pt/.pth.tar)."""
    state = paddle_names(unwrap_state_dict(obj), strip_prefixes=('module.', 'model.'))
    return {release_to_ours(k): v for k, v in state.items()}


def convert_release(model, path):
    """Load a release checkpoint (Cityscapes/CamVid ``.pt`` or ImageNet ``.pth.tar``) into a
    :class:`PIDNet`; returns the report of :func:`.conversion.load_converted`."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = release_state_dict(read_torch_checkpoint(path))
    return load_converted(model, state, path, 'wrong --model? is it a PIDNet checkpoint of the release?',
                          other_classifier_ok=True)


# PaddleSeg 2.9.1's PIDNet -> ours, applied in order to each key. Their BasicBlock is
# (conv_bn_relu, conv_bn), their Bottleneck (conv_bn_relu1, conv_bn_relu2, conv_bn); the
# Bottlenecks are the stage-5 blocks and, in S/M, layer4_d's (indexed; L's is a single BasicBlock).
_BOTTLENECK = r'(layer5_?d?\.\d+|layer4_d\.\d+)'
_PADDLESEG_RULES = [
    (r'^backbone\.', lambda m: ''),
    (r'^stem\.([01])\._conv\.', lambda m: f'conv1.{3 * int(m[1])}.'),
    (r'^stem\.([01])\._batch_norm\.', lambda m: f'conv1.{3 * int(m[1]) + 1}.'),
    (r'^stem\.2\.', lambda m: 'layer1.'),
    (r'^stem\.4\.', lambda m: 'layer2.'),
    (r'^i_branch_layers\.(\d)\.', lambda m: f'layer{int(m[1]) + 3}.'),
    (r'^p_branch_layers\.(\d)\.', lambda m: f'layer{int(m[1]) + 3}_.'),
    (r'^d_branch_layers\.(\d)\.', lambda m: f'layer{int(m[1]) + 3}_d.'),
    (r'\.conv_bn_relu([12])\._conv\.', lambda m: f'.conv{m[1]}.'),
    (r'\.conv_bn_relu([12])\._batch_norm\.', lambda m: f'.bn{m[1]}.'),
    (r'\.conv_bn_relu\._conv\.', lambda m: '.conv1.'),
    (r'\.conv_bn_relu\._batch_norm\.', lambda m: '.bn1.'),
    (r'^' + _BOTTLENECK + r'\.conv_bn\._conv\.', lambda m: f'{m[1]}.conv3.'),
    (r'^' + _BOTTLENECK + r'\.conv_bn\._batch_norm\.', lambda m: f'{m[1]}.bn3.'),
    (r'\.conv_bn\._conv\.', lambda m: '.conv2.'),
    (r'\.conv_bn\._batch_norm\.', lambda m: '.bn2.'),
    (r'^compression_([12])\.', lambda m: f'compression{int(m[1]) + 2}.'),
    (r'^diff_([12])\.', lambda m: f'diff{int(m[1]) + 2}.'),
    # PagFM: f_p reads the P features (the release's x), f_i the I features (its y)
    (r'^pag_([12])\.f_p\.', lambda m: f'pag{int(m[1]) + 2}.f_x.'),
    (r'^pag_([12])\.f_i\.', lambda m: f'pag{int(m[1]) + 2}.f_y.'),
    (r'^dfm\.f_([pi])\.', lambda m: f'dfm.conv_{m[1]}.'),
    (r'^spp\.scales\.0\.', lambda m: 'spp.scale0.'),
    (r'^spp\.scales\.([1-4])\.1\.([02])\.', lambda m: f'spp.scale{m[1]}.{1 if m[2] == "0" else 3}.'),
    (r'^spp\.processes\.(\d)\.([02])\.', lambda m: f'spp.process{int(m[1]) + 1}.{m[2]}.'),  # L's DAPPM
    (r'\._conv\.', lambda m: '.0.'),  # ConvBNAct without activation: (conv, BN)
    (r'\._batch_norm\.', lambda m: '.1.'),
    (r'^decode_head\.([ipd])_head\.conv\.0\.', lambda m: f'{_HEADS[m[1]]}.bn1.'),
    (r'^decode_head\.([ipd])_head\.conv\.2\.', lambda m: f'{_HEADS[m[1]]}.conv1.'),
    (r'^decode_head\.([ipd])_head\.norm\.', lambda m: f'{_HEADS[m[1]]}.bn2.'),
    (r'^decode_head\.conv_seg\.', lambda m: 'final_layer.conv2.'),
    (r'^decode_head\.([pd])_cls_seg\.', lambda m: f'{_HEADS[m[1]]}.conv2.'),
]
_HEADS = {'i': 'final_layer', 'p': 'seghead_p', 'd': 'seghead_d'}
# the release's stem convolutions have a bias, PaddleSeg 2.9.1's not (zero is the same function)
STEM_BIASES = ('conv1.0.bias', 'conv1.3.bias')


def paddleseg_to_ours(key):
    """Name in :class:`PIDNet` of a key of PaddleSeg 2.9.1's ``PIDNet`` (its ``backbone.`` prefix optional)."""
    return rename(key, _PADDLESEG_RULES)


def convert_paddleseg(model, path):
    """Load a PaddleSeg 2.9.1 ``PIDNet`` parameter file (its Cityscapes model or its
    ``pidnet_*_imagenet1k.pdparams``) into a :class:`PIDNet` of the same size. The stem
    convolutions' biases, absent there, are set to zero (listed under ``'zeroed'`` in the report
    of :func:`.conversion.load_converted`)."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    _, params = read_params(path, 'PaddleSeg weights', return_numpy=True)  # runs no code from the file
    state = {}
    for key, value in params.items():
        ours = paddleseg_to_ours(key)
        if ours in state:  # the renaming must be one-to-one
            raise UserError(f"'{path}': two keys map to '{ours}': is it PaddleSeg's PIDNet?")
        state[ours] = np.asarray(value)
    report = load_converted(model, state, path, "wrong --model? is it PaddleSeg 2.9.1's PIDNet?",
                            other_classifier_ok=True)
    target, zeroed = model.state_dict(), []
    for key in STEM_BIASES:
        if key in report['left_at_init'] and key.replace('.bias', '.weight') in report['loaded']:
            target[key].set_value(np.zeros(target[key].shape, dtype=np.float32))
            zeroed.append(key)
    report['left_at_init'] = [k for k in report['left_at_init'] if k not in zeroed]
    report['zeroed'] = zeroed
    return report
