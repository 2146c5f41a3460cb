"""Loading weights into a model: strictly (trained weights) or leniently (pretrained ones),
with readable reports of what did not fit.

Here rather than in the engine because models load their ``pretrained`` file themselves and
must not depend on the engine. Which keys may be absent is the model's own knowledge: its
class attribute ``TRAIN_ONLY_PREFIXES`` (e.g. DDRNet's auxiliary head ``seghead_extra.``).

Weights are read without running code from the file: ``.pdparams`` through the restricted
unpickler of :mod:`.safe_pickle` (never ``paddle.load``), ``.safetensors`` with the
``safetensors`` package (a JSON header and raw arrays: no code at all).
"""
import copy
import os

import paddle
from paddleseg.utils import logger

from ..errors import UserError
from .fileio import atomic_path
from .safe_pickle import is_safetensors, load_paddle

MODEL_FILE = 'model.pdparams'


def _unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def read_safetensors(path, what='weights', return_numpy=False):
    """The arrays of a ``.safetensors`` file (data only: reading it runs no code)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        arrays = load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as e:
        raise UserError(f"cannot read {what} '{path}' as a .safetensors file: {e}. The file is truncated, "
                        'damaged or not in that format: copy it again from its source.') from None
    return arrays if return_numpy else {k: paddle.to_tensor(v) for k, v in arrays.items()}


def save_safetensors(state, path):
    """Write a state dict (tensors or arrays) as ``.safetensors``, atomically."""
    import numpy as np
    from safetensors.numpy import save_file
    arrays = {k: np.ascontiguousarray(v.numpy() if isinstance(v, paddle.Tensor) else np.asarray(v))
              for k, v in state.items()}
    with atomic_path(path, suffix='.safetensors') as tmp:
        save_file(arrays, tmp, metadata={'format': 'paddle'})
    return path


def read_params(path, what='weights', return_numpy=False):
    """(path, state dict) of a ``.pdparams`` or ``.safetensors`` file, or of a checkpoint
    directory holding ``model.pdparams``; read without running code from the file."""
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: '{path}'. Pass the path of a .pdparams or .safetensors file "
                        "(or of a checkpoint directory holding model.pdparams).")
    if is_safetensors(path):
        params = read_safetensors(path, what, return_numpy)
    else:
        params = load_paddle(path, what, return_numpy)
    if not isinstance(params, dict):
        raise UserError(f"{what} '{path}' holds a {type(params).__name__}, not a state dict: pass a .pdparams "
                        'or .safetensors file of model weights.')
    bad = [k for k, v in params.items() if not isinstance(k, str) or not hasattr(v, 'shape')]
    if bad:
        raise UserError(f"{what} '{path}' is not a state dict of tensors (e.g. entry {str(bad[0])[:80]!r}): "
                        'pass a .pdparams or .safetensors file of model weights.')
    return path, params


def compare_keys(model_state, params):
    """(missing, unexpected, mismatched) keys of ``params`` against ``model_state``."""
    missing = [k for k in model_state if k not in params]
    unexpected = [k for k in params if k not in model_state]
    mismatched = [(k, list(params[k].shape), list(v.shape)) for k, v in model_state.items()
                  if k in params and list(params[k].shape) != list(v.shape)]
    return missing, unexpected, mismatched


def mismatch_report(missing, unexpected, mismatched, limit=20):
    lines = []
    for title, items in (('missing from the checkpoint', missing), ('not in the model', unexpected)):
        if items:
            lines.append(f'  {len(items)} key(s) {title}: ' + ', '.join(items[:limit]) + (' ...' if len(items) > limit else ''))
    if mismatched:
        lines.append(f'  {len(mismatched)} shape mismatch(es) (key: checkpoint vs model):')
        lines += [f'    {k}: {a} vs {b}' for k, a, b in mismatched[:limit]]
    return '\n'.join(lines)


def _fit(model, params):
    """(missing, unexpected, mismatched) of ``params`` against ``model``, its training-only
    layers (``TRAIN_ONLY_PREFIXES``) allowed to be absent or extra."""
    optional = tuple(getattr(model, 'TRAIN_ONLY_PREFIXES', ()))
    missing, unexpected, mismatched = compare_keys(model.state_dict(), params)
    return ([k for k in missing if not k.startswith(optional)], [k for k in unexpected if not k.startswith(optional)],
            mismatched)


def load_model_weights(model, path, params=None, to_fused=None):
    """Load trained weights strictly: every key must be present with its shape.

    Only the model's training-only layers (``TRAIN_ONLY_PREFIXES``) may be absent or extra.
    Raises ``UserError`` listing mismatching keys and shapes otherwise. ``params``: the
    state dict already read from ``path`` (by :func:`read_params`). ``to_fused``
    (``models.reparameterize``, passed by inference entry points): weights of the model's
    fused graph (e.g. converted from a release's deployed checkpoint) are accepted too, and
    the model is fused in place to take them.
    """
    if params is None:
        path, params = read_params(path)
    model = _unwrap(model)
    missing, unexpected, mismatched = _fit(model, params)
    if (missing or unexpected or mismatched) and to_fused is not None:
        if not any(_fit(to_fused(copy.deepcopy(model)), params)):
            to_fused(model)
            missing, unexpected, mismatched = [], [], []
            logger.info(f"'{path}' holds the fused (re-parameterised) graph: the model is fused to load it.")
    if missing or unexpected or mismatched:
        raise UserError(f"checkpoint '{path}' does not fit {type(model).__name__}:\n"
                        + mismatch_report(missing, unexpected, mismatched)
                        + '\nCheck that the config (model type, num_classes) is the one it was trained with.')
    model.set_state_dict({k: v for k, v in params.items() if k in model.state_dict()})
    logger.info(f"Loaded weights from '{path}'.")
    return path


def load_pretrained(model, path):
    """Initialise from pretrained weights: load every key whose name and shape match and
    report what was loaded, left at initialisation, or dropped."""
    if not os.path.exists(path):
        raise UserError(
            f"pretrained weights not found: '{path}'. Download the official checkpoint this config starts "
            "from (README, 'Pretrained weights': ImageNet weights for Cityscapes training, the Cityscapes "
            "weights for fine-tuning on CamVid or VOC) and convert it with `python tools/convert_weights.py "
            f"--src <file>.pth --model <variant> --kind imagenet|cityscapes --dst {path}`, or train from "
            "scratch with `--opts model.pretrained=None`.")
    path, params = read_params(path, 'pretrained')
    model_state = model.state_dict()
    missing, unexpected, mismatched = compare_keys(model_state, params)
    skipped = {k for k, _, _ in mismatched}
    loaded = {k: v for k, v in params.items() if k in model_state and k not in skipped}
    if not loaded:
        raise UserError(f"pretrained file '{path}' shares no key with {type(model).__name__}:\n"
                        + mismatch_report(missing, unexpected, mismatched))
    model.set_state_dict(loaded)
    logger.info(f"Loaded {len(loaded)}/{len(model_state)} tensors from '{path}'.")
    if missing or unexpected or mismatched:
        logger.info('Not loaded:\n' + mismatch_report(missing, unexpected, mismatched))
    return {'loaded': sorted(loaded), 'missing': missing, 'unexpected': unexpected, 'mismatched': mismatched}
