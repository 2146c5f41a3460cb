"""Error cases of loading (see tests/error_cases.py): weights and checkpoints that would run
code when unpickled (each must be refused naming the file and the global, and its side
effect — a folder ``pwned`` — must not appear), .pth tensors pointing outside their storage,
and resumes that cannot work (truncated files, another optimizer, aux_head changed).

One short training (1 iteration of the mini config) is made once per test process; each
resume case copies its checkpoint and damages the copy.
"""
import atexit
import functools
import glob
import os
import shutil
import tempfile

import numpy as np

import crafted_files as C
from error_cases import ErrorCase

REFUSED = ('refusing to load', C.PAYLOAD_GLOBAL, '.safetensors')
CONVERT = 'script:tools/convert_weights.py'


def _marker(ctx):
    return ctx.path('pwned')


def _evil_pdparams(ctx):
    C.paddle_pickle(ctx.path('evil.pdparams'), _marker(ctx))


def _image(ctx):
    return sorted(glob.glob(os.path.join(ctx.mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]


@functools.lru_cache(maxsize=None)
def _trained(mini_root, make_config):
    """A checkpoint folder (iter_1) of the mini config, made once."""
    from paddleseg_ddr.cli import train_main
    root = tempfile.mkdtemp(prefix='error_cases_loading-')
    atexit.register(shutil.rmtree, root, True)
    train_main(['--config', make_config(root), '--iters', '1', '--save_interval', '1', '--save_dir',
                os.path.join(root, 'out')])
    return os.path.join(root, 'out', 'iter_1')


def _checkpoint(damage=None):
    """setup(ctx): ctx.tmp/ckpt, a copy of the shared checkpoint with ``damage(ctx, folder)`` applied."""
    def setup(ctx):
        folder = ctx.path('ckpt')
        shutil.copytree(_trained(ctx.mini_root, ctx.make_config), folder)
        if damage:
            damage(ctx, folder)
    return setup


def _payload_in(name):
    def damage(ctx, folder):
        import paddle
        path = os.path.join(folder, name)
        state = None
        if name == 'model.pdparams':  # the genuine weights, plus the payload
            state = {k: v.numpy() for k, v in paddle.load(path).items()}
        C.paddle_pickle(path, _marker(ctx), state)
    return damage


def _truncate(name, keep=0.5):
    def damage(ctx, folder):
        path = os.path.join(folder, name)
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:int(len(data) * keep)])
    return damage


def _resume(ctx, *opts):
    return ['--config', ctx.config(iters=2), '--resume_model', ctx.path('ckpt'), '--save_dir', ctx.path('out'),
            *(['--opts', *opts] if opts else [])]


def _adamw_config(ctx):
    return ctx.config(iters=2, optimizer={'_inherited_': False, 'type': 'AdamW', 'weight_decay': 0.01})


def _convert(ctx, src, *extra):
    return ['--src', ctx.path(src), '--dst', ctx.path('converted.pdparams'), *extra]


def _oob(**tensor):
    """setup(ctx): ctx.tmp/oob.pth, one tensor (a real key of the model, so that a read that is
    not refused converts with exit 0) pointing outside its storage."""
    def setup(ctx):
        args = {'storage': np.arange(19, dtype=np.float32), 'offset': 0, 'size': (19,), 'stride': (1,), **tensor}
        C.pth_zip_tensor(ctx.path('oob.pth'), 'final_layer.conv2.bias', **args)
    return setup


CASES = [
    # --- no code runs from a file the user loads ---
    ErrorCase('val-model-path-payload', 'val',
              lambda ctx: ['--config', ctx.config(), '--model_path', ctx.path('evil.pdparams')],
              expect=("'{tmp}/evil.pdparams'", *REFUSED), setup=_evil_pdparams, absent=lambda ctx: [_marker(ctx)]),
    ErrorCase('predict-model-path-payload', 'predict',
              lambda ctx: ['--config', ctx.config(), '--model_path', ctx.path('evil.pdparams'),
                           '--image_path', _image(ctx), '--save_dir', ctx.path('result')],
              expect=("'{tmp}/evil.pdparams'", *REFUSED), setup=_evil_pdparams,
              absent=lambda ctx: [_marker(ctx), ctx.path('result')]),
    ErrorCase('export-model-path-payload', 'export',
              lambda ctx: ['--config', ctx.config(), '--model_path', ctx.path('evil.pdparams'),
                           '--save_dir', ctx.path('export')],
              expect=("'{tmp}/evil.pdparams'", *REFUSED), setup=_evil_pdparams,
              absent=lambda ctx: [_marker(ctx), ctx.path('export')]),
    ErrorCase('train-pretrained-payload', 'train',
              lambda ctx: ['--config', ctx.config(), '--save_dir', ctx.path('out'),
                           '--opts', f"model.pretrained={ctx.path('evil.pdparams')}"],
              expect=("'{tmp}/evil.pdparams'", *REFUSED), setup=_evil_pdparams,
              absent=lambda ctx: [_marker(ctx), ctx.path('out', 'iter_1')]),
    *[ErrorCase(f'train-resume-payload-in-{name}', 'train', _resume,
                expect=(f"'{{tmp}}/ckpt/{name}'", *REFUSED), setup=_checkpoint(_payload_in(name)),
                absent=lambda ctx: [_marker(ctx), ctx.path('out', 'iter_2')])
      for name in ('model.pdparams', 'model.pdopt', 'train_state.pdstates')],
    ErrorCase('convert-pth-zip-payload', CONVERT,
              lambda ctx: _convert(ctx, 'evil.pth', '--model', 'ddrnet23_slim'),
              expect=("'{tmp}/evil.pth'", *REFUSED),
              setup=lambda ctx: C.pth_zip_payload(ctx.path('evil.pth'), _marker(ctx)),
              absent=lambda ctx: [_marker(ctx), ctx.path('converted.pdparams')]),
    *[ErrorCase(f'convert-pth-legacy-payload-in-{part}', CONVERT,
                lambda ctx: _convert(ctx, 'evil.pth', '--model', 'ddrnet23_slim', '--kind', 'imagenet'),
                expect=("'{tmp}/evil.pth'", *REFUSED),
                setup=lambda ctx, part=part: C.pth_legacy(ctx.path('evil.pth'), payload_in=part, marker=_marker(ctx)),
                absent=lambda ctx: [_marker(ctx), ctx.path('converted.pdparams')])
      for part in C.LEGACY_PARTS],
    ErrorCase('convert-paddleseg-payload', CONVERT,
              lambda ctx: _convert(ctx, 'evil.pdparams', '--from', 'paddleseg_ddrnet23'),
              expect=("'{tmp}/evil.pdparams'", *REFUSED), setup=_evil_pdparams,
              absent=lambda ctx: [_marker(ctx), ctx.path('converted.pdparams')]),
    # --- .pth tensors outside their storage (before: heap bytes written with exit 0, or SIGSEGV) ---
    *[ErrorCase(f'convert-pth-out-of-bounds-{what}', CONVERT,
                lambda ctx: _convert(ctx, 'oob.pth', '--model', 'ddrnet23_slim', '--kind', 'imagenet'),
                expect=("refusing to read '{tmp}/oob.pth'", detail, 'get it again'), setup=_oob(**tensor),
                absent=lambda ctx: [ctx.path('converted.pdparams')])
      for what, tensor, detail in [
          ('size', {'storage': np.arange(8, dtype=np.float32)}, 'storage of 8 elements'),
          ('stride', {'stride': (1 << 40,)}, 'stride [1099511627776]'),
          ('offset', {'offset': 1 << 20}, 'at offset 1048576'),
          ('dtype', {'storage': np.arange(20, dtype=np.float32), 'storage_type': 'DoubleStorage'},
           'not 20 x float64 = 160 bytes'),
      ]],
    # --- resumes that cannot work ---
    ErrorCase('train-resume-truncated-pdopt', 'train', _resume,
              expect=("'{tmp}/ckpt/model.pdopt'", 'truncated', 'another checkpoint'),
              setup=_checkpoint(_truncate('model.pdopt')), absent=lambda ctx: [ctx.path('out', 'iter_2')]),
    ErrorCase('train-resume-truncated-state', 'train', _resume,
              expect=("'{tmp}/ckpt/train_state.pdstates'", 'truncated', 'another iter_<N>/ checkpoint',
                      'model.pretrained={tmp}/ckpt/model.pdparams'),
              setup=_checkpoint(_truncate('train_state.pdstates')), absent=lambda ctx: [ctx.path('out', 'iter_2')]),
    ErrorCase('train-resume-empty-state', 'train', _resume,
              expect=("'{tmp}/ckpt/train_state.pdstates'", 'truncated'),
              setup=_checkpoint(_truncate('train_state.pdstates', 0)), absent=lambda ctx: [ctx.path('out', 'iter_2')]),
    ErrorCase('train-resume-into-another-optimizer', 'train',
              lambda ctx: ['--config', _adamw_config(ctx), '--resume_model', ctx.path('ckpt'),
                           '--save_dir', ctx.path('out')],
              expect=("'{tmp}/ckpt/model.pdopt'", 'does not fit this AdamW', 'optimizer (type and settings)'),
              setup=_checkpoint(), absent=lambda ctx: [ctx.path('out', 'iter_2')]),
    ErrorCase('train-resume-with-aux-head-changed', 'train', lambda ctx: _resume(ctx, 'model.aux_head=False'),
              expect=("'{tmp}/ckpt'", 'seghead_extra', 'model.aux_head=True', 'model.pretrained='),
              setup=_checkpoint(), absent=lambda ctx: [ctx.path('out', 'iter_2')]),
]
