"""tools/export_onnx.py (convert an existing export) gives the same folder as
export.py --format onnx, and deploy/onnx/infer.py runs on both."""
import glob
import os
import shutil
import subprocess
import sys

import paddle
import pytest

from paddleseg_ddr.deploy import export_inference_model
from paddleseg_ddr.models import DDRNet23Slim

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]


def script(*args, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(cwd))


@pytest.fixture(scope='module')
def model():
    paddle.seed(5)
    m = DDRNet23Slim(num_classes=19, aux_head=False)
    m.eval()
    return m


def test_both_onnx_routes_give_the_same_folder(tmp_path, model, mini_root):
    direct = export_inference_model(model, str(tmp_path / 'direct'), NORMALIZE, onnx=True)
    converted = export_inference_model(model, str(tmp_path / 'converted'), NORMALIZE)
    (tmp_path / 'converted' / 'notes.txt').write_text('mine')
    proc = script(os.path.join(ROOT, 'tools', 'export_onnx.py'), '--model_dir', converted, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert open(os.path.join(direct, 'deploy.yaml')).read() == open(os.path.join(converted, 'deploy.yaml')).read()
    assert sorted(os.listdir(direct)) + ['notes.txt'] == sorted(os.listdir(converted))
    assert (tmp_path / 'converted' / 'notes.txt').read_text() == 'mine'
    image = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    small = tmp_path / 'images'
    small.mkdir()
    shutil.copy(image, small / 'a.png')
    labels = {}
    for name, folder in (('direct', direct), ('converted', converted)):
        out = tmp_path / f'out_{name}'
        proc = script(os.path.join(ROOT, 'deploy', 'onnx', 'infer.py'), '--model', folder, '--image_path', str(small),
                      '--save_dir', str(out), '--cpu_threads', '1', cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        labels[name] = open(out / 'label' / 'a.png', 'rb').read()
    assert labels['direct'] == labels['converted']


def test_tool_reports_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    proc = script(os.path.join(ROOT, 'tools', 'export_onnx.py'), '--model_dir', str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and 'deploy.yaml' in proc.stdout + proc.stderr
    assert os.listdir(tmp_path) == ['notes.txt']
