"""Runs the modules of ``isolation.ISOLATED`` in a pytest process of their own (see the reason
in isolation.py): their tests pass or fail here, with their output shown on failure."""
import os
import subprocess
import sys

import pytest

from isolation import ISOLATED, ISOLATED_ENV, ROOT


@pytest.mark.parametrize('module', ISOLATED)
def test_module_in_its_own_process(module):
    env = dict(os.environ, **{ISOLATED_ENV: '1'})
    # a folder's run leaves out the modules listed after it (they get their own run)
    others = [p for p in ISOLATED if p != module and p.startswith(module + '/')]
    ignore = [arg for p in others for arg in ('--ignore', os.path.join('tests', p))]
    proc = subprocess.run([sys.executable, '-m', 'pytest', os.path.join('tests', module), '-q', '-p', 'no:cacheprovider',
                           *ignore], cwd=ROOT, env=env, capture_output=True, text=True)
    print(proc.stdout[-1500:])
    summary = [line for line in proc.stdout.splitlines() if ' passed' in line or ' failed' in line or 'error' in line]
    assert proc.returncode == 0, (proc.stdout[-6000:] + proc.stderr[-3000:])
    assert summary and 'passed' in summary[-1] and 'failed' not in summary[-1], proc.stdout[-3000:]
