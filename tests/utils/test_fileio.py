import ast
import glob
import os

import cv2
import numpy as np
import paddle
import pytest

from paddleseg_ddr.utils.fileio import atomic_path, atomic_write, remove_own_files, save_paddle, write_image

UTILS = os.path.join(os.path.dirname(__file__), '..', '..', 'paddleseg_ddr', 'utils')


def leftovers(folder):
    return [f for f in os.listdir(folder) if '.tmp' in f]


def test_atomic_write_replaces_only_when_complete(tmp_path):
    path = str(tmp_path / 'out.json')
    with atomic_write(path, 'w') as f:
        f.write('first')
        assert not os.path.exists(path)  # nothing under the final name while writing
    assert open(path).read() == 'first'
    with pytest.raises(RuntimeError):
        with atomic_write(path, 'w') as f:
            f.write('half-')
            raise RuntimeError('crash while writing')
    assert open(path).read() == 'first' and leftovers(tmp_path) == []
    with atomic_write(path, 'wb') as f:
        f.write(b'second')
    assert open(path).read() == 'second' and leftovers(tmp_path) == []
    with pytest.raises(ValueError):
        with atomic_write(path, 'a'):
            pass


def test_atomic_path_for_writers_taking_a_file_name(tmp_path):
    path = str(tmp_path / 'label.png')
    with atomic_path(path, suffix='.png') as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith('.png') and tmp != path
        cv2.imwrite(tmp, np.zeros((4, 4), np.uint8))
    assert cv2.imread(path) is not None
    with pytest.raises(OSError, match='nothing was written'):
        with atomic_path(str(tmp_path / 'never.bin')):
            pass
    assert sorted(os.listdir(tmp_path)) == ['label.png']


def test_save_paddle_and_write_image(tmp_path):
    path = str(tmp_path / 'w.pdparams')
    save_paddle({'a': paddle.ones([2])}, path)
    assert paddle.load(path)['a'].numpy().tolist() == [1.0, 1.0]
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    write_image(str(tmp_path / 'i.png'), image)
    assert (cv2.imread(str(tmp_path / 'i.png')) == image).all()
    with pytest.raises(Exception):  # an extension OpenCV cannot encode: no file at all
        write_image(str(tmp_path / 'bad.notanimage'), image)
    assert sorted(os.listdir(tmp_path)) == ['i.png', 'w.pdparams']


def test_remove_own_files_removes_nothing_else(tmp_path):
    for name in ('model.pdparams', 'model.pdparams.tmp-99-0', 'notes.txt', 'model.pdparams.bak'):
        (tmp_path / name).write_text('x')
    left = remove_own_files(str(tmp_path), ['model.pdparams', 'missing.file'])
    assert left == ['model.pdparams.bak', 'notes.txt'] == sorted(os.listdir(tmp_path))


def test_utils_is_the_bottom_layer():
    """paddleseg_ddr.utils imports nothing from engine, deploy or models (errors only)."""
    allowed = {'paddleseg_ddr', 'paddleseg_ddr.errors', 'paddleseg_ddr.utils'}
    for path in glob.glob(os.path.join(UTILS, '*.py')):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative to paddleseg_ddr.utils
                    base = ['paddleseg_ddr', 'paddleseg_ddr.utils'][node.level == 1]
                    names = [f'{base}.{node.module}' if node.module else base]
                else:
                    names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith('paddleseg_ddr'):
                    assert any(name == a or name.startswith('paddleseg_ddr.utils') for a in allowed), (path, name)
