"""Checkpoint adapter: the official DDRNet release (PyTorch) -> :class:`DualResNet`.

The models keep the official attribute names, so the mapping is a renaming: strip the
``module.`` prefix of DataParallel checkpoints, unwrap ``{'state_dict': ...}``, rename BN
buffers (``running_mean`` -> ``_mean``, ``running_var`` -> ``_variance``) and drop
``num_batches_tracked``. ImageNet checkpoints also carry the classifier (``down5``,
``last_layer``, ``linear``), which the segmentation model does not have.
"""
import os

import numpy as np

from ..errors import UserError
from ..utils.weights import read_params
from .conversion import load_converted, paddle_names, rename, unwrap_state_dict
from .torch_checkpoint import read_torch_checkpoint

def official_state_dict(obj):
    """Paddle-named arrays of an official checkpoint object (as read from a .pth)."""
    state = paddle_names(unwrap_state_dict(obj))
    if 'linear.weight' in state:  # nn.Linear: PyTorch stores [out, in], Paddle [in, out]
        state['linear.weight'] = state['linear.weight'].T
    return state


def convert_official(model, path):
    """Load an official DDRNet ``.pth`` (segmentation or ImageNet) into ``model``.

    Returns a report {'loaded', 'left_at_init', 'dropped'}. Keys present in both must have
    the same shape, except a classifier whose class count differs (reported as dropped).
    """
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = official_state_dict(read_torch_checkpoint(path))
    return load_converted(model, state, path, 'wrong --model? is it a DDRNet checkpoint?', other_classifier_ok=True)


# PaddleSeg's built-in DDRNet_23 wraps conv+BN pairs in ConvBN(ReLU) layers and calls the
# head `head`/`aux_head`; the rest of its names are the official ones.
_PADDLESEG_RULES = [
    (r'^(conv1|down4)\.(\d)\._conv\.', lambda m: f'{m[1]}.{3 * int(m[2])}.'),
    (r'^(conv1|down4)\.(\d)\._batch_norm\.', lambda m: f'{m[1]}.{3 * int(m[2]) + 1}.'),
    (r'^(compression\d|down3)\._conv\.', lambda m: f'{m[1]}.0.'),
    (r'^(compression\d|down3)\._batch_norm\.', lambda m: f'{m[1]}.1.'),
    (r'^(layer5_?\.\d+)\.conv_bn_relu1\._conv\.', lambda m: f'{m[1]}.conv1.'),
    (r'^(layer5_?\.\d+)\.conv_bn_relu1\._batch_norm\.', lambda m: f'{m[1]}.bn1.'),
    (r'^(layer5_?\.\d+)\.conv_bn_relu2\._conv\.', lambda m: f'{m[1]}.conv2.'),
    (r'^(layer5_?\.\d+)\.conv_bn_relu2\._batch_norm\.', lambda m: f'{m[1]}.bn2.'),
    (r'^(layer5_?\.\d+)\.conv_bn\._conv\.', lambda m: f'{m[1]}.conv3.'),
    (r'^(layer5_?\.\d+)\.conv_bn\._batch_norm\.', lambda m: f'{m[1]}.bn3.'),
    (r'^(layer\d_?\.\d+)\.conv_bn_relu\._conv\.', lambda m: f'{m[1]}.conv1.'),
    (r'^(layer\d_?\.\d+)\.conv_bn_relu\._batch_norm\.', lambda m: f'{m[1]}.bn1.'),
    (r'^(layer\d_?\.\d+)\.conv_bn\._conv\.', lambda m: f'{m[1]}.conv2.'),
    (r'^(layer\d_?\.\d+)\.conv_bn\._batch_norm\.', lambda m: f'{m[1]}.bn2.'),
    (r'^(aux_head|head)\.conv_bn_relu\._conv\.', lambda m: f'{m[1]}.conv1.'),
    (r'^(aux_head|head)\.conv_bn_relu\._batch_norm\.', lambda m: f'{m[1]}.bn2.'),
    (r'^(aux_head|head)\.conv\.', lambda m: f'{m[1]}.conv2.'),
    (r'^aux_head\.', lambda m: 'seghead_extra.'),
    (r'^head\.', lambda m: 'final_layer.'),
]


def paddleseg_to_ours(key):
    """Name in :class:`DualResNet` of a key of PaddleSeg's ``DDRNet_23``."""
    return rename(key, _PADDLESEG_RULES)


def convert_paddleseg(model, path):
    """Load a PaddleSeg ``DDRNet_23`` parameter file (e.g. its model-zoo Cityscapes
    weights) into a DDRNet-23 ``model``; returns the same report as ``convert_official``."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    _, params = read_params(path, 'PaddleSeg weights', return_numpy=True)  # runs no code from the file
    state = {paddleseg_to_ours(k): np.asarray(v) for k, v in params.items()}
    return load_converted(model, state, path, "is it PaddleSeg's DDRNet_23?", other_classifier_ok=False)
