"""Error cases of training runs: config values, run folder, evaluation options (see tests/error_cases.py)."""
from error_cases import ErrorCase


def _train(config_overrides=None, *extra):
    """argv of a training run on a small config, with checkpoints in ctx.tmp/out."""
    return lambda ctx: ['--config', ctx.config(**(config_overrides or {})), '--save_dir', ctx.path('out'), *extra]


def _out(ctx):
    return [ctx.path('out')]


def _save_dir_is_a_file(ctx):
    with open(ctx.path('out'), 'w') as f:
        f.write('not a folder')


CASES = [
    ErrorCase('train-config-missing', 'train', lambda ctx: ['--config', ctx.path('missing.yml')],
              expect=("config file not found: '{tmp}/missing.yml'", 'configs/')),

    # Config values of the wrong type or range (issue 10): refused before anything is built or written.
    ErrorCase('train-iters-not-a-number', 'train', _train({'iters': 'abc'}),
              expect=("iters: 'abc'", 'positive whole number', '{tmp}/config.yml', '--iters'), absent=_out),
    ErrorCase('train-iters-zero', 'train', _train({'iters': 0}),
              expect=('iters: 0', 'positive whole number'), absent=_out),
    ErrorCase('train-batch-size-negative', 'train', _train({'batch_size': -1}),
              expect=('batch_size: -1', 'positive whole number', '--batch_size'), absent=_out),
    ErrorCase('train-batch-size-fraction', 'train', _train({'batch_size': 2.5}),
              expect=('batch_size: 2.5', 'positive whole number'), absent=_out),
    ErrorCase('train-batch-size-bool', 'train', _train({'batch_size': True}),
              expect=('batch_size: True', 'positive whole number'), absent=_out),
    ErrorCase('train-learning-rate-zero', 'train', _train({'lr_scheduler': {'learning_rate': 0}}),
              expect=('lr_scheduler.learning_rate: 0', 'positive number', '--learning_rate'), absent=_out),
    ErrorCase('train-learning-rate-negative', 'train', _train({'lr_scheduler': {'learning_rate': -0.01}}),
              expect=('lr_scheduler.learning_rate: -0.01', 'positive number'), absent=_out),
    ErrorCase('train-learning-rate-text', 'train', _train({'lr_scheduler': {'learning_rate': 'fast'}}),
              expect=("lr_scheduler.learning_rate: 'fast'", 'positive number'), absent=_out),
    ErrorCase('train-num-workers-negative', 'train', _train(None, '--num_workers', '-1'),
              expect=('--num_workers must be 0 (data read in the main process) or more, got -1',), absent=_out),
    ErrorCase('train-num-classes-differs-from-dataset', 'train', _train({'model': {'num_classes': 7}}),
              expect=('model.num_classes is 7', 'DDRCityscapes', '19 classes', 'model.num_classes=19'),
              absent=_out),
    ErrorCase('val-num-classes-differs-from-dataset', 'val',
              lambda ctx: ['--config', ctx.config(model={'num_classes': 7}), '--model_path', ctx.path('none.pdparams')],
              expect=('model.num_classes is 7', '19 classes')),
    ErrorCase('train-device-unknown', 'train', _train(None, '--device', 'tpu'),
              expect=("--device 'tpu'", "'cpu'", "'gpu'"), absent=_out),
    ErrorCase('val-device-unknown', 'val',
              lambda ctx: ['--config', ctx.config(), '--model_path', ctx.path('none.pdparams'), '--device', 'tpu'],
              expect=("--device 'tpu'",)),
    ErrorCase('train-model-argument-misspelt', 'train', _train({'model': {'aux_hed': False}}),
              expect=("model: unknown argument 'aux_hed'", "Did you mean 'aux_head'", 'DDRNet23Slim'), absent=_out),

    # The run folder (issue 10): refused at start, not at the first checkpoint.
    ErrorCase('train-save-dir-is-a-file', 'train', _train(), setup=_save_dir_is_a_file,
              expect=("--save_dir '{tmp}/out' is a file", 'another --save_dir')),
    ErrorCase('train-save-dir-under-a-file', 'train',
              lambda ctx: ['--config', ctx.config(), '--save_dir', ctx.path('out', 'run')], setup=_save_dir_is_a_file,
              expect=("--save_dir '{tmp}/out/run'", "'{tmp}/out' is a file")),

    # Evaluation options of --do_eval (issue 10): checked before training starts.
    ErrorCase('train-eval-stride-zero', 'train',
              _train(None, '--do_eval', '--is_slide', '--crop_size', '64', '64', '--stride', '0', '0'),
              expect=('--stride 0 0', 'positive'), absent=_out),
    ErrorCase('train-eval-stride-above-crop', 'train',
              _train(None, '--do_eval', '--is_slide', '--crop_size', '64', '64', '--stride', '96', '32'),
              expect=('--stride 96 32', '--crop_size 64 64', 'unpredicted'), absent=_out),
    ErrorCase('train-eval-scale-zero', 'train', _train(None, '--do_eval', '--aug_eval', '--scales', '0'),
              expect=('--scales 0', 'positive'), absent=_out),
    ErrorCase('train-eval-slide-without-window', 'train', _train(None, '--do_eval', '--is_slide'),
              expect=('--is_slide needs --crop_size',), absent=_out),
    ErrorCase('train-eval-test-config-crop-not-a-pair', 'train',
              _train({'test_config': {'is_slide': True, 'crop_size': 64, 'stride': [32, 32]}}, '--do_eval'),
              expect=('crop_size', '64', 'two positive whole numbers'), absent=_out),
]
