"""Weights are read without running code from the file: Paddle's pickles through a restricted
unpickler that allows exactly what paddle.save writes, .safetensors as data."""
import copyreg
import os
import pickle

import numpy as np
import paddle
import pytest

import crafted_files as C
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.utils.safe_pickle import PADDLE_GLOBALS, UnsafePickleError, load_paddle
from paddleseg_ddr.utils.weights import load_model_weights, load_pretrained, read_params, save_safetensors


def genuine_files(folder):
    """A state dict and two optimizer states (with an LR scheduler) as paddle.save writes them."""
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Linear(2, 2))
    files = {'pdparams': os.path.join(folder, 'm.pdparams')}
    paddle.save(model.state_dict(), files['pdparams'])
    for name, opt in [('momentum', paddle.optimizer.Momentum(paddle.optimizer.lr.PolynomialDecay(0.01, 10),
                                                             parameters=model.parameters(), weight_decay=5e-4)),
                      ('adamw', paddle.optimizer.AdamW(0.01, parameters=model.parameters()))]:
        model(paddle.ones([1, 3, 4, 4])).mean().backward()
        opt.step()
        opt.clear_grad()
        files[name] = os.path.join(folder, f'{name}.pdopt')
        paddle.save(opt.state_dict(), files[name])
    return model, files


def globals_of(path):
    """The globals a (genuine) pickle names, recorded while plain pickle loads it."""
    found = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            found.add((module, name))
            return super().find_class(module, name)
    with open(path, 'rb') as f:
        Recording(f).load()
    return found


def test_paddle_save_writes_only_the_allowed_globals(tmp_path):
    _, files = genuine_files(str(tmp_path))
    seen = set().union(*(globals_of(p) for p in files.values()))
    assert seen == {('numpy.core.multiarray', '_reconstruct'), ('numpy', 'ndarray'), ('numpy', 'dtype')}
    assert seen <= set(PADDLE_GLOBALS)


def test_genuine_files_load_as_paddle_load_does(tmp_path):
    _, files = genuine_files(str(tmp_path))
    for path in files.values():
        ours, theirs = load_paddle(path), paddle.load(path)
        assert list(ours) == list(theirs)
        for key, value in theirs.items():
            if isinstance(value, paddle.Tensor):
                assert ours[key].dtype == value.dtype and (ours[key].numpy() == value.numpy()).all()
            else:
                assert ours[key] == value
    assert isinstance(load_paddle(files['pdparams'], return_numpy=True)['0.weight'], np.ndarray)


class Exec:
    def __reduce__(self):
        return exec, ('import os; os.mkdir(MARKER)',)


@pytest.mark.parametrize('protocol', [0, 2, 4])
def test_a_payload_is_refused_naming_file_and_global_and_does_not_run(tmp_path, protocol):
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / 'evil.pdparams')
    with open(path, 'wb') as f:
        pickle.dump({'w': np.zeros(3, np.float32), 'x': C.Payload(marker)}, f, protocol=protocol)
    with pytest.raises(UnsafePickleError) as e:
        read_params(path)
    assert f"'{path}'" in str(e.value) and f"'{C.PAYLOAD_GLOBAL}'" in str(e.value)
    assert not os.path.exists(marker)
    with open(path, 'wb') as f:
        pickle.dump({'x': Exec()}, f, protocol=protocol)
    with pytest.raises(UnsafePickleError) as e:
        load_paddle(path)
    assert "builtins.exec'" in str(e.value) or "__builtin__.exec'" in str(e.value)


def evil_bytes_cases(marker):
    arr = pickle.dumps(np.zeros(2, np.float32), protocol=2)
    yield 'ndarray called directly', b'\x80\x02cnumpy\nndarray\nK\x02\x85R.'  # numpy.ndarray((2,))
    yield 'reconstruct of another class', (b'\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\n'
                                           b'K\x00\x85C\x01b\x87R.')
    yield 'object array', pickle.dumps(np.array([1, None], dtype=object), protocol=2)
    yield 'persistent id', b'\x80\x02X\x01\x00\x00\x00aQ.'
    assert arr  # the genuine form loads (below)
    # an extension code registered for posix.mkdir resolves through find_class too
    copyreg.add_extension(os.mkdir.__module__, 'mkdir', 240)
    try:
        yield 'extension code', pickle.dumps(C.Payload(marker), protocol=2)
    finally:
        copyreg.remove_extension(os.mkdir.__module__, 'mkdir', 240)


def test_other_ways_to_call_code_are_refused(tmp_path):
    marker = str(tmp_path / 'pwned')
    for what, data in evil_bytes_cases(marker):
        path = str(tmp_path / 'evil.pdparams')
        with open(path, 'wb') as f:
            f.write(data)
        with pytest.raises(UserError) as e:
            load_paddle(path)
        assert f"'{path}'" in str(e.value), what
    assert not os.path.exists(marker)


def test_truncated_file_is_a_clear_error(tmp_path):
    _, files = genuine_files(str(tmp_path))
    data = open(files['pdparams'], 'rb').read()
    for keep in (0, 10, len(data) // 2, len(data) - 1):
        with open(files['pdparams'], 'wb') as f:
            f.write(data[:keep])
        with pytest.raises(UserError, match='truncated'):
            read_params(files['pdparams'])


def test_safetensors_load_wherever_pdparams_load(tmp_path):
    model, files = genuine_files(str(tmp_path))
    st = str(tmp_path / 'm.safetensors')
    save_safetensors(model.state_dict(), st)
    paddle.save(model.state_dict(), files['pdparams'])
    _, a = read_params(files['pdparams'])
    _, b = read_params(st)
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and (a[k].numpy() == b[k].numpy()).all()
    assert paddle.load(st, safetensors=True).keys() == b.keys()  # Paddle reads it too
    paddle.seed(1)
    other = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Linear(2, 2))
    load_model_weights(other, st)
    assert all((other.state_dict()[k].numpy() == v.numpy()).all() for k, v in model.state_dict().items())
    paddle.seed(2)
    other = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Linear(2, 2))
    assert len(load_pretrained(other, st)['loaded']) == len(model.state_dict())
    with open(st, 'r+b') as f:
        f.truncate(os.path.getsize(st) // 2)
    with pytest.raises(UserError, match=f"'{st}'"):
        read_params(st)
