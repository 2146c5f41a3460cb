"""Checkpoint adapter: the official DDRNet release (PyTorch) -> :class:`DualResNet`.

The models keep the official attribute names, so the mapping is a renaming: strip the
``module.`` prefix of DataParallel checkpoints, unwrap ``{'state_dict': ...}``, rename BN
buffers (``running_mean`` -> ``_mean``, ``running_var`` -> ``_variance``) and drop
``num_batches_tracked``. ImageNet checkpoints also carry the classifier (``down5``,
``last_layer``, ``linear``), which the segmentation model does not have.
"""
import os

import numpy as np
import paddle

from ..errors import UserError
from .torch_checkpoint import read_torch_checkpoint

CLASSIFIER_PREFIXES = ('down5.', 'last_layer.', 'linear.')
_BN_RENAMES = (('.running_mean', '._mean'), ('.running_var', '._variance'))


def official_state_dict(obj):
    """Paddle-named arrays of an official checkpoint object (as read from a .pth)."""
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not obj:
        raise UserError('the checkpoint holds no state dict (expected a dict of tensors, or one under "state_dict").')
    state = {}
    for key, value in obj.items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.startswith('module.'):
            key = key[len('module.'):]
        for old, new in _BN_RENAMES:
            if key.endswith(old):
                key = key[:-len(old)] + new
        value = np.asarray(value)
        if key == 'linear.weight':  # nn.Linear: PyTorch stores [out, in], Paddle [in, out]
            value = value.T
        state[key] = value
    return state


def convert_official(model, path):
    """Load an official DDRNet ``.pth`` (segmentation or ImageNet) into ``model``.

    Returns a report {'loaded', 'left_at_init', 'dropped'}. Keys present in both must have
    the same shape, except a classifier whose class count differs (reported as dropped).
    """
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = official_state_dict(read_torch_checkpoint(path))
    target = model.state_dict()
    loaded, dropped, mismatched = {}, [], []
    for key, value in state.items():
        if key not in target:
            dropped.append(key)
        elif list(value.shape) != list(target[key].shape):
            if key.startswith(('final_layer.conv2', 'seghead_extra.conv2')):
                dropped.append(key)  # another number of classes: the classifier stays at init
            else:
                mismatched.append(f'{key}: checkpoint {list(value.shape)} vs model {list(target[key].shape)}')
        else:
            loaded[key] = paddle.to_tensor(value.astype(np.float32) if value.dtype == np.float64 else value,
                                           dtype=target[key].dtype)
    if mismatched:
        raise UserError(f"'{path}' does not fit {type(model).__name__} (wrong --model?):\n  " + '\n  '.join(mismatched[:20]))
    if not loaded:
        raise UserError(f"'{path}' shares no parameter with {type(model).__name__}: is it a DDRNet checkpoint?")
    model.set_state_dict(loaded)
    return {'loaded': sorted(loaded), 'left_at_init': sorted(k for k in target if k not in loaded),
            'dropped': sorted(dropped)}
