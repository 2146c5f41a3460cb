"""BiSeNetV1/V2 deployed: the fused export run by Paddle Inference (with and without oneDNN)
and ONNX Runtime gives the dygraph model's logits; PaddleSeg's own BiseNetV1 does not convert
to ONNX; V1 goes through train.py, val.py, export.py and both infer.py scripts."""
import os

import numpy as np
import paddle
import pytest
from paddleseg.cvlibs import manager

from deploy_helpers import NORMALIZE, predictor, run
from paddleseg_ddr.cli import export_main, infer_main, onnx_infer_main, train_main, val_main
from paddleseg_ddr.deploy import OnnxRuntimePredictor, export_inference_model
from paddleseg_ddr.models import create_model
from random_bn import randomize_bn


@pytest.fixture(scope='module', params=['bisenetv1', 'bisenetv2'])
def random_model(request):
    """(name, model) with random weights and BN statistics far from identity, eval mode."""
    paddle.seed(5)
    model = create_model(request.param)
    randomize_bn(model)
    model.eval()
    return request.param, model


def test_export_runs_in_paddle_inference_and_onnx_runtime(tmp_path, random_model):
    """The fused export's logits under Paddle Inference (with and without oneDNN) and ONNX
    Runtime equal the dygraph model's within 1e-4 relative (measured: below 1e-5)."""
    name, model = random_model
    out = export_inference_model(model, str(tmp_path / name), NORMALIZE, output_op='none', onnx=True)
    engines = {'paddle': predictor(out, False), 'paddle_onednn': predictor(out, True)}
    onnx = OnnxRuntimePredictor(out)
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 64, 128), (1, 3, 72, 100)):
        x = rng.normal(size=shape).astype(np.float32)
        with paddle.no_grad():
            ref = model(paddle.to_tensor(x))[0].numpy()
        outs = {k: run(p, x) for k, p in engines.items()}
        outs['onnxruntime'] = onnx.run(x)
        for engine, logits in outs.items():
            assert logits.shape == ref.shape, (engine, shape)
            assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), (engine, shape)


def test_paddleseg_bisenetv1_does_not_convert_to_onnx(tmp_path, capfd):
    """paddle2onnx 2.1 rejects its scale_factor resize (why the project owns V1). paddle2onnx
    logs the error and exits (SystemExit), or raises."""
    paddle.seed(0)
    model = manager.MODELS['BiseNetV1'](num_classes=19, backbone=manager.BACKBONES['ResNet18_vd'](output_stride=8))
    with pytest.raises((Exception, SystemExit)) as failure:
        export_inference_model(model, str(tmp_path / 'ps'), NORMALIZE, output_op='none', onnx=True, fuse=False)
    out, err = capfd.readouterr()
    assert 'MUST be ir::FloatAttribute' in out + err + str(failure.value)


def test_v1_trains_evaluates_exports_and_deploys_through_the_tools(tmp_path, mini_config, mini_root):
    """train.py (three OHEM heads) -> val.py -> export.py --format onnx -> both infer.py."""
    ohem = {'type': 'DDROhemCrossEntropyLoss', 'thresh': 0.7, 'min_kept': 2048, 'weight': None}
    cfg = mini_config(tmp_path, batch_size=2, crop=64, iters=2,
                      model={'type': 'DDRBiSeNetV1', 'num_classes': 19, 'output_stride': 8,
                             'backbone_pretrained': None, 'pretrained': None, '_inherited_': False},
                      loss={'types': [ohem] * 3, 'coef': [1, 1, 1]})
    out = train_main(['--config', cfg, '--save_dir', str(tmp_path / 'o'), '--save_interval', '2'])
    assert out['iter'] == 2 and np.isfinite(out['history'][-1]['loss'])
    weights = str(tmp_path / 'o' / 'iter_2' / 'model.pdparams')
    metrics = val_main(['--config', cfg, '--model_path', weights])
    assert 0.0 <= metrics['miou'] <= 1.0
    export = str(tmp_path / 'export')
    export_main(['--config', cfg, '--model_path', weights, '--save_dir', export, '--format', 'onnx'])
    image = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(mini_root, 'leftImg8bit', 'val'))
                   for f in fs)[0]
    infer_main(['--config', os.path.join(export, 'deploy.yaml'), '--image_path', image,
                '--save_dir', str(tmp_path / 'pi')])
    onnx_infer_main(['--model', os.path.join(export, 'model.onnx'), '--image_path', image,
                     '--save_dir', str(tmp_path / 'ort')])
    import cv2
    name = os.path.splitext(os.path.basename(image))[0] + '.png'
    a = cv2.imread(str(tmp_path / 'pi' / 'label' / name), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / 'ort' / 'label' / name), cv2.IMREAD_UNCHANGED)
    assert a is not None and a.shape == cv2.imread(image).shape[:2]
    assert (a != b).mean() < 1e-3
