"""Seed 004's comparison models (DeepLabV3, DeepLabV3+, PSPNet, DANet, GloRe, EMANet) through
the project's tools, each from its own Cityscapes config (configs/paddleseg_zoo/, so its losses
per head are the recipe's) with a ResNet18_vd backbone for speed: train.py (2 iterations of
64x64 crops, batch 2) -> val.py -> export.py --format onnx -> deploy/python/infer.py (Paddle
Inference) and deploy/onnx/infer.py (ONNX Runtime), whose label maps must equal the dygraph
model's. One training per model is shared by the tests (module fixture).

The data is the mini Cityscapes generator at a tiny size (6 training, 2 val images of 64x128):
the conftest's ``mini_config`` is function-scoped and cannot feed a module fixture, and the
checks here do not depend on the images."""
import os

import cv2
import numpy as np
import paddle
import pytest
import yaml

from paddleseg_ddr.cli import export_main, infer_main, onnx_infer_main, train_main, val_main
from paddleseg_ddr.engine import Builder, load_config
from paddleseg_ddr.models import get_variant
from paddleseg_ddr.utils.weights import load_model_weights, read_params

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONFIGS = {'deeplabv3_r101': 'deeplabv3_resnet101_os8_cityscapes_1024x512_80k.yml',
           'deeplabv3p_r101': 'deeplabv3p_resnet101_os8_cityscapes_1024x512_80k.yml',
           'pspnet_r101': 'pspnet_resnet101_os8_cityscapes_1024x512_80k.yml',
           'danet_r101': 'danet_resnet101_os8_cityscapes_1024x512_80k.yml',
           'glore_r50': 'glore_resnet50_os8_cityscapes_1024x512_80k.yml',
           'emanet_r101': 'emanet_resnet101_os8_cityscapes_1024x512_80k.yml'}
HEADS = {'deeplabv3_r101': 1, 'deeplabv3p_r101': 1, 'pspnet_r101': 2, 'danet_r101': 4, 'glore_r50': 2,
         'emanet_r101': 2}
MEAN = STD = (0.5, 0.5, 0.5)  # PaddleSeg's recipe normalisation, in the configs


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    from paddleseg_ddr.datasets import generate_mini_cityscapes
    root = str(tmp_path_factory.mktemp('zoo_data') / 'mini_cityscapes')
    generate_mini_cityscapes(root, num_train=6, num_val=2, width=128, height=64)
    return root


@pytest.fixture(scope='module', params=list(CONFIGS))
def pipeline(request, tmp_path_factory, tiny_root):
    """Train, evaluate, export and infer one model with the tools; returns what they gave."""
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    config = {
        '_base_': os.path.join(ROOT, 'configs', 'paddleseg_zoo', CONFIGS[name]),
        'batch_size': 2, 'iters': 2,
        'model': {'backbone': {'type': 'ResNet18_vd'}},
        'train_dataset': {'dataset_root': tiny_root, 'transforms': [
            {'type': 'RandomPaddingCrop', 'crop_size': [64, 64]}, {'type': 'RandomHorizontalFlip'},
            {'type': 'Normalize', 'mean': list(MEAN), 'std': list(STD)}]},
        'val_dataset': {'dataset_root': tiny_root},
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
    image = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(tiny_root, 'leftImg8bit', 'val'))
                   for f in fs)[0]
    infer_main(['--config', os.path.join(export, 'deploy.yaml'), '--image_path', image,
                '--save_dir', str(tmp / 'pi')])
    onnx_infer_main(['--model', os.path.join(export, 'model.onnx'), '--image_path', image,
                     '--save_dir', str(tmp / 'ort')])
    label = os.path.splitext(os.path.basename(image))[0] + '.png'
    engines = {k: cv2.imread(str(tmp / k / 'label' / label), cv2.IMREAD_UNCHANGED) for k in ('pi', 'ort')}
    # the dygraph model, built from the config and loaded with the trained weights
    model = Builder(load_config(cfg)).model
    load_model_weights(model, weights)
    model.eval()
    rgb = cv2.cvtColor(cv2.imread(image), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    x = ((rgb - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x))[0].numpy()
    return {'name': name, 'trained': trained, 'metrics': metrics, 'engines': engines, 'logits': logits,
            'model': model, 'weights': weights}


def test_trains_with_one_loss_per_head(pipeline):
    """Two iterations from the config (its loss list matches the model's training outputs: the
    engine refuses a mismatch), finite losses, every weight saved finite."""
    out = pipeline['trained']
    assert out['iter'] == 2 and out['iters_run'] == 2
    assert all(np.isfinite(h['loss']) for h in out['history']) and len(out['history']) == 2
    _, params = read_params(pipeline['weights'], return_numpy=True)
    state = pipeline['model'].state_dict()
    assert set(params) == set(state)
    assert all(np.isfinite(np.asarray(v)).all() for v in params.values())
    assert len(load_config(os.path.join(ROOT, 'configs', 'paddleseg_zoo', CONFIGS[pipeline['name']]))
               .dic['loss']['coef']) == HEADS[pipeline['name']]
    assert type(pipeline['model']).__name__ == get_variant(pipeline['name']).model_type


def test_evaluates(pipeline):
    metrics = pipeline['metrics']
    assert 0.0 <= metrics['miou'] <= 1.0 and 0.0 <= metrics['acc'] <= 1.0


def test_paddle_inference_and_onnx_runtime_give_the_dygraph_label_map(pipeline):
    """Both engines' label maps (the exported, conv+BN folded graph, dynamic input size) equal
    the dygraph model's argmax, except where its top two scores are within float rounding."""
    logits = pipeline['logits'][0]
    reference = logits.argmax(axis=0)
    top2 = np.sort(logits, axis=0)[-2:]
    tie = (top2[1] - top2[0]) < 1e-4 * np.abs(logits).max()
    for engine, label in pipeline['engines'].items():
        assert label is not None and label.shape == reference.shape, engine
        differ = label != reference
        assert not (differ & ~tie).any(), (engine, int(differ.sum()))
        assert differ.mean() < 1e-3, engine
