"""GALD-Net and GFF-Net deployed: the export (Paddle Inference with and without oneDNN, ONNX
Runtime) gives the dygraph model's logits. GALD's GroupNorm and grouped non-local and GFF's
gates and exportable pyramid pooling go through paddle2onnx; inputs are odd-sized (GALD
needs at least 239x239)."""
import numpy as np
import paddle
import pytest

from deploy_helpers import NORMALIZE, predictor, run
from paddleseg_ddr.deploy import OnnxRuntimePredictor, export_inference_model
from paddleseg_ddr.models import create_model
from random_bn import randomize_bn


class TinyTrunk(paddle.nn.Layer):
    """A cheap stand-in for the deep-stem ResNet (whose export the DGCNet deploy test covers):
    the same four outputs (256, 512, 1024, 2048 channels at strides 4, 8, 8, 8), so the heads
    under test are built at full width."""
    feat_channels = [256, 512, 1024, 2048]

    def __init__(self):
        super().__init__()
        self.s4 = paddle.nn.Conv2D(3, 256, 4, stride=4)
        self.s8 = paddle.nn.Conv2D(256, 512, 2, stride=2)
        self.c3 = paddle.nn.Conv2D(512, 1024, 1)
        self.c4 = paddle.nn.Conv2D(1024, 2048, 1)

    def forward(self, x):
        l1 = self.s4(x)
        l2 = self.s8(l1)
        l3 = self.c3(l2)
        return [l1, l2, l3, self.c4(l3)]


@pytest.mark.parametrize('name, size', [('galdnet_r50', (249, 257)), ('gffnet_r101', (65, 97))])
def test_export_matches_dygraph(tmp_path, name, size):
    paddle.seed(2)
    model = create_model(name, num_classes=19, aux_head=False, backbone=TinyTrunk())
    randomize_bn(model)
    for layer in model.sublayers():  # GroupNorm affine away from identity too
        if isinstance(layer, paddle.nn.GroupNorm):
            layer.weight.set_value(np.linspace(0.5, 1.5, layer.weight.shape[0]).astype('float32'))
            layer.bias.set_value(np.linspace(-0.3, 0.3, layer.bias.shape[0]).astype('float32'))
    model.eval()
    out = export_inference_model(model, str(tmp_path / name), NORMALIZE, output_op='none', onnx=True)
    engines = {'paddle': predictor(out, False), 'paddle_onednn': predictor(out, True)}
    onnx = OnnxRuntimePredictor(out)
    x = np.random.default_rng(0).normal(size=(1, 3, *size)).astype(np.float32)
    with paddle.no_grad():
        ref = model(paddle.to_tensor(x))[0].numpy()
    outs = {k: run(p, x) for k, p in engines.items()}
    outs['onnxruntime'] = onnx.run(x)
    for engine, logits in outs.items():
        assert logits.shape == ref.shape, engine
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), engine
