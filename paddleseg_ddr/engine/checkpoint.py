"""Checkpoints: atomic writes, strict loading with readable mismatch reports, resume state.

A checkpoint directory holds ``model.pdparams`` (PaddleSeg-compatible weights),
``model.pdopt`` (optimizer with its LR scheduler) and ``train_state.pdstates`` (iteration,
best score, random-number-generator states). The folder is created once and never renamed or
removed (``best_model/`` exists at every instant; files the user put there stay); each file in
it is replaced atomically, and the train state is written last: it marks the checkpoint
complete, so an interrupted save never leaves a half-written file or a checkpoint that looks
complete.
"""
import contextlib
import glob
import os
import pickle
import random
import re

import numpy as np
import paddle
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_write, remove_own_files, save_paddle

MODEL_FILE, OPT_FILE, STATE_FILE = 'model.pdparams', 'model.pdopt', 'train_state.pdstates'
# Keys a checkpoint may lack or carry without harm: the auxiliary head is training-only.
OPTIONAL_PREFIXES = ('seghead_extra.',)


def _unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


# The files save_checkpoint writes, the completeness marker first (see prune_checkpoints).
CHECKPOINT_FILES = (STATE_FILE, OPT_FILE, MODEL_FILE)


def save_checkpoint(directory, model, optimizer=None, state=None):
    """Write a checkpoint into ``directory``, each file replaced atomically.

    The folder is never renamed or removed, and only this function's own files in it are
    replaced. With ``state`` (an ``iter_N/`` checkpoint), an older train state is removed
    first and the new one written last, so the folder is resumable only once complete.
    """
    os.makedirs(directory, exist_ok=True)
    if state is not None:
        remove_own_files(directory, [STATE_FILE])
    save_paddle(_unwrap(model).state_dict(), os.path.join(directory, MODEL_FILE))
    if optimizer is not None:
        save_paddle(_portable_optimizer_state(optimizer.state_dict(), model), os.path.join(directory, OPT_FILE))
    if state is not None:  # plain pickle: it holds Python/NumPy/Paddle RNG states
        with atomic_write(os.path.join(directory, STATE_FILE)) as f:
            pickle.dump(state, f)


# Paddle keys optimizer state by generated parameter names (``conv2d_114.w_0_velocity_0``),
# which depend on how many layers the process built before: a checkpoint saved by one
# process would not load in another. It is saved keyed by structured names instead.
_SEP = '::'


def _rename_keys(state, rename):
    out = {}
    for key, value in state.items():
        if isinstance(value, dict) and key == 'master_weights':
            value = _rename_keys(value, rename)
        out[rename(key)] = value
    return out


def _portable_optimizer_state(state, model):
    names = sorted(((p.name, k) for k, p in _unwrap(model).named_parameters()), key=lambda t: -len(t[0]))

    def rename(key):
        for generated, structured in names:
            if key == generated or key.startswith(generated + '_'):
                return structured + _SEP + key[len(generated) + 1:]
        return key
    return _rename_keys(state, rename)


def _local_optimizer_state(state, model):
    names = {k: p.name for k, p in _unwrap(model).named_parameters()}

    def rename(key):
        if _SEP not in key:
            return key
        structured, suffix = key.split(_SEP, 1)
        return names[structured] + ('_' + suffix if suffix else '')
    return _rename_keys(state, rename)


def rng_state():
    return {'python': random.getstate(), 'numpy': np.random.get_state(), 'paddle': paddle.get_rng_state()}


def set_rng_state(state):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    paddle.set_rng_state(state['paddle'])


def prune_checkpoints(save_dir, keep):
    """Keep the ``keep`` most recent ``iter_N/`` checkpoints (keep <= 0 keeps all).

    Only the files :func:`save_checkpoint` writes are removed (the completeness marker
    first); a folder is removed only once empty, so anything else in it stays. Folders
    holding no checkpoint do not count.
    """
    if keep <= 0:
        return
    dirs = [d for d in glob.glob(os.path.join(glob.escape(save_dir), 'iter_*'))
            if re.fullmatch(r'iter_\d+', os.path.basename(d)) and os.path.isfile(os.path.join(d, MODEL_FILE))]
    dirs.sort(key=lambda d: int(d.rsplit('_', 1)[1]))
    for d in dirs[:-keep]:
        left = remove_own_files(d, CHECKPOINT_FILES)
        if left:
            logger.info(f"Pruned the checkpoint in '{d}'; the folder stays for what else it holds: {', '.join(left)}.")
        else:
            with contextlib.suppress(OSError):
                os.rmdir(d)


def _read_params(path, what='weights'):
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: '{path}'. Pass the path of a .pdparams file "
                        "(or of a checkpoint directory holding model.pdparams).")
    try:
        params = paddle.load(path)
    except Exception as e:  # a corrupt or foreign file: say which
        raise UserError(f"cannot read {what} '{path}' as a Paddle parameter file: {e}") from None
    if not isinstance(params, dict):
        raise UserError(f"{what} '{path}' holds a {type(params).__name__}, not a state dict.")
    return path, params


def _compare(model_state, params):
    missing = [k for k in model_state if k not in params]
    unexpected = [k for k in params if k not in model_state]
    mismatched = [(k, list(params[k].shape), list(v.shape)) for k, v in model_state.items()
                  if k in params and list(params[k].shape) != list(v.shape)]
    return missing, unexpected, mismatched


def _mismatch_report(missing, unexpected, mismatched, limit=20):
    lines = []
    for title, items in (('missing from the checkpoint', missing), ('not in the model', unexpected)):
        if items:
            lines.append(f'  {len(items)} key(s) {title}: ' + ', '.join(items[:limit]) + (' ...' if len(items) > limit else ''))
    if mismatched:
        lines.append(f'  {len(mismatched)} shape mismatch(es) (key: checkpoint vs model):')
        lines += [f'    {k}: {a} vs {b}' for k, a, b in mismatched[:limit]]
    return '\n'.join(lines)


def load_model_weights(model, path):
    """Load trained weights strictly: every key must be present with its shape.

    Only the training-only auxiliary head may be absent or extra. Raises ``UserError``
    listing mismatching keys and shapes otherwise.
    """
    path, params = _read_params(path)
    model = _unwrap(model)
    missing, unexpected, mismatched = _compare(model.state_dict(), params)
    optional = lambda k: k.startswith(OPTIONAL_PREFIXES)
    missing = [k for k in missing if not optional(k)]
    unexpected = [k for k in unexpected if not optional(k)]
    if missing or unexpected or mismatched:
        raise UserError(f"checkpoint '{path}' does not fit {type(model).__name__}:\n"
                        + _mismatch_report(missing, unexpected, mismatched)
                        + '\nCheck that the config (model type, num_classes) is the one it was trained with.')
    model.set_state_dict({k: v for k, v in params.items() if k in model.state_dict()})
    logger.info(f"Loaded weights from '{path}'.")
    return path


def load_pretrained(model, path):
    """Initialise from pretrained weights: load every key whose name and shape match and
    report what was loaded, left at initialisation, or dropped."""
    if not os.path.exists(path):
        raise UserError(
            f"pretrained weights not found: '{path}'. Download the official ImageNet checkpoint of this "
            "model (README, 'Pretrained weights'), convert it with `python tools/convert_weights.py --src "
            f"<file>.pth --model <ddrnet23_slim|ddrnet23|ddrnet39> --kind imagenet --dst {path}`, or train "
            "from scratch with `--opts model.pretrained=None`.")
    path, params = _read_params(path, 'pretrained')
    model_state = model.state_dict()
    missing, unexpected, mismatched = _compare(model_state, params)
    skipped = {k for k, _, _ in mismatched}
    loaded = {k: v for k, v in params.items() if k in model_state and k not in skipped}
    if not loaded:
        raise UserError(f"pretrained file '{path}' shares no key with {type(model).__name__}:\n"
                        + _mismatch_report(missing, unexpected, mismatched))
    model.set_state_dict(loaded)
    logger.info(f"Loaded {len(loaded)}/{len(model_state)} tensors from '{path}'.")
    if missing or unexpected or mismatched:
        logger.info('Not loaded:\n' + _mismatch_report(missing, unexpected, mismatched))
    return {'loaded': sorted(loaded), 'missing': missing, 'unexpected': unexpected, 'mismatched': mismatched}


def load_checkpoint(directory, model, optimizer):
    """Restore a checkpoint written by :func:`save_checkpoint`; returns its train state."""
    state_path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(state_path) or not os.path.isfile(os.path.join(directory, OPT_FILE)):
        raise UserError(f"'{directory}' is not a resumable checkpoint: it needs {MODEL_FILE}, "
                        f"{OPT_FILE} and {STATE_FILE} (as in <save_dir>/iter_<N>/).")
    load_model_weights(model, directory)
    optimizer.set_state_dict(_local_optimizer_state(paddle.load(os.path.join(directory, OPT_FILE)), model))
    with open(state_path, 'rb') as f:
        return pickle.load(f)
