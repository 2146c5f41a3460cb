"""Checkpoint writing: folders are never renamed or removed, files are replaced atomically,
pruning removes only checkpoint files."""
import os

import paddle
import pytest

from paddleseg_ddr.engine import checkpoint
from paddleseg_ddr.engine.checkpoint import prune_checkpoints, save_checkpoint

FILES = ['model.pdopt', 'model.pdparams', 'train_state.pdstates']


def tiny():
    paddle.seed(0)
    model = paddle.nn.Linear(3, 2)
    optimizer = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    model(paddle.ones([1, 3])).sum().backward()
    optimizer.step()
    return model, optimizer


def test_best_model_is_never_missing_and_keeps_user_files(tmp_path, monkeypatch):
    model, _ = tiny()
    best = str(tmp_path / 'best_model')
    save_checkpoint(best, model)
    (tmp_path / 'best_model' / 'notes.txt').write_text('mine')
    seen = []
    real_replace = os.replace

    def observed_replace(src, dst):  # every rename of the save: best_model/ before and after it
        seen.append(os.path.isdir(best) and os.path.isfile(os.path.join(best, 'model.pdparams')))
        real_replace(src, dst)
        seen.append(os.path.isdir(best) and os.path.isfile(os.path.join(best, 'model.pdparams')))
    monkeypatch.setattr(os, 'replace', observed_replace)
    with paddle.no_grad():
        model.weight.set_value(model.weight + 1)
    save_checkpoint(best, model)
    assert seen and all(seen)
    assert (tmp_path / 'best_model' / 'notes.txt').read_text() == 'mine'
    assert sorted(os.listdir(best)) == ['model.pdparams', 'notes.txt']
    assert sorted(os.listdir(tmp_path)) == ['best_model']  # no temporary or '.old' folder
    saved = paddle.load(os.path.join(best, 'model.pdparams'))['weight'].numpy()
    assert (saved == model.weight.numpy()).all()


def test_crash_mid_save_leaves_no_half_written_file(tmp_path, monkeypatch):
    model, optimizer = tiny()
    folder = str(tmp_path / 'iter_2')
    save_checkpoint(folder, model, optimizer, {'iter': 2})
    before = open(os.path.join(folder, 'model.pdparams'), 'rb').read()
    real_save = paddle.save

    def crashing_save(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and 'weight' in obj:
            real_save(obj, path, *args, **kwargs)
            return
        with open(path, 'wb') as f:  # the optimizer state: half written, then the process dies
            f.write(b'half')
        raise OSError('disk full')
    monkeypatch.setattr(paddle, 'save', crashing_save)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint(folder, model, optimizer, {'iter': 2})
    names = sorted(os.listdir(folder))
    assert not any('.tmp' in n for n in names), names
    # the interrupted checkpoint does not look complete: no train state, so it is not resumable
    assert 'train_state.pdstates' not in names
    assert open(os.path.join(folder, 'model.pdopt'), 'rb').read() != b'half'
    assert open(os.path.join(folder, 'model.pdparams'), 'rb').read() == before  # same weights, whole file
    assert sorted(os.listdir(tmp_path)) == ['iter_2']
    monkeypatch.setattr(paddle, 'save', real_save)
    save_checkpoint(folder, model, optimizer, {'iter': 2})
    assert sorted(os.listdir(folder)) == FILES


def test_train_state_is_written_last(tmp_path, monkeypatch):
    model, optimizer = tiny()
    folder = str(tmp_path / 'iter_1')
    order = []
    real_replace = os.replace
    monkeypatch.setattr(os, 'replace', lambda src, dst: (order.append(os.path.basename(dst)), real_replace(src, dst)))
    save_checkpoint(folder, model, optimizer, {'iter': 1})
    assert order == ['model.pdparams', 'model.pdopt', 'train_state.pdstates']


def test_prune_removes_only_checkpoint_files(tmp_path):
    model, optimizer = tiny()
    save_dir = tmp_path / 'output'
    for it in (1, 2, 3, 4):
        save_checkpoint(str(save_dir / f'iter_{it}'), model, optimizer, {'iter': it})
    (save_dir / 'iter_1' / 'notes.txt').write_text('mine')       # the user's file in a checkpoint
    os.makedirs(save_dir / 'iter_0' / 'sub')                     # the user's folders with checkpoint-like names
    (save_dir / 'iter_0' / 'sub' / 'x.txt').write_text('mine')
    os.makedirs(save_dir / 'iter_99')
    (save_dir / 'iter_99' / 'readme.md').write_text('mine')
    (save_dir / 'vdlrecords.1.log').write_text('logs')
    prune_checkpoints(str(save_dir), keep=2)
    assert sorted(os.listdir(save_dir)) == ['iter_0', 'iter_1', 'iter_3', 'iter_4', 'iter_99', 'vdlrecords.1.log']
    assert os.listdir(save_dir / 'iter_1') == ['notes.txt']
    assert (save_dir / 'iter_0' / 'sub' / 'x.txt').read_text() == 'mine'
    assert os.listdir(save_dir / 'iter_99') == ['readme.md']
    for it in (3, 4):  # folders without a checkpoint do not count towards keep
        assert sorted(os.listdir(save_dir / f'iter_{it}')) == FILES
    prune_checkpoints(str(save_dir), keep=1)
    assert sorted(os.listdir(save_dir)) == ['iter_0', 'iter_1', 'iter_4', 'iter_99', 'vdlrecords.1.log']
    assert checkpoint.MODEL_FILE in os.listdir(save_dir / 'iter_4')
