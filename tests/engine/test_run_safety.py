"""Issue 10, "no lost work" and "no silently wrong result" of a training run: a diverging run
never writes non-finite weights, a checkpoint is written before it is evaluated, and one
--save_dir takes one training at a time (a killed run's lock does not block the resume)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from paddleseg.cvlibs import manager

from paddleseg_ddr.cli import train_main
from paddleseg_ddr.engine import Builder, load_config
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.utils.lock import LOCK_FILE, run_dir_lock

import tiny_models  # noqa: F401  (registers TinySeg)
from tiny_models import TinySeg, pixel_mean_cross_entropy

train_module = sys.modules['paddleseg_ddr.engine.train']  # (the package's `train` is the function)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
HERE = os.path.dirname(os.path.abspath(__file__))
TINY = {'type': 'TinySeg', 'num_classes': 19, 'pretrained': None}


class DivergingSeg(TinySeg):
    """TinySeg whose training loss goes wrong at chosen iterations (``BLOW_UP``, set by the
    test): 'loss' makes the loss infinite; 'grad' keeps the loss finite (adds sqrt(0)) but
    makes the gradient NaN, so only the weights after the step show it."""
    BLOW_UP = {}

    def __init__(self, num_classes=19, **unused):
        super().__init__(num_classes)
        self.steps = 0

    def compute_loss(self, logits, batch, losses):
        self.steps += 1
        loss = pixel_mean_cross_entropy(logits[0], batch['label'])
        mode = self.BLOW_UP.get(self.steps)
        if mode == 'loss':
            loss = loss * float('inf')
        elif mode == 'grad':
            loss = loss + paddle.sqrt(self.conv.weight * 0.0).sum()
        return loss, [loss]


if 'DivergingSeg' not in manager.MODELS.components_dict:
    manager.MODELS.add_component(DivergingSeg)
DivergingSeg = manager.MODELS.components_dict['DivergingSeg']


def finite_files(save_dir):
    """{relative path: all tensors finite} for every model.pdparams written under save_dir."""
    out = {}
    for dirpath, _, files in os.walk(save_dir):
        if 'model.pdparams' in files:
            params = paddle.load(os.path.join(dirpath, 'model.pdparams'))
            out[os.path.relpath(dirpath, save_dir)] = all(np.isfinite(v.numpy()).all() for v in params.values())
    return out


@pytest.mark.parametrize('mode', ['loss', 'grad'])
def test_a_diverging_run_never_writes_non_finite_weights(tmp_path, mini_config, monkeypatch, mode):
    """Before: the NaN check ran at log iterations only, after the step, so iter_2 (and with
    --do_eval best_model/) were written with NaN weights; a NaN gradient under a finite loss
    ('grad') even ended with exit 0. Now the loss is checked every iteration, before the
    step, and the weights before every checkpoint."""
    monkeypatch.setattr(DivergingSeg, 'BLOW_UP', {2: mode})
    cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=3, model={**TINY, 'type': 'DivergingSeg'})
    save = tmp_path / 'o'
    with pytest.raises(UserError) as e:
        train_main(['--config', cfg, '--save_dir', str(save), '--save_interval', '1', '--log_iters', '10',
                    '--do_eval'])
    msg = str(e.value)
    assert 'at iteration 2: training diverged' in msg, msg
    assert ('the loss is inf' if mode == 'loss' else 'the weights became non-finite (conv.') in msg, msg
    assert f"the last checkpoint is '{save / 'iter_1'}'" in msg and '--learning_rate' in msg
    written = finite_files(save)
    assert written == {'iter_1': True, 'best_model': True}, written
    assert json.loads((save / 'best_model' / 'score.json').read_text())['iter'] == 1
    assert not (save / LOCK_FILE).exists()  # released by the failed run


def test_a_checkpoint_is_written_before_its_evaluation(tmp_path, mini_config, monkeypatch):
    """Before: an evaluation failure (a corrupt val image, bad slide options) stopped the run
    before that iteration's checkpoint was written. Now iter_2 is complete when the
    evaluation fails, best_model/ still holds iter_1 with its score, and resuming from
    iter_2 evaluates it first."""
    cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=3, model=TINY)
    save = tmp_path / 'o'
    original, calls = train_module.evaluate, []

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise UserError("cannot read the val image 'x.png'")
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, 'evaluate', failing_second)
    common = ['--config', cfg, '--save_dir', str(save), '--save_interval', '1', '--do_eval']
    with pytest.raises(UserError) as e:
        train_main(common)
    msg = str(e.value)
    assert "cannot read the val image 'x.png'" in msg and f"'{save / 'iter_2'}' was written" in msg
    assert '--resume_model' in msg
    assert sorted(os.listdir(save / 'iter_2')) == ['model.pdopt', 'model.pdparams', 'train_state.pdstates']
    assert json.loads((save / 'best_model' / 'score.json').read_text())['iter'] == 1
    assert (save / 'best_model' / 'model.pdparams').read_bytes() == (save / 'iter_1' / 'model.pdparams').read_bytes()

    monkeypatch.setattr(train_module, 'evaluate', original)
    out = train_main([*common, '--resume_model', str(save / 'iter_2')])
    assert out['iter'] == 3 and out['iters_run'] == 1
    val_dataset, scored = Builder(load_config(cfg)).val_dataset, {}
    for it in (1, 2, 3):  # the best of the three, each scored alone
        model = TinySeg()
        model.set_state_dict(paddle.load(str(save / f'iter_{it}' / 'model.pdparams')))
        scored[it] = original(model, val_dataset, print_detail=False)['miou']
    best = max(scored, key=lambda it: (scored[it], -it))
    score = json.loads((save / 'best_model' / 'score.json').read_text())
    assert score['iter'] == best and score['miou'] == pytest.approx(scored[best], abs=1e-9), (score, scored)
    assert (save / 'best_model' / 'model.pdparams').read_bytes() == \
        (save / f'iter_{best}' / 'model.pdparams').read_bytes()


def test_a_corrupt_val_image_does_not_lose_the_checkpoint(tmp_path, mini_root, mini_config):
    """The issue's case end to end: a zero-byte val image in a copy of the mini dataset."""
    root = tmp_path / 'data'
    (root / 'leftImg8bit').mkdir(parents=True)
    os.symlink(os.path.join(mini_root, 'gtFine'), root / 'gtFine')
    os.symlink(os.path.join(mini_root, 'leftImg8bit', 'train'), root / 'leftImg8bit' / 'train')
    for city in sorted(os.listdir(os.path.join(mini_root, 'leftImg8bit', 'val'))):
        (root / 'leftImg8bit' / 'val' / city).mkdir(parents=True)
        for name in sorted(os.listdir(os.path.join(mini_root, 'leftImg8bit', 'val', city))):
            os.symlink(os.path.join(mini_root, 'leftImg8bit', 'val', city, name), root / 'leftImg8bit' / 'val' / city / name)
    victim = sorted((root / 'leftImg8bit' / 'val').glob('*/*.png'))[0]
    victim.unlink()
    victim.write_bytes(b'')
    cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=1, model=TINY,
                      val_dataset={'dataset_root': str(root)})
    save = tmp_path / 'o'
    with pytest.raises(Exception):
        train_main(['--config', cfg, '--save_dir', str(save), '--do_eval'])
    assert sorted(os.listdir(save / 'iter_1')) == ['model.pdopt', 'model.pdparams', 'train_state.pdstates']


# --- one training per --save_dir -------------------------------------------------------------

HOLD_LOCK = ('import sys, time; from paddleseg_ddr.utils.lock import run_dir_lock\n'
             'with run_dir_lock(sys.argv[1]):\n'
             '    print("locked", flush=True); sys.stdin.read()\n')


def test_a_second_run_on_a_locked_save_dir_is_refused(tmp_path, mini_config):
    """Before: nothing stopped a second training on the same folder. Now it is refused at
    start with the holder's pid, and writes nothing."""
    save = tmp_path / 'o'
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(save)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=1, model=TINY)
        with pytest.raises(UserError) as e:
            train_main(['--config', cfg, '--save_dir', str(save)])
        msg = str(e.value)
        assert f"--save_dir '{save}' is in use by another training (pid {holder.pid} on host" in msg, msg
        assert 'give another --save_dir' in msg
        assert sorted(os.listdir(save)) == [LOCK_FILE]
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (save / LOCK_FILE).exists()  # released and removed by the holder


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    save = tmp_path / 'o'
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(save)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout.readline().strip() == 'locked'
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    assert json.loads((save / LOCK_FILE).read_text())['pid'] == holder.pid  # left behind, stale
    with run_dir_lock(str(save)):
        assert json.loads((save / LOCK_FILE).read_text())['pid'] == os.getpid()
        with pytest.raises(UserError, match=f'pid {os.getpid()} on host'):
            with run_dir_lock(str(save)):  # a second holder, even in the same process
                pass
    assert not (save / LOCK_FILE).exists()


TRAIN_WITH_TINY = ('import sys; sys.path.insert(0, sys.argv[1]); import tiny_models\n'
                   'from paddleseg_ddr.cli import run, train_main\n'
                   'run(lambda: train_main(sys.argv[2:]))\n')


@pytest.mark.slow
def test_concurrent_trainings_and_the_resume_of_a_killed_one(tmp_path, mini_config):
    """Two real trainings: while the first runs, the second on its folder is refused (exit 2,
    no traceback); the first is killed (SIGKILL) and a resume from its last checkpoint runs
    on the same folder (the kernel released the lock)."""
    cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=100000, model=TINY)
    save = tmp_path / 'o'
    first = subprocess.Popen([sys.executable, '-c', TRAIN_WITH_TINY, HERE, '--config', cfg, '--save_dir', str(save),
                              '--save_interval', '1', '--keep_checkpoint_max', '2'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not list(save.glob('iter_*/train_state.pdstates')):
            assert first.poll() is None and time.time() < deadline, 'the first training did not start'
            time.sleep(0.2)
        second = subprocess.run([sys.executable, '-c', TRAIN_WITH_TINY, HERE, '--config', cfg,
                                 '--save_dir', str(save), '--iters', '1'],
                                capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert second.returncode == 2 and 'Traceback' not in second.stderr, second.stderr[-3000:]
        assert f'is in use by another training (pid {first.pid} on host' in second.stderr
    finally:
        first.kill()
        first.wait(timeout=60)
    done = sorted(int(d.split('_')[1]) for d in os.listdir(save)
                  if d.startswith('iter_') and (save / d / 'train_state.pdstates').exists())
    out = train_main(['--config', cfg, '--save_dir', str(save), '--iters', str(done[-1] + 1),
                      '--resume_model', str(save / f'iter_{done[-1]}')])
    assert out['iter'] == done[-1] + 1 and out['iters_run'] == 1
    assert not (save / LOCK_FILE).exists()
