"""Error cases of training runs: config values, run folder, evaluation options (see tests/error_cases.py)."""
from error_cases import ErrorCase

CASES = [
    ErrorCase('train-config-missing', 'train', lambda ctx: ['--config', ctx.path('missing.yml')],
              expect=("config file not found: '{tmp}/missing.yml'", 'configs/')),
]
