"""DGCNet-R50 through the project's tools from its quickstart config (the release's model and loss
terms: OHEM main + 0.4 CE dsn): train.py (2 iterations, batch 1, 64x64 crops) -> val.py ->
export.py --format onnx -> deploy/python/infer.py (Paddle Inference) and deploy/onnx/infer.py
(ONNX Runtime), whose label maps must equal the dygraph model's; and the exported logits of a
model with random BN statistics equal the dygraph ones under both engines (the graph's matrix
products, 1D convolutions and dynamic reshapes survive export at an odd input size).

Tiny data (6 training, 2 val images of 64x128): a ResNet-50 at output stride 8 is heavy on CPU."""
import os

import cv2
import numpy as np
import paddle
import pytest
import yaml

from deploy_helpers import NORMALIZE, predictor, run
from paddleseg_ddr.cli import export_main, infer_main, onnx_infer_main, train_main, val_main
from paddleseg_ddr.deploy import OnnxRuntimePredictor, export_inference_model
from paddleseg_ddr.engine import Builder, load_config
from paddleseg_ddr.utils.weights import load_model_weights
from random_bn import randomize_bn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    from paddleseg_ddr.datasets import generate_mini_cityscapes
    tmp = tmp_path_factory.mktemp('dgcnet')
    root = str(tmp / 'mini_cityscapes')
    generate_mini_cityscapes(root, num_train=6, num_val=2, width=128, height=64)
    config = {
        '_base_': os.path.join(ROOT, 'configs', 'quickstart', 'dgcnet_r50_mini_cityscapes.yml'),
        'batch_size': 1, 'iters': 2,
        'train_dataset': {'dataset_root': root, 'transforms': [
            {'type': 'RandomPaddingCrop', 'crop_size': [64, 64]}, {'type': 'RandomHorizontalFlip'},
            {'type': 'Normalize', 'mean': list(MEAN), 'std': list(STD)}]},
        'val_dataset': {'dataset_root': root},
    }
    cfg = str(tmp / 'config.yml')
    with open(cfg, 'w') as f:
        yaml.safe_dump(config, f)
    trained = train_main(['--config', cfg, '--save_dir', str(tmp / 'train'), '--save_interval', '2',
                          '--log_iters', '1'])
    weights = str(tmp / 'train' / 'iter_2' / 'model.pdparams')
    metrics = val_main(['--config', cfg, '--model_path', weights])
    export = str(tmp / 'export')
    export_main(['--config', cfg, '--model_path', weights, '--save_dir', export, '--format', 'onnx'])
    image = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(root, 'leftImg8bit', 'val'))
                   for f in fs)[0]
    infer_main(['--config', os.path.join(export, 'deploy.yaml'), '--image_path', image,
                '--save_dir', str(tmp / 'pi')])
    onnx_infer_main(['--model', os.path.join(export, 'model.onnx'), '--image_path', image,
                     '--save_dir', str(tmp / 'ort')])
    label = os.path.splitext(os.path.basename(image))[0] + '.png'
    engines = {k: cv2.imread(str(tmp / k / 'label' / label), cv2.IMREAD_UNCHANGED) for k in ('pi', 'ort')}
    model = Builder(load_config(cfg)).model
    load_model_weights(model, weights)
    model.eval()
    rgb = cv2.cvtColor(cv2.imread(image), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    x = ((rgb - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x))[0].numpy()
    return {'trained': trained, 'metrics': metrics, 'engines': engines, 'logits': logits, 'model': model,
            'tmp': tmp}


def test_trains_two_heads_and_evaluates(pipeline):
    out = pipeline['trained']
    assert out['iter'] == 2 and all(np.isfinite(h['loss']) for h in out['history'])
    assert 0.0 <= pipeline['metrics']['miou'] <= 1.0
    assert type(pipeline['model']).__name__ == 'DGCNet' and pipeline['model'].backbone.depth == 50


def test_engines_give_the_dygraph_label_map(pipeline):
    """Label maps of the tools' export under Paddle Inference and ONNX Runtime equal the dygraph
    argmax, except where its top two scores are within float rounding."""
    logits = pipeline['logits'][0]
    reference = logits.argmax(axis=0)
    top2 = np.sort(logits, axis=0)[-2:]
    tie = (top2[1] - top2[0]) < 1e-4 * np.abs(logits).max()
    for engine, label in pipeline['engines'].items():
        assert label is not None and label.shape == reference.shape, engine
        differ = label != reference
        assert not (differ & ~tie).any(), (engine, int(differ.sum()))


def test_exported_logits_equal_dygraph_with_random_bn(pipeline):
    """Logits (no argmax) of the fused export, BN statistics far from identity, at an odd size
    (ceil_mode max-pool, 1/8 maps of 9x13): Paddle Inference and ONNX Runtime within 1e-4 relative."""
    model = pipeline['model']
    randomize_bn(model)
    model.eval()
    out = export_inference_model(model, str(pipeline['tmp'] / 'logits'), NORMALIZE, output_op='none', onnx=True)
    x = np.random.default_rng(0).normal(size=(1, 3, 63, 98)).astype(np.float32)
    with paddle.no_grad():
        ref = model(paddle.to_tensor(x))[0].numpy()
    outs = {'paddle': run(predictor(out, False), x), 'onnxruntime': OnnxRuntimePredictor(out).run(x)}
    for engine, logits in outs.items():
        assert logits.shape == ref.shape, engine
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), engine
