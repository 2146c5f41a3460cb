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


# --- issue 10: no code runs from a checkpoint; the train state is JSON; clear resume errors ---

import json  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402

import numpy as np  # noqa: E402

import crafted_files as C  # noqa: E402
from paddleseg_ddr.engine.checkpoint import load_checkpoint, rng_state, set_rng_state  # noqa: E402
from paddleseg_ddr.errors import UserError  # noqa: E402


def draws():
    return random.random(), float(np.random.rand()), paddle.rand([3]).numpy().tolist()


def saved_run(folder, state_writer=None):
    model, optimizer = tiny()
    random.seed(3), np.random.seed(3), paddle.seed(3)
    state = {'iter': 7, 'best_miou': 0.25, 'best_iter': 5, 'rng': rng_state()}
    save_checkpoint(folder, model, optimizer, state)
    if state_writer:
        state_writer(os.path.join(folder, 'train_state.pdstates'), state)
    return model, draws()


def test_train_state_is_json_and_resume_restores_rng_and_weights(tmp_path):
    folder = str(tmp_path / 'iter_7')
    model, expected = saved_run(folder)
    text = open(os.path.join(folder, 'train_state.pdstates'), encoding='utf-8').read()
    assert json.loads(text)['iter'] == 7 and not text.startswith('\x80')
    other, optimizer = tiny()
    saved = load_checkpoint(folder, other, optimizer)
    assert (saved['iter'], saved['best_miou'], saved['best_iter']) == (7, 0.25, 5)
    set_rng_state(saved['rng'])
    assert draws() == expected
    assert (other.weight.numpy() == model.weight.numpy()).all()


def test_a_train_state_pickled_by_the_previous_version_still_resumes(tmp_path):
    def old_writer(path, state):
        with open(path, 'wb') as f:
            pickle.dump(state, f)
    folder = str(tmp_path / 'iter_7')
    _, expected = saved_run(folder, old_writer)
    saved = load_checkpoint(folder, *tiny())
    set_rng_state(saved['rng'])
    assert saved['iter'] == 7 and draws() == expected


@pytest.mark.parametrize('name', ['model.pdparams', 'model.pdopt', 'train_state.pdstates'])
def test_a_payload_in_any_checkpoint_file_is_refused_and_does_not_run(tmp_path, name):
    folder = str(tmp_path / 'iter_7')
    saved_run(folder)
    marker = str(tmp_path / 'pwned')
    C.paddle_pickle(os.path.join(folder, name), marker)
    with pytest.raises(UserError) as e:
        load_checkpoint(folder, *tiny())
    assert os.path.join(folder, name) in str(e.value) and C.PAYLOAD_GLOBAL in str(e.value)
    assert not os.path.exists(marker)


@pytest.mark.parametrize('edit', [
    lambda s: s.update(iter='7'), lambda s: s.update(best_miou=None), lambda s: s.pop('rng'),
    lambda s: s['rng']['numpy'].update(keys=[1, 2]), lambda s: s['rng']['python'].update(internal=[-1] * 625),
    lambda s: s['rng']['paddle'][0].update(engine='rm -rf /'), lambda s: s.update(format='other'),
], ids=['iter', 'best_miou', 'rng', 'numpy', 'python', 'paddle', 'format'])
def test_a_damaged_train_state_is_a_clear_error(tmp_path, edit):
    folder = str(tmp_path / 'iter_7')
    saved_run(folder)
    path = os.path.join(folder, 'train_state.pdstates')
    state = json.load(open(path))
    edit(state)
    json.dump(state, open(path, 'w'))
    with pytest.raises(UserError, match='cannot resume from train state .*model.pretrained='):
        load_checkpoint(folder, *tiny())


def test_resume_into_another_optimizer_is_a_clear_error(tmp_path):
    folder = str(tmp_path / 'iter_7')
    saved_run(folder)
    model = paddle.nn.Linear(3, 2)
    with pytest.raises(UserError, match="model.pdopt' does not fit this Adam"):
        load_checkpoint(folder, model, paddle.optimizer.Adam(0.01, parameters=model.parameters()))


class WithAux(paddle.nn.Layer):
    TRAIN_ONLY_PREFIXES = ('aux.',)

    def __init__(self, aux):
        super().__init__()
        self.main = paddle.nn.Linear(3, 2)
        self.aux = paddle.nn.Linear(3, 2) if aux else None

    def forward(self, x):
        return self.main(x) + (self.aux(x) if self.aux is not None else 0)


@pytest.mark.parametrize('saved_aux', [True, False])
def test_resume_with_the_training_only_layers_changed_is_a_clear_error(tmp_path, saved_aux):
    paddle.seed(0)
    model = WithAux(saved_aux)
    optimizer = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    model(paddle.ones([1, 3])).sum().backward()
    optimizer.step()
    save_checkpoint(str(tmp_path / 'c'), model, optimizer, {'iter': 1, 'best_miou': -1.0, 'best_iter': -1,
                                                            'rng': rng_state()})
    other = WithAux(not saved_aux)
    with pytest.raises(UserError, match=f'model.aux_head={saved_aux}'):
        load_checkpoint(str(tmp_path / 'c'), other, paddle.optimizer.Momentum(0.01, parameters=other.parameters()))
