"""Checkpoints: atomic writes, strict loading with readable mismatch reports, resume state.

A checkpoint directory holds ``model.pdparams`` (PaddleSeg-compatible weights),
``model.pdopt`` (optimizer with its LR scheduler) and ``train_state.pdstates`` (iteration,
best score, random-number-generator states). The folder is created once and never renamed or
removed (``best_model/`` exists at every instant; files the user put there stay); each file in
it is replaced atomically, and the train state is written last: it marks the checkpoint
complete, so an interrupted save never leaves a half-written file or a checkpoint that looks
complete.

Nothing is unpickled with ``pickle``/``paddle.load``: ``model.pdparams`` and ``model.pdopt``
(still written by ``paddle.save``, PaddleSeg-compatible) are read through the restricted
unpickler of :mod:`paddleseg_ddr.utils.safe_pickle`, and the train state is JSON (numbers and
lists, the random-number-generator states included). A train state pickled by an earlier
version is read through the same restricted unpickler.
"""
import contextlib
import glob
import json
import math
import os
import random
import re

import numpy as np
import paddle
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_write, remove_own_files, save_paddle
from ..utils.safe_pickle import PADDLE_GLOBALS, load_paddle, restricted_load
from ..utils.weights import load_model_weights, read_params

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
    if state is not None:  # JSON: numbers and lists only, the RNG states encoded by encode_state
        text = json.dumps(encode_state(state), separators=(',', ':'))
        with atomic_write(os.path.join(directory, STATE_FILE), 'w', encoding='utf-8') as f:
            f.write(text)


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


# --- the train state as JSON -------------------------------------------------------------
STATE_FORMAT, STATE_VERSION = 'paddleseg_ddr train state', 2


def _encode_rng(rng):
    version, internal, gauss = rng['python']
    kind, keys, pos, has_gauss, cached = rng['numpy']
    paddle_states = []
    for g in rng['paddle']:
        device, seed, offset, engine = g.__getstate__()
        paddle_states.append({'device': int(device), 'seed': int(seed), 'offset': int(offset),
                              'engine': bytes(engine).decode('ascii')})
    return {'python': {'version': int(version), 'internal': [int(v) for v in internal], 'gauss_next': gauss},
            'numpy': {'kind': str(kind), 'keys': np.asarray(keys).tolist(), 'pos': int(pos),
                      'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
            'paddle': paddle_states}


def encode_state(state):
    """The train state as JSON-ready data (numbers, strings, lists, dicts)."""
    out = {'format': STATE_FORMAT, 'version': STATE_VERSION}
    for key, value in state.items():
        if key == 'rng':
            out['rng'] = _encode_rng(value)
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, (np.integer, np.floating)):
            out[key] = value.item()
        else:
            raise TypeError(f'train state entry {key!r} is a {type(value).__name__}, not a number or string')
    return out


class _Damaged(ValueError):
    pass


def _int(value, what, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low) or \
            (high is not None and value > high):
        raise _Damaged(f'{what} is {str(value)[:40]!r}, not an integer' +
                       (f' in [{low}, {high}]' if low is not None and high is not None else ''))
    return value


def _decode_rng(rng):
    from paddle.base.libpaddle import GeneratorState
    if not isinstance(rng, dict) or set(rng) != {'python', 'numpy', 'paddle'}:
        raise _Damaged("'rng' is not {'python', 'numpy', 'paddle'}")
    py, nump, pstates = rng['python'], rng['numpy'], rng['paddle']
    try:
        internal = tuple(_int(v, 'python RNG word', 0, 2**32 - 1) for v in py['internal'])
        gauss = py['gauss_next']
        if gauss is not None and not isinstance(gauss, float):
            raise _Damaged('python gauss_next is not a number')
        python_state = (_int(py['version'], 'python RNG version'), internal, gauss)
        random.Random().setstate(python_state)  # validates without touching the global generator
        numpy_state = (str(nump['kind']), np.array([_int(v, 'numpy RNG key', 0, 2**32 - 1) for v in nump['keys']],
                                                   dtype=np.uint32),
                       _int(nump['pos'], 'numpy RNG position'), _int(nump['has_gauss'], 'numpy has_gauss', 0, 1),
                       float(nump['cached_gaussian']))
        np.random.RandomState().set_state(numpy_state)
        if not isinstance(pstates, list) or not pstates:
            raise _Damaged('paddle RNG states are not a list')
        paddle_state = []
        for p in pstates:
            engine = p['engine']
            if not isinstance(engine, str) or not engine or len(engine) > 100000 or \
                    not all(c in '0123456789 ' for c in engine):
                raise _Damaged('paddle RNG engine state is not a list of numbers')
            g = GeneratorState.__new__(GeneratorState)
            g.__setstate__((_int(p['device'], 'paddle RNG device', -1, 2**31), _int(p['seed'], 'paddle RNG seed'),
                            _int(p['offset'], 'paddle RNG offset', 0), list(engine.encode('ascii'))))
            paddle_state.append(g)
    except (KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError) as e:
        raise _Damaged(f'random-number-generator state: {e}') from None
    return {'python': python_state, 'numpy': numpy_state, 'paddle': paddle_state}


class _PickledGeneratorState:
    """What an earlier version's pickled ``paddle.base.libpaddle.GeneratorState`` becomes:
    only its state tuple is kept (checked, then given to a real GeneratorState)."""

    def __setstate__(self, state):
        self.state = state


def _legacy_state(path):
    """A train state pickled by an earlier version, read through the restricted unpickler
    (the only extra global: Paddle's RNG state, as inert data)."""
    allowed = {**PADDLE_GLOBALS, ('paddle.base.libpaddle', 'GeneratorState'): _PickledGeneratorState}
    with open(path, 'rb') as f:
        state = restricted_load(f, path, 'train state', allowed, allowed_types=(_PickledGeneratorState,))
    if not isinstance(state, dict) or not isinstance(state.get('rng'), dict):
        raise _Damaged('it is not a train state')
    rng = state['rng']
    try:
        version, internal, gauss = rng['python']
        kind, keys, pos, has_gauss, cached = rng['numpy']
        paddle_states = []
        for g in rng['paddle']:
            device, seed, offset, engine = g.state
            paddle_states.append({'device': device, 'seed': seed, 'offset': offset,
                                  'engine': bytes(engine).decode('ascii')})
        state['rng'] = {'python': {'version': version, 'internal': list(internal), 'gauss_next': gauss},
                        'numpy': {'kind': kind, 'keys': [int(k) for k in np.asarray(keys).ravel()], 'pos': pos,
                                  'has_gauss': has_gauss, 'cached_gaussian': cached},
                        'paddle': paddle_states}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Damaged(f'random-number-generator state: {e}') from None
    return state


def read_train_state(path):
    """The train state of ``path`` (JSON, or pickled by an earlier version), checked:
    {'iter', 'best_miou', 'best_iter', 'rng'} with the RNG states ready for set_rng_state."""
    fix = ('resume from another iter_<N>/ checkpoint, or start a new run from its weights with --opts '
           f"model.pretrained={os.path.join(os.path.dirname(path), MODEL_FILE)}")
    try:
        with open(path, 'rb') as f:
            head = f.read(1)
        if head == b'\x80':  # a pickle (protocol >= 2): written by an earlier version
            state = _legacy_state(path)
        else:
            with open(path, encoding='utf-8') as f:
                state = json.load(f)
            if not isinstance(state, dict) or state.get('format') != STATE_FORMAT:
                raise _Damaged('it is not a train state written by this project')
            if not isinstance(state.get('version'), int) or state['version'] > STATE_VERSION:
                raise _Damaged(f"format version {state.get('version')!r} is newer than this project's "
                               f'({STATE_VERSION}): update the project')
        out = {'iter': _int(state.get('iter'), "'iter'", 0),
               'best_iter': _int(state.get('best_iter'), "'best_iter'", -1)}
        best = state.get('best_miou')
        if isinstance(best, bool) or not isinstance(best, (int, float)) or math.isnan(best):
            raise _Damaged(f"'best_miou' is {str(best)[:40]!r}, not a number")
        out['best_miou'] = float(best)
        out['rng'] = _decode_rng(state.get('rng'))
    except (_Damaged, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"cannot resume from train state '{path}': {e}. The file is truncated or damaged; "
                        f'{fix}.') from None
    return out


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


def _check_layers(params_path, params, model, directory):
    """The training-only layers (e.g. DDRNet's auxiliary head) are in both or in neither:
    their optimizer state must match the model being resumed."""
    prefixes = tuple(getattr(_unwrap(model), 'TRAIN_ONLY_PREFIXES', ()))
    if not prefixes:
        return
    saved = sorted({p for p in prefixes for k in params if k.startswith(p)})
    built = sorted({p for p in prefixes for k in _unwrap(model).state_dict() if k.startswith(p)})
    if saved != built:
        have = lambda names: ', '.join(n.rstrip('.') for n in names) if names else 'none'
        raise UserError(
            f"cannot resume from '{directory}': the checkpoint was trained with the training-only layers "
            f"{have(saved)} but this model has {have(built)} (DDRNet: model option aux_head). Resume with the "
            f"setting the run was trained with (--opts model.aux_head={bool(saved)}), or start a new run from its "
            f"weights with --opts model.pretrained={params_path}.")


def _optimizer_params(optimizer):
    params = []
    for item in optimizer._parameter_list or []:
        params.extend(item['params'] if isinstance(item, dict) else [item])
    return params


def _set_optimizer_state(optimizer, opt_state, model, opt_path):
    fix = ('resume with the optimizer (type and settings) the run was trained with, or start a new run '
           f"from its weights with --opts model.pretrained={os.path.join(os.path.dirname(opt_path), MODEL_FILE)}")
    if not isinstance(opt_state, dict) or not all(isinstance(k, str) for k in opt_state):
        raise UserError(f"optimizer state '{opt_path}' is not an optimizer state dict; {fix}.")
    names = {k for k, _ in _unwrap(model).named_parameters()}
    unknown = sorted({k.split(_SEP, 1)[0] for k in opt_state if _SEP in k} - names)
    if unknown:
        raise UserError(f"optimizer state '{opt_path}' holds state for parameters this model lacks "
                        f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}); {fix}.")
    state = _local_optimizer_state(opt_state, model)
    try:
        optimizer.set_state_dict(state)
        # Create the optimizer's accumulators now, from the loaded state, so that a state
        # saved by another optimizer is refused here and not with an assertion at the first step.
        # Only parameters the saved state has entries for: others (frozen, or never given
        # a gradient) get theirs at the first step, as without a resume.
        saved = {k.split(_SEP, 1)[0] for k in opt_state if _SEP in k}
        structured = {id(p): k for k, p in _unwrap(model).named_parameters()}
        params = [p for p in _optimizer_params(optimizer) if structured.get(id(p)) in saved]
        if params:
            optimizer._create_accumulators(paddle.static.default_main_program().global_block(), params)
    except (AssertionError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise UserError(f"optimizer state '{opt_path}' does not fit this {type(optimizer).__name__} "
                        f'({str(e).splitlines()[0][:200] if str(e) else type(e).__name__}); {fix}.') from None
    created = {v.name for accs in optimizer._accumulators.values() for v in accs.values()}
    extra = sorted(k for k, v in state.items() if k not in created and k not in ('LR_Scheduler', 'master_weights')
                   and hasattr(v, 'shape'))
    if extra:
        raise UserError(f"optimizer state '{opt_path}' was saved by another optimizer than this "
                        f"{type(optimizer).__name__} (it holds e.g. '{extra[0]}', which this one does not use); {fix}.")


def load_checkpoint(directory, model, optimizer):
    """Restore a checkpoint written by :func:`save_checkpoint`; returns its train state
    ({'iter', 'best_miou', 'best_iter', 'rng'}). Every file is read and checked before the
    model or optimizer is changed, and none is unpickled with code-running pickle."""
    state_path, opt_path = os.path.join(directory, STATE_FILE), os.path.join(directory, OPT_FILE)
    if not os.path.isfile(state_path) or not os.path.isfile(opt_path):
        raise UserError(f"'{directory}' is not a resumable checkpoint: it needs {MODEL_FILE}, "
                        f"{OPT_FILE} and {STATE_FILE} (as in <save_dir>/iter_<N>/).")
    params_path, params = read_params(directory)
    state = read_train_state(state_path)
    opt_state = load_paddle(opt_path, 'optimizer state')
    _check_layers(params_path, params, model, directory)
    load_model_weights(model, params_path, params)
    _set_optimizer_state(optimizer, opt_state, model, opt_path)
    return state
