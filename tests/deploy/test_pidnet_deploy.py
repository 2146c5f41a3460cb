"""PIDNet deployed: the fused export (Paddle Inference with and without oneDNN, ONNX Runtime)
gives the dygraph model's logits, whose final resize uses align_corners=True."""
import numpy as np
import paddle
import pytest

from deploy_helpers import NORMALIZE, predictor, run
from paddleseg_ddr.deploy import OnnxRuntimePredictor, export_inference_model
from paddleseg_ddr.models import create_model
from random_bn import randomize_bn


@pytest.mark.parametrize('name', ['pidnet_s', 'pidnet_l'])  # PAPPM + LightBag, DAPPM + Bag
def test_fused_export_matches_dygraph(tmp_path, name):
    paddle.seed(2)
    model = create_model(name, num_classes=19, aux_head=True)
    randomize_bn(model)
    model.eval()
    out = export_inference_model(model, str(tmp_path / name), NORMALIZE, output_op='none', onnx=True)
    engines = {'paddle': predictor(out, False), 'paddle_onednn': predictor(out, True)}
    onnx = OnnxRuntimePredictor(out)
    rng = np.random.default_rng(0)
    for size in [(64, 128), (72, 104)]:
        x = rng.normal(size=(1, 3, *size)).astype(np.float32)
        with paddle.no_grad():
            ref = model(paddle.to_tensor(x))[0].numpy()
        outs = {k: run(p, x) for k, p in engines.items()}
        outs['onnxruntime'] = onnx.run(x)
        for engine, logits in outs.items():
            assert logits.shape == ref.shape
            assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), (engine, size)
