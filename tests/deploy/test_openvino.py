"""OpenVINO as a deployment engine: fp32 equal to ONNX Runtime, bf16 measured against fp32,
the precision actually used, IR and on-the-fly conversion, deploy/openvino/infer.py."""
import os

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from paddleseg_ddr import cli
from paddleseg_ddr.deploy import openvino_runtime
from paddleseg_ddr.deploy.engines import create_runner
from paddleseg_ddr.errors import UserError
from engine_exports import copy_export, mini_batches, shared

# Label agreement of OpenVINO bf16 with fp32 on the mini val images for this test's model
# (random weights, non-trivial BN statistics: small logit margins), measured 0.985-0.992
# (2026-11-26); a briefly trained model agrees far more (README note). Below 0.97 bf16 is broken.
BF16_MIN_AGREEMENT = 0.97


def _ort(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


@pytest.fixture(scope='module')
def batches(mini_root):
    rng = np.random.default_rng(0)
    return [*mini_batches(mini_root, 2), rng.normal(size=(1, 3, 200, 328)).astype(np.float32)]


def test_fp32_equals_onnx_runtime_and_runs_in_f32(batches):
    """OpenVINO fp32 labels equal ONNX Runtime's on the same model.onnx (>= 99.99% of
    pixels; measured 100%), and the compiled model reports f32 although this CPU's default
    is bf16 (an fp32 run that did not ask would compute in bf16)."""
    export = shared()[0]
    runner = create_runner(export, 'openvino', 'fp32', cpu_threads=2)
    session = _ort(os.path.join(export, 'model.onnx'))
    for x in batches:
        labels = runner.run(x)
        ref = session.run(None, {'x': x})[0]
        assert labels.shape == ref.shape and labels.dtype == np.int32
        assert (labels == ref).mean() >= 0.9999
    request = runner.compile(batches[0].shape)
    assert request.get_compiled_model().get_property('INFERENCE_PRECISION_HINT').to_string() == 'f32'
    assert runner.model_file.endswith('model.onnx') and runner.describe().startswith('openvino fp32')


def test_bf16_runs_in_bf16_and_agrees_with_fp32(batches):
    """bf16 (where the CPU has it) computes in bf16 — its labels differ from fp32 on some
    pixels, so it is not fp32 under another name — and agrees with fp32 on >= BF16_MIN_AGREEMENT."""
    export = shared()[0]
    if not openvino_runtime.bf16_supported(openvino_runtime.require_openvino().Core()):
        pytest.skip('this CPU has no bf16')
    fp32 = create_runner(export, 'openvino', 'fp32', cpu_threads=2)
    bf16 = create_runner(export, 'openvino', 'bf16', cpu_threads=2)
    same = total = 0
    for x in batches[:2]:
        a, b = fp32.run(x), bf16.run(x)
        same, total = same + (a == b).sum(), total + a.size
    agreement = same / total
    assert BF16_MIN_AGREEMENT <= agreement < 1.0, agreement
    hint = bf16.compile(batches[0].shape).get_compiled_model().get_property('INFERENCE_PRECISION_HINT')
    assert hint.to_string() == 'bf16'


def test_bf16_refused_where_the_cpu_lacks_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(openvino_runtime, 'bf16_supported', lambda core: False)
    with pytest.raises(UserError, match='cannot compute in bf16.*--precision fp32'):
        create_runner(shared()[0], 'openvino', 'bf16')
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda: cli.openvino_infer_main(['--model', shared()[0], '--precision', 'bf16', '--image_path',
                                                 str(tmp_path), '--save_dir', str(tmp_path / 'out')]))
    assert exit_.value.code == 2 and 'cannot compute in bf16' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_ir_and_on_the_fly_conversion(tmp_path, batches):
    """An OpenVINO IR (converted with the fp32 weights kept) is preferred when recorded, and
    an export without model.onnx is converted on the fly into a folder removed afterwards;
    both give ONNX Runtime's labels."""
    x = batches[0]
    ref = _ort(os.path.join(shared()[0], 'model.onnx')).run(None, {'x': x})[0]
    with_ir = copy_export(str(tmp_path / 'ir'))
    xml = openvino_runtime.convert_to_openvino(with_ir)
    assert os.path.basename(xml) == 'model.xml' and os.path.isfile(xml[:-4] + '.bin')
    # fp32 weights: the .bin holds 4 bytes per weight, as model.onnx does (fp16 compression would halve it)
    assert os.path.getsize(xml[:-4] + '.bin') > 0.95 * os.path.getsize(os.path.join(with_ir, 'model.onnx'))
    runner = create_runner(with_ir, 'openvino', cpu_threads=2)
    assert runner.model_file == xml and (runner.run(x) == ref).mean() >= 0.9999
    no_onnx = copy_export(str(tmp_path / 'plain'), onnx=False)
    runner = create_runner(no_onnx, 'openvino', cpu_threads=2)
    tmp = os.path.dirname(runner.model_file)
    assert os.path.isdir(tmp) and not tmp.startswith(no_onnx)
    assert (runner.run(x) == ref).mean() >= 0.9999
    runner.close()
    assert not os.path.exists(tmp) and sorted(os.listdir(no_onnx)) == ['deploy.yaml', 'model.json', 'model.pdiparams']


def test_infer_script_writes_what_onnx_infer_writes(tmp_path, mini_root):
    """deploy/openvino/infer.py: same flags and output folders as deploy/onnx/infer.py, same labels."""
    image = sorted(os.listdir(os.path.join(mini_root, 'leftImg8bit', 'val')))[0]
    images = os.path.join(mini_root, 'leftImg8bit', 'val', image)
    common = ['--image_path', images, '--cpu_threads', '2']
    assert cli.openvino_infer_main(['--model', shared()[0], '--save_dir', str(tmp_path / 'ov'), *common]) > 0
    assert cli.onnx_infer_main(['--model', shared()[0], '--save_dir', str(tmp_path / 'ort'), *common]) > 0
    for folder, _, files in os.walk(tmp_path / 'ort'):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), tmp_path / 'ort')
            a = cv2.imread(str(tmp_path / 'ort' / rel), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(tmp_path / 'ov' / rel), cv2.IMREAD_UNCHANGED)
            assert b is not None and a.shape == b.shape, rel
            if rel.startswith('label'):
                assert (a == b).mean() >= 0.9999, rel
