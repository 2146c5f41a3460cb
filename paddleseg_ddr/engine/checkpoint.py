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
from ..utils.weights import load_model_weights

MODEL_FILE, OPT_FILE, STATE_FILE = 'model.pdparams', 'model.pdopt', 'train_state.pdstates'


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
