import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


@pytest.mark.slow
def test_two_process_launch_on_cpu_keeps_ranks_in_sync(tmp_path, mini_config):
    """Two ranks, different seeds and different data shards: after two steps of the
    engine under paddle.distributed.launch, every trainable weight is identical (parameter
    broadcast + gradient all-reduce), while BN running statistics (plain BN on CPU) differ."""
    cmd = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
           '--log_dir', str(tmp_path / 'log'), os.path.join(ROOT, 'tests', 'engine', 'dist_train_step.py'),
           mini_config(tmp_path, batch_size=2, crop=128), str(tmp_path), '2']
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    logs = ''.join(open(os.path.join(tmp_path, 'log', f)).read() for f in sorted(os.listdir(tmp_path / 'log')))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-3000:]
    ranks = [np.load(tmp_path / f'rank{r}.npz') for r in range(2)]
    assert int(ranks[0]['nranks']) == 2 and int(ranks[0]['iters']) == 2
    names = [k for k in ranks[0].files if k not in ('nranks', 'iters')]
    stats = [k for k in names if k.endswith(('._mean', '._variance'))]
    weights = [k for k in names if k not in stats]
    assert len(weights) > 100
    for k in weights:
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=k)
    assert max(np.abs(ranks[0][k] - ranks[1][k]).max() for k in stats) > 0
