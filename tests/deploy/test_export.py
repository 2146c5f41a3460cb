import glob
import os

import cv2
import numpy as np
import paddle
import pytest
import yaml
from paddle import inference

from paddleseg_ddr.deploy import export_inference_model
from paddleseg_ddr.models import DDRNet23Slim

NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]


def predictor(model_dir, onednn=False):
    config = inference.Config(os.path.join(model_dir, 'model.json'), os.path.join(model_dir, 'model.pdiparams'))
    config.disable_gpu()
    if onednn:
        config.enable_mkldnn()
    else:
        config.disable_mkldnn()
    return inference.create_predictor(config)


def run(pred, x):
    handle = pred.get_input_handle(pred.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    pred.run()
    return pred.get_output_handle(pred.get_output_names()[0]).copy_to_cpu()


@pytest.fixture(scope='module')
def trained_like_model():
    paddle.seed(3)
    model = DDRNet23Slim(num_classes=19)
    model.train()  # a few batches through BN give non-trivial running statistics
    with paddle.no_grad():
        for _ in range(3):
            model(paddle.randn([2, 3, 64, 64]) * 2 + 0.5)
    model.eval()
    return model


def inputs(mini_root):
    rng = np.random.default_rng(0)
    path = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    image = ((image - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
    yield 'random 128x256', rng.normal(size=(1, 3, 128, 256)).astype(np.float32)
    yield 'random 200x328', rng.normal(size=(1, 3, 200, 328)).astype(np.float32)   # not a multiple of 64
    yield 'mini image 256x512', image
    yield 'mini crop 200x328', np.ascontiguousarray(image[:, :, 20:220, 50:378])


@pytest.mark.parametrize('resize_op,onednn', [('gather', True), ('gather', False), ('interp', False)],
                         ids=['gather-onednn', 'gather-plain', 'interp-plain'])
def test_exported_graph_matches_dygraph(tmp_path, mini_root, trained_like_model, resize_op, onednn):
    """Logits within 1e-4 relative and argmax identical on >= 99.9% of pixels, on random
    and mini-dataset images, at sizes that are and are not multiples of 64. The default
    'gather' export runs under oneDNN on Paddle 3.3.1 (whose bilinear_interp fails there)."""
    logits_dir = export_inference_model(trained_like_model, str(tmp_path / 'logits'), NORMALIZE, output_op='none',
                                        resize_op=resize_op)
    labels_dir = export_inference_model(trained_like_model, str(tmp_path / 'labels'), NORMALIZE, output_op='argmax',
                                        resize_op=resize_op)
    logits_pred, labels_pred = predictor(logits_dir, onednn), predictor(labels_dir, onednn)
    for name, x in inputs(mini_root):
        with paddle.no_grad():
            ref = trained_like_model(paddle.to_tensor(x))[0].numpy()
        logits = run(logits_pred, x)
        assert logits.shape == ref.shape, name
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), name
        labels = run(labels_pred, x)
        assert labels.dtype == np.int32 and labels.shape == ref.shape[:1] + ref.shape[2:]
        assert (labels == ref.argmax(axis=1)).mean() >= 0.999, name


def test_deploy_yaml_follows_paddleseg_and_has_no_aux_head(tmp_path, trained_like_model):
    out = export_inference_model(trained_like_model, str(tmp_path / 'm'), NORMALIZE, input_shape=[1, 3, 64, 128])
    with open(os.path.join(out, 'deploy.yaml')) as f:
        deploy = yaml.safe_load(f)['Deploy']
    assert deploy == {'model': 'model.json', 'params': 'model.pdiparams', 'transforms': NORMALIZE,
                      'input_shape': [1, 3, 64, 128], 'output_op': 'argmax', 'output_dtype': 'int32',
                      'resize_op': 'gather'}
    assert sorted(os.listdir(tmp_path)) == ['m']  # no temporary directory left behind
    # the auxiliary head's weights are not in the exported graph: same size as a model built without it
    n_exported = os.path.getsize(os.path.join(out, 'model.pdiparams'))
    no_aux = DDRNet23Slim(num_classes=19, aux_head=False)
    no_aux.set_state_dict({k: v for k, v in trained_like_model.state_dict().items() if not k.startswith('seghead_extra')})
    out2 = export_inference_model(no_aux, str(tmp_path / 'n'), NORMALIZE, input_shape=[1, 3, 64, 128])
    assert n_exported == os.path.getsize(os.path.join(out2, 'model.pdiparams'))
