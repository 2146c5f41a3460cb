"""What every checkpoint converter shares: PyTorch state-dict conventions turned into Paddle's,
and loading renamed arrays into a model with a report. The family-specific renaming lives
beside each family (``<family>_checkpoints.py``).
"""
import re

import numpy as np
import paddle

from ..errors import UserError

_BN_RENAMES = (('.running_mean', '._mean'), ('.running_var', '._variance'))


def unwrap_state_dict(obj):
    """The state dict of a checkpoint object: itself, or its ``state_dict`` / ``model`` entry."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if isinstance(obj.get(key), dict):
                return obj[key]
    if not isinstance(obj, dict) or not obj:
        raise UserError('the checkpoint holds no state dict (expected a dict of tensors, or one under "state_dict").')
    return obj


def paddle_names(state, strip_prefixes=('module.',)):
    """PyTorch names -> Paddle's: BN buffers renamed (``running_mean`` -> ``_mean``,
    ``running_var`` -> ``_variance``), ``num_batches_tracked`` dropped, ``strip_prefixes``
    removed from the front (DataParallel's ``module.``). Values become NumPy arrays."""
    out = {}
    for key, value in state.items():
        if key.endswith('num_batches_tracked'):
            continue
        for prefix in strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        for old, new in _BN_RENAMES:
            if key.endswith(old):
                key = key[:-len(old)] + new
        out[key] = np.asarray(value)
    return out


def rename(key, rules):
    """``key`` after each (pattern, replacement) of ``rules`` in turn (``re.sub``): the
    families' checkpoint name mappings are such ordered rule lists."""
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def load_converted(model, state, path, hint, other_classifier_ok=False):
    """Load arrays already renamed to ``model``'s keys; returns the conversion report
    {'loaded', 'left_at_init', 'dropped'}.

    Keys present in both must have the same shape; with ``other_classifier_ok`` a classifier
    (the model's ``CLASSIFIER_PREFIXES``) of another class count is dropped and stays at init.
    """
    target = model.state_dict()
    classifier = tuple(getattr(model, 'CLASSIFIER_PREFIXES', ()))
    loaded, dropped, mismatched = {}, [], []
    for key, value in state.items():
        if key not in target:
            dropped.append(key)
        elif list(value.shape) != list(target[key].shape):
            if other_classifier_ok and classifier and key.startswith(classifier):
                dropped.append(key)
            else:
                mismatched.append(f'{key}: checkpoint {list(value.shape)} vs model {list(target[key].shape)}')
        else:
            loaded[key] = paddle.to_tensor(value.astype(np.float32) if value.dtype == np.float64 else value,
                                           dtype=target[key].dtype)
    if mismatched:
        raise UserError(f"'{path}' does not fit {type(model).__name__} ({hint}):\n  " + '\n  '.join(mismatched[:20]))
    if not loaded:
        raise UserError(f"'{path}' shares no parameter with {type(model).__name__} ({hint}).")
    model.set_state_dict(loaded)
    return {'loaded': sorted(loaded), 'left_at_init': sorted(k for k in target if k not in loaded),
            'dropped': sorted(dropped)}
