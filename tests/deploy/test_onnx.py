import os

import numpy as np
import onnxruntime as ort
import paddle
import pytest
import yaml

from paddleseg_ddr.deploy import OnnxRuntimePredictor, convert_to_onnx, export_inference_model
from paddleseg_ddr.errors import UserError
from deploy_helpers import NORMALIZE, inputs, predictor, run


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


@pytest.fixture(scope='module')
def onnx_exports(tmp_path_factory, trained_like_model):
    root = tmp_path_factory.mktemp('onnx')
    return {op: export_inference_model(trained_like_model, str(root / op), NORMALIZE, output_op=op, onnx=True)
            for op in ('none', 'argmax')}


def test_onnx_runtime_matches_paddle_inference_and_dygraph(onnx_exports, mini_root, trained_like_model):
    """ONNX Runtime logits within 1e-4 relative of Paddle Inference's (same export) and of
    dygraph; its label maps equal dygraph's argmax on >= 99.9% of pixels."""
    logits_dir, labels_dir = onnx_exports['none'], onnx_exports['argmax']
    paddle_pred = predictor(logits_dir)
    logits_sess, labels_sess = session(os.path.join(logits_dir, 'model.onnx')), session(os.path.join(labels_dir, 'model.onnx'))
    for name, x in inputs(mini_root):
        with paddle.no_grad():
            ref = trained_like_model(paddle.to_tensor(x))[0].numpy()
        logits = logits_sess.run(None, {'x': x})[0]
        pd_logits = run(paddle_pred, x)
        assert logits.shape == ref.shape, name
        assert np.abs(logits - pd_logits).max() <= 1e-4 * np.abs(pd_logits).max(), name
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), name
        labels = labels_sess.run(None, {'x': x})[0]
        assert labels.shape == ref.shape[:1] + ref.shape[2:]
        assert (labels == ref.argmax(axis=1)).mean() >= 0.999, name


def test_onnx_export_is_recorded_and_uses_the_native_resize(onnx_exports):
    with open(os.path.join(onnx_exports['argmax'], 'deploy.yaml')) as f:
        deploy = yaml.safe_load(f)['Deploy']
    assert deploy['onnx_model'] == 'model.onnx' and 'resize_op' not in deploy
    import onnx
    ops = {node.op_type for node in onnx.load(os.path.join(onnx_exports['argmax'], 'model.onnx')).graph.node}
    assert 'Resize' in ops and 'ArgMax' in ops


def test_environment_keeps_numpy_1():
    """paddle2onnx's default optimiser pip-installs numpy 2 (breaking OpenCV); ours must not."""
    import cv2  # (fails to import under numpy 2)
    assert cv2.imread
    assert np.__version__.startswith('1.')


def test_predictor_needs_onnx_model_and_deploy_yaml(tmp_path, trained_like_model):
    plain = export_inference_model(trained_like_model, str(tmp_path / 'plain'), NORMALIZE)
    with pytest.raises(UserError, match="names no 'onnx_model' file.*--format onnx"):
        OnnxRuntimePredictor(plain)
    with pytest.raises(UserError, match='does not exist'):
        OnnxRuntimePredictor(str(tmp_path / 'missing.onnx'))
    # a conversion of an existing export (tools/export_onnx.py) runs with the deploy.yaml beside it
    onnx_file = convert_to_onnx(plain)
    assert os.path.basename(onnx_file) == 'model.onnx'
    assert sorted(os.listdir(plain)) == ['deploy.yaml', 'model.json', 'model.onnx', 'model.pdiparams']
    label = OnnxRuntimePredictor(onnx_file)(np.full((64, 96, 3), 127, np.uint8))
    assert label.shape == (64, 96) and label.dtype == np.uint8
    # the conversion is recorded in deploy.yaml: the export folder itself runs too
    assert OnnxRuntimePredictor(plain)(np.full((64, 96, 3), 127, np.uint8)).shape == (64, 96)
    lone = tmp_path / 'lone.onnx'
    lone.write_bytes(open(onnx_file, 'rb').read())
    with pytest.raises(UserError, match='no deploy.yaml next to'):
        OnnxRuntimePredictor(str(lone))
    # a re-export without --format onnx removes the ONNX model its deploy.yaml named: it is stale
    export_inference_model(trained_like_model, plain, NORMALIZE, output_op='none')
    assert sorted(os.listdir(plain)) == ['deploy.yaml', 'model.json', 'model.pdiparams']


def test_a_graph_paddle2onnx_cannot_convert_is_a_user_error(tmp_path, monkeypatch):
    """paddle2onnx ends the process (sys.exit) on an operator it cannot convert: the export
    says so as a user error (exit 2) instead of exiting with paddle2onnx's code."""
    import paddle2onnx

    from paddleseg_ddr.deploy.onnx_export import paddle_to_onnx
    from paddleseg_ddr.errors import UserError

    def refuse(*args, **kwargs):
        raise SystemExit(-1)
    monkeypatch.setattr(paddle2onnx, 'export', refuse)
    with pytest.raises(UserError, match='paddle2onnx cannot convert'):
        paddle_to_onnx(str(tmp_path / 'model.json'), str(tmp_path / 'model.pdiparams'), str(tmp_path / 'model.onnx'))
    assert not (tmp_path / 'model.onnx').exists()


class _GroupNormNet(paddle.nn.Layer):
    """A conv, a GroupNorm whose epsilon decides the output (near-constant groups: variance
    ~1e-7, far below epsilon 1e-3) and a classifier: the shape of GALD-Net's non-local block."""

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 1)
        self.norm = paddle.nn.GroupNorm(4, 8, epsilon=1e-3)
        self.cls = paddle.nn.Conv2D(8, 5, 1)

    def forward(self, x):
        return [self.cls(self.norm(self.conv(x)))]


def test_group_norm_keeps_its_epsilon_in_onnx(tmp_path):
    """paddle2onnx 2.1.0 writes GroupNorm's epsilon from the wrong bytes (0, or 7.7e31 when
    onnxruntime was imported first, as here): ONNX Runtime must give the dygraph logits and the
    node must carry the program's epsilon."""
    paddle.seed(0)
    model = _GroupNormNet()
    model.eval()
    out = export_inference_model(model, str(tmp_path / 'gn'), NORMALIZE, output_op='none', onnx=True)
    import onnx
    eps = [a.f for n in onnx.load(os.path.join(out, 'model.onnx')).graph.node
           if n.op_type == 'InstanceNormalization' for a in n.attribute if a.name == 'epsilon']
    assert eps == [pytest.approx(1e-3)]
    x = (0.5 + 1e-4 * np.random.default_rng(0).normal(size=(1, 3, 16, 24))).astype(np.float32)
    with paddle.no_grad():
        ref = model(paddle.to_tensor(x))[0].numpy()
    got = OnnxRuntimePredictor(out).run(x)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
