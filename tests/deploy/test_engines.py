"""The engine registry (create_runner) and deploy.yaml's precisions: each engine runs the file
made for the precision asked for, refuses what it cannot run, and says how to make a
precision the export lacks."""
import os
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from paddleseg_ddr.deploy import export_inference_model, paddle_inference
from paddleseg_ddr.deploy.deploy_config import read_deploy_config, record_precision, validate_deploy
from paddleseg_ddr.deploy.engines import ENGINES, check_engine, create_runner
from paddleseg_ddr.errors import UserError
from engine_exports import NORMALIZE, channel_argmax_onnx, copy_export, mini_batches, shared

# Paddle Inference's oneDNN bf16 against its fp32 on the mini val images, this test's model
# (random weights): measured 0.986-0.992 (2026-11-26). Below 0.97 it is broken.
BF16_MIN_AGREEMENT = 0.97


@pytest.fixture(scope='module')
def with_int8(tmp_path_factory):
    """A copy of the shared export with a recorded stand-in int8 model (the channel argmax:
    distinguishable from the network, so the test sees which file ran)."""
    folder = copy_export(str(tmp_path_factory.mktemp('int8') / 'export'))
    channel_argmax_onnx(os.path.join(folder, 'model.int8.onnx'))
    record_precision(folder, 'int8', {'onnx_model': 'model.int8.onnx'}, info={'tool': 'stand-in'})
    return folder


def test_every_engine_runs_fp32_to_the_same_labels(mini_root):
    x = next(mini_batches(mini_root, 1))
    outputs = {}
    for engine in ENGINES:
        runner = create_runner(shared()[0], engine, 'fp32', cpu_threads=2)
        assert runner.engine == engine and runner.precision == 'fp32'
        outputs[engine] = runner.run(x)
        label = runner(np.full((64, 96, 3), 127, np.uint8))  # preprocessing + run + label map
        assert label.shape == (64, 96) and label.dtype == np.uint8
    for engine in ENGINES:
        assert outputs[engine].shape == x.shape[:1] + x.shape[2:]
        assert (outputs[engine] == outputs['paddle']).mean() >= 0.9999, engine


def test_int8_runs_the_recorded_int8_file(with_int8, mini_root):
    x = next(mini_batches(mini_root, 1))
    expected = x.argmax(axis=1)
    for engine in ('onnxruntime', 'openvino'):
        runner = create_runner(with_int8, engine, 'int8', cpu_threads=2)
        assert runner.model_file.endswith('model.int8.onnx') and runner.precision == 'int8'
        assert np.array_equal(runner.run(x), expected), engine
        fp32 = create_runner(with_int8, engine, 'fp32', cpu_threads=2)
        assert fp32.model_file.endswith('model.onnx') and not np.array_equal(fp32.run(x), expected)
    # the int8 model has no Paddle graph: Paddle Inference says which engines read it
    with pytest.raises(UserError, match="int8 model of .* has no 'model' file .*onnx_model"):
        create_runner(with_int8, 'paddle', 'int8')
    # the file given directly runs at the precision deploy.yaml records for it
    direct = create_runner(os.path.join(with_int8, 'model.int8.onnx'), 'onnxruntime', 'int8')
    assert direct.precision == 'int8'
    with pytest.raises(UserError, match='is the int8 model of its export.*--precision int8'):
        create_runner(os.path.join(with_int8, 'model.int8.onnx'), 'onnxruntime', 'fp32')


def test_missing_precision_says_how_to_make_it():
    with pytest.raises(UserError, match=r"has no int8 model \(its deploy.yaml lists: fp32\).*tools/quantize.py"):
        create_runner(shared()[0], 'onnxruntime', 'int8')


def test_engine_and_precision_checks():
    with pytest.raises(UserError, match="--engine must be one of paddle, onnxruntime, openvino.*'openvino'"):
        check_engine('openvin', 'fp32')
    with pytest.raises(UserError, match='onnxruntime cannot run --precision bf16.*--engine paddle or --engine openvino'):
        create_runner(shared()[0], 'onnxruntime', 'bf16')
    with pytest.raises(UserError, match="--precision must be one of fp32, bf16, int8.*'bf16'"):
        check_engine('openvino', 'bf61')


def test_paddle_bf16_runs_on_onednn_and_is_refused_without(mini_root, monkeypatch):
    """Paddle 3.3.1's oneDNN bf16 (enable_mkldnn_bfloat16, placement pass deleted) runs and
    changes some labels; without oneDNN, or on a CPU without bf16, it is refused."""
    if not paddle_inference.bf16_supported():
        pytest.skip('this CPU has no bf16')
    fp32 = create_runner(shared()[0], 'paddle', 'fp32', cpu_threads=2)
    bf16 = create_runner(shared()[0], 'paddle', 'bf16', cpu_threads=2)
    assert ('enable_mkldnn_bfloat16', {}) in bf16.calls
    same = total = 0
    for x in mini_batches(mini_root, 2):
        a, b = fp32.run(x), bf16.run(x)
        same, total = same + (a == b).sum(), total + a.size
    assert BF16_MIN_AGREEMENT <= same / total < 1.0, same / total
    with pytest.raises(UserError, match='bf16 with Paddle Inference runs on oneDNN'):
        create_runner(shared()[0], 'paddle', 'bf16', enable_mkldnn=False)
    monkeypatch.setattr(paddle_inference, 'bf16_supported', lambda: False)
    with pytest.raises(UserError, match='no native bf16'):
        create_runner(shared()[0], 'paddle', 'bf16')


@pytest.mark.parametrize('entries, match', [
    ({'precision': 'int16'}, "precision 'int16' is not one of fp32, int8"),
    ({'precision': 'bf16'}, 'bf16 is a way of running fp32 files'),
    ({'precisions': ['int8']}, "'precisions' must map a precision to its files"),
    ({'precisions': {'bf16': {'onnx_model': 'm.onnx'}}}, "entry 'bf16'.*bf16 runs the fp32 files"),
    ({'precisions': {'fp32': {'onnx_model': 'm.onnx'}}}, "entry 'fp32'.*main model's precision"),
    ({'precisions': {'int8': {'info': {}}}}, "'precisions.int8' must name the model's files"),
    ({'precisions': {'int8': {'onnx_modle': 'm.onnx'}}}, "unknown key 'onnx_modle'.*did you mean 'onnx_model'"),
    ({'precisions': {'int8': {'model': 'm.json'}}}, "without its weights"),
    ({'precisions': {'int8': {'onnx_model': 'm.onnx', 'info': 'ptq'}}}, "'precisions.int8.info' must be a mapping"),
    ({'openvino_model': 'model.onnx'}, "'openvino_model' must name an OpenVINO IR .xml"),
])
def test_deploy_yaml_precisions_are_validated(entries, match):
    deploy = {'model': 'model.json', 'params': 'model.pdiparams', 'transforms': NORMALIZE, **entries}
    with pytest.raises(UserError, match=match):
        validate_deploy(deploy, 'x/deploy.yaml')


def test_record_precision_and_reexport(tmp_path, trained_like_model):
    """record_precision adds the entry atomically and keeps the rest of deploy.yaml; a new
    export into the folder removes the models made from the graph it replaces."""
    folder = copy_export(str(tmp_path / 'export'))
    with open(os.path.join(folder, 'deploy.yaml')) as f:
        before = yaml.safe_load(f)['Deploy']
    channel_argmax_onnx(os.path.join(folder, 'model.int8.onnx'))
    with pytest.raises(ValueError, match='must be a file name inside'):
        record_precision(folder, 'int8', {'onnx_model': 'missing.onnx'})
    record_precision(folder, 'int8', {'onnx_model': 'model.int8.onnx'}, info={'calibration_images': 8})
    with open(os.path.join(folder, 'deploy.yaml')) as f:
        after = yaml.safe_load(f)['Deploy']
    assert after.pop('precisions') == {'int8': {'onnx_model': 'model.int8.onnx', 'info': {'calibration_images': 8}}}
    assert after == before
    deploy = read_deploy_config(folder, required=('onnx_model',), precision='int8')
    assert deploy['onnx_model'] == os.path.join(folder, 'model.int8.onnx') and deploy['info']['calibration_images'] == 8
    shutil.copy(os.path.join(folder, 'model.int8.onnx'), os.path.join(folder, 'mine.onnx'))
    export_inference_model(trained_like_model, folder, NORMALIZE)
    assert sorted(os.listdir(folder)) == ['deploy.yaml', 'mine.onnx', 'model.json', 'model.pdiparams']
    with pytest.raises(UserError, match='has no int8 model'):
        read_deploy_config(folder, precision='int8')


def test_onnx_runtime_output_matches_a_plain_session(with_int8, mini_root):
    """The runner adds nothing between the batch and the session (independent session)."""
    x = next(mini_batches(mini_root, 1))
    session = ort.InferenceSession(os.path.join(with_int8, 'model.onnx'), providers=['CPUExecutionProvider'])
    assert np.array_equal(create_runner(with_int8, 'onnxruntime', cpu_threads=2).run(x),
                          session.run(None, {'x': x})[0])
