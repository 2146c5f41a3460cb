import glob
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from paddle import inference

from paddleseg_ddr.cli import export_main, infer_main, predict_main
from paddleseg_ddr.deploy import config_calls
from paddleseg_ddr.errors import UserError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONFIG = os.path.join(ROOT, 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')


def labels(folder):
    return {os.path.relpath(f, folder): cv2.imread(f, cv2.IMREAD_UNCHANGED)
            for f in sorted(glob.glob(os.path.join(folder, 'label', '**', '*.png'), recursive=True))}


@pytest.fixture(scope='module')
def weights(tmp_path_factory, trained_like_model):
    import paddle
    path = str(tmp_path_factory.mktemp('w') / 'model.pdparams')
    paddle.save(trained_like_model.state_dict(), path)
    return path


@pytest.fixture(scope='module')
def val_images(mini_root):
    return os.path.join(mini_root, 'leftImg8bit', 'val')


@pytest.fixture(scope='module')
def reference(tmp_path_factory, weights, val_images):
    """Label maps from the trained checkpoint in dygraph."""
    out = tmp_path_factory.mktemp('dygraph')
    predict_main(['--config', CONFIG, '--model_path', weights, '--image_path', val_images, '--save_dir', str(out)])
    return labels(out)


def assert_same(found, reference):
    assert sorted(found) == sorted(reference) and len(found) == 10
    for k in reference:
        assert (found[k] == reference[k]).mean() >= 0.999, k


@pytest.mark.parametrize('onednn', ['True', 'False'])
def test_infer_matches_dygraph_with_and_without_onednn(tmp_path, weights, val_images, reference, onednn, capsys):
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    n = infer_main(['--config', str(tmp_path / 'inference' / 'deploy.yaml'), '--image_path', val_images,
                    '--save_dir', str(tmp_path / 'out'), '--enable_mkldnn', onednn, '--cpu_threads', '2',
                    '--batch_size', '2', '--benchmark', 'True'])
    assert n == 10
    assert_same(labels(tmp_path / 'out'), reference)
    log = capsys.readouterr().out
    assert 'falling back' not in log
    assert 'Benchmark (10 images, batch 2): preprocess' in log and 'inference' in log and 'postprocess' in log


def test_onednn_falls_back_on_a_graph_it_cannot_run(tmp_path, weights, val_images, reference, capsys):
    """With oneDNN's PIR placement pass, Paddle 3.3.1 fails on bilinear_interp at run time
    (the reason the product removes that pass): the predictor says so, continues without
    oneDNN and gives the same labels."""
    from paddleseg_ddr.deploy import PaddleInferencePredictor, predict_files
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    predictor = PaddleInferencePredictor(str(tmp_path / 'inference'), 'cpu', enable_mkldnn=True)
    assert ('delete_pass', {'pass_name': 'onednn_placement_pass'}) in predictor.calls
    predictor.calls = [c for c in predictor.calls if c[0] != 'delete_pass']  # Paddle's default placement
    predictor.predictor = predictor._create(predictor.calls)
    predict_files(predictor, val_images, str(tmp_path / 'out'))
    assert 'oneDNN cannot run this graph' in capsys.readouterr().out
    assert not predictor.onednn
    assert_same(labels(tmp_path / 'out'), reference)


def test_script_reports_unreadable_images_and_exits_non_zero(tmp_path, weights, mini_root):
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    images = tmp_path / 'images'
    images.mkdir()
    src = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    bgr = cv2.imread(src)
    cv2.imwrite(str(images / 'gray.png'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    (images / 'broken.png').write_bytes(b'not an image')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'deploy', 'python', 'infer.py'),
                           '--config', str(tmp_path / 'inference' / 'deploy.yaml'), '--image_path', str(images),
                           '--save_dir', str(tmp_path / 'out')], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'broken.png' in proc.stdout + proc.stderr
    assert 'error: 1 image(s) could not be read' in proc.stderr and 'Traceback' not in proc.stderr
    assert sorted(labels(tmp_path / 'out')) == ['label/gray.png']


def test_fixed_input_shape_mismatch_is_explained(tmp_path, weights, val_images):
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference'),
                 '--input_shape', '1', '3', '128', '256'])
    with pytest.raises(UserError, match=r'takes inputs of shape \[1, 3, 128, 256\].*got \[1, 3, 256, 512\]'):
        infer_main(['--config', str(tmp_path / 'inference'), '--image_path', val_images,
                    '--save_dir', str(tmp_path / 'out')])


def test_missing_model_files_are_named(tmp_path, weights, val_images):
    with pytest.raises(UserError, match='has no deploy.yaml'):
        infer_main(['--config', str(tmp_path), '--image_path', val_images])
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    os.remove(tmp_path / 'inference' / 'model.json')
    with pytest.raises(UserError, match='lacks model.json'):
        infer_main(['--config', str(tmp_path / 'inference' / 'deploy.yaml'), '--image_path', val_images])


def test_cpu_options():
    assert config_calls('cpu', enable_mkldnn=True, cpu_threads=3) == [
        ('disable_gpu', {}), ('set_cpu_math_library_num_threads', {'cpu_math_library_num_threads': 3}),
        ('enable_mkldnn', {}), ('delete_pass', {'pass_name': 'onednn_placement_pass'})]
    assert config_calls('cpu', enable_mkldnn=False, cpu_threads=1)[-1] == ('disable_mkldnn', {})
    with pytest.raises(UserError, match='need --device gpu'):
        config_calls('cpu', precision='fp16')
    with pytest.raises(UserError, match='need --device gpu'):
        config_calls('cpu', use_trt=True)


def test_gpu_and_tensorrt_options_are_passed_through():
    """GPU/TensorRT cannot run here; check the calls, and that Paddle's Config accepts their
    arguments (on a CPU build TensorRT then fails for lack of TensorRT, not a bad argument)."""
    P = inference.PrecisionType
    assert config_calls('gpu', gpu_id=1, precision='fp16') == [
        ('enable_use_gpu', {'memory_pool_init_size_mb': 256, 'device_id': 1, 'precision_mode': P.Half})]
    calls = config_calls('gpu', use_trt=True, precision='int8', batch_size=2, min_subgraph_size=5)
    assert calls[0] == ('enable_use_gpu', {'memory_pool_init_size_mb': 256, 'device_id': 0})
    assert calls[1] == ('enable_tensorrt_engine', {'workspace_size': 1 << 30, 'max_batch_size': 2,
                                                   'min_subgraph_size': 5, 'precision_mode': P.Int8,
                                                   'use_static': False, 'use_calib_mode': True})
    assert calls[2][0] == 'set_trt_dynamic_shape_info' and calls[2][1]['max_input_shape'] == {'x': [2, 3, 1024, 2048]}
    fp16 = config_calls('gpu', use_trt=True, precision='fp16')
    assert fp16[1][1]['precision_mode'] == P.Half and fp16[1][1]['use_calib_mode'] is False
    with pytest.raises(UserError, match='int8 on the GPU needs TensorRT'):
        config_calls('gpu', precision='int8')
    config = inference.Config()
    for method, kwargs in config_calls('gpu', precision='fp16') + [calls[2]]:
        getattr(config, method)(**kwargs)
    try:
        getattr(config, calls[1][0])(**calls[1][1])
    except RuntimeError as e:
        assert 'TENSORRT' in str(e).upper()


def test_onnx_runtime_script_matches_dygraph(tmp_path, weights, val_images, reference):
    from paddleseg_ddr.cli import onnx_infer_main
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference'),
                 '--format', 'onnx'])
    n = onnx_infer_main(['--model', str(tmp_path / 'inference' / 'model.onnx'), '--image_path', val_images,
                         '--save_dir', str(tmp_path / 'out'), '--batch_size', '3'])
    assert n == 10
    assert_same(labels(tmp_path / 'out'), reference)
