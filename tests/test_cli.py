"""What a user sees for the usual mistakes: a message naming the problem and the fix, exit
code 2, no traceback from inside Paddle."""
import os
import subprocess
import sys

import cv2
import numpy as np
import paddle
import pytest
import yaml
from paddleseg.cvlibs import manager

from paddleseg_ddr.cli import train_main, val_main
from paddleseg_ddr.errors import UserError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
SLIM = os.path.join(ROOT, 'configs', 'ddrnet', 'ddrnet23_slim_cityscapes_1024x1024_120k.yml')


def tiny_cityscapes(root, label_value=None, n=2):
    """A few 64x128 images in the official layout with trainId labels."""
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for d in ('leftImg8bit', 'gtFine'):
            os.makedirs(os.path.join(root, d, split, 'ulm'), exist_ok=True)
        for i in range(n):
            stem = os.path.join(split, 'ulm', f'ulm_{i:06d}_000019')
            label = rng.integers(0, 19, (64, 128)).astype(np.uint8)
            if label_value is not None and split == 'train' and i == 1:
                label[5, 5] = label_value
            cv2.imwrite(os.path.join(root, 'leftImg8bit', stem + '_leftImg8bit.png'),
                        rng.integers(0, 255, (64, 128, 3)).astype(np.uint8))
            cv2.imwrite(os.path.join(root, 'gtFine', stem + '_gtFine_labelTrainIds.png'), label)
    return str(root)


class PointwiseSegForTests(paddle.nn.Layer):
    """A test-only model of 1x1 convolutions: a pixel's logits depend on that pixel alone,
    so sliding-window and flip evaluation must reproduce the whole-image predictions."""

    def __init__(self, num_classes=19, in_channels=3, hidden=8, **_):  # **_: the base config's DDRNet keys
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(in_channels, hidden, 1)
        self.conv2 = paddle.nn.Conv2D(hidden, num_classes, 1)

    def forward(self, x):
        return [self.conv2(paddle.nn.functional.relu(self.conv1(x))) * 4.0]


manager.MODELS.add_component(PointwiseSegForTests)


def pointwise_weights(path, seed=5):
    paddle.seed(seed)
    paddle.save(PointwiseSegForTests().state_dict(), str(path))
    return str(path)


def write_config(folder, **dic):
    path = os.path.join(str(folder), 'config.yml')
    with open(path, 'w') as f:
        yaml.safe_dump({'_base_': SLIM, **dic}, f)
    return path


def small(root):
    transforms = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]
    return {'batch_size': 2, 'iters': 1, 'model': {'type': 'DDRNet23Slim', 'num_classes': 19, 'pretrained': None},
            'train_dataset': {'dataset_root': root, 'transforms': transforms},
            'val_dataset': {'dataset_root': root},
            'loss': {'types': [{'type': 'DDROhemCrossEntropyLoss', 'min_kept': 100, 'weight': None}], 'coef': [1, 0.4]}}


def test_missing_dataset_root_says_where_and_how(tmp_path):
    cfg = write_config(tmp_path, **small(str(tmp_path / 'nowhere')))
    with pytest.raises(UserError) as e:
        train_main(['--config', cfg, '--save_dir', str(tmp_path / 'out')])
    msg = str(e.value)
    assert str(tmp_path / 'nowhere' / 'leftImg8bit' / 'train') in msg
    assert 'convert_cityscapes.py' in msg and 'make_mini_cityscapes.py' in msg


def test_missing_train_ids_point_to_the_converter(tmp_path):
    root = tiny_cityscapes(tmp_path / 'cs')
    for dirpath, _, files in os.walk(os.path.join(root, 'gtFine', 'train')):
        for f in files:
            os.remove(os.path.join(dirpath, f))
    cfg = write_config(tmp_path, **small(root))
    with pytest.raises(UserError, match=r"No '\*_gtFine_labelTrainIds.png' files.*convert_cityscapes.py"):
        train_main(['--config', cfg, '--save_dir', str(tmp_path / 'out')])


def test_missing_pretrained_weights_say_how_to_make_them(tmp_path):
    root = tiny_cityscapes(tmp_path / 'cs')
    dic = small(root)
    dic.pop('model')  # the paper config's pretrained: pretrained/ddrnet23_slim_imagenet.pdparams
    with pytest.raises(UserError) as e:
        train_main(['--config', write_config(tmp_path, **dic)])
    msg = str(e.value)
    assert "pretrained weights not found: 'pretrained/ddrnet23_slim_imagenet.pdparams'" in msg
    assert 'tools/convert_weights.py' in msg and 'model.pretrained=None' in msg


def test_unknown_model_type_lists_registered_models(tmp_path):
    cfg = write_config(tmp_path, model={'type': 'DDRNet23Slimm', 'num_classes': 19})
    with pytest.raises(UserError) as e:
        train_main(['--config', cfg])
    msg = str(e.value)
    assert "type 'DDRNet23Slimm' is not registered" in msg and "Did you mean 'DDRNet23Slim'" in msg
    assert 'DDRNet39' in msg and 'DDRNet_23' in msg and 'PPLiteSeg' in msg


def test_yaml_key_typo_is_reported(tmp_path):
    cfg = write_config(tmp_path, bach_size=4)
    with pytest.raises(UserError, match=r"unknown key 'bach_size'.*Did you mean 'batch_size'"):
        train_main(['--config', cfg])


def test_component_argument_typo_is_reported(tmp_path):
    root = tiny_cityscapes(tmp_path / 'cs')
    dic = small(root)
    dic['model'] = {'type': 'DDRNet23Slim', 'num_classes': 19, 'aux_haed': True}
    with pytest.raises(UserError, match='aux_haed'):
        train_main(['--config', write_config(tmp_path, **dic)])


def test_label_outside_num_classes_names_the_file(tmp_path):
    root = tiny_cityscapes(tmp_path / 'cs', label_value=33)
    cfg = write_config(tmp_path, **small(root))
    with pytest.raises(UserError) as e:
        train_main(['--config', cfg, '--save_dir', str(tmp_path / 'out')])
    assert 'ulm_000001_000019_gtFine_labelTrainIds.png' in str(e.value) and '[33]' in str(e.value)


def test_checkpoint_that_does_not_fit_lists_keys_and_shapes(tmp_path):
    from paddleseg_ddr.models import DDRNet23, DDRNet23Slim
    root = tiny_cityscapes(tmp_path / 'cs')
    cfg = write_config(tmp_path, **small(root))
    weights = str(tmp_path / 'other.pdparams')
    paddle.save(DDRNet23(num_classes=19).state_dict(), weights)
    with pytest.raises(UserError) as e:
        val_main(['--config', cfg, '--model_path', weights])
    msg = str(e.value)
    assert 'does not fit' in msg and 'conv1.0.weight: [64, 3, 3, 3] vs [32, 3, 3, 3]' in msg

    state = DDRNet23Slim(num_classes=19).state_dict()
    state.pop('spp.scale0.2.weight')
    state['extra.weight'] = paddle.zeros([1])
    paddle.save(state, weights)
    with pytest.raises(UserError) as e:
        val_main(['--config', cfg, '--model_path', weights])
    assert 'missing from the checkpoint: spp.scale0.2.weight' in str(e.value)
    assert 'not in the model: extra.weight' in str(e.value)


def test_cli_exits_2_with_message_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, 'train.py', '--config', str(tmp_path / 'missing.yml')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'error: config file not found' in proc.stderr and 'Traceback' not in proc.stderr


def test_val_modes_from_the_command_line(tmp_path):
    """A pointwise model gives the same label at every pixel whatever the window or flip, so
    sliding-window and flip-only (or scale 1.0) evaluation must reproduce the whole-image
    confusion matrix exactly; a window or flip put back in the wrong place changes it."""
    root = tiny_cityscapes(tmp_path / 'cs')
    dic = small(root)
    dic['model'] = {'type': 'PointwiseSegForTests', 'num_classes': 19}
    cfg = write_config(tmp_path, **dic)
    weights = pointwise_weights(tmp_path / 'pointwise.pdparams')
    run = lambda *extra: val_main(['--config', cfg, '--model_path', weights, *extra])
    base = run()
    assert base['confusion'].sum() == 2 * 64 * 128 and (base['confusion'].sum(axis=0) > 0).sum() >= 3
    same = {
        'slide': run('--is_slide', '--crop_size', '48', '40', '--stride', '32', '24'),
        'flip': run('--aug_eval', '--flip_horizontal', '--flip_vertical'),
        'scale 1.0 + flip': run('--aug_eval', '--scales', '1.0', '--flip_horizontal'),
        'slide + flip': run('--aug_eval', '--flip_horizontal', '--is_slide', '--crop_size', '64', '64',
                            '--stride', '48', '48'),
    }
    for mode, m in same.items():
        np.testing.assert_array_equal(m['confusion'], base['confusion'], err_msg=mode)
        assert m['miou'] == base['miou'] and m['acc'] == base['acc'], mode
    # A real rescale is not pointwise: the options do reach the engine.
    multi = run('--aug_eval', '--scales', '0.5', '1.0', '--flip_horizontal')
    assert multi['confusion'].sum() == base['confusion'].sum()
    assert not np.array_equal(multi['confusion'], base['confusion'])
    with pytest.raises(UserError, match='--is_slide needs --crop_size'):
        val_main(['--config', cfg, '--model_path', weights, '--is_slide'])


class StrictSegForTests(PointwiseSegForTests):
    """A model whose arguments are all named (no ``**kwargs``): checked before it is built."""

    def __init__(self, num_classes=19, in_channels=3, hidden=8):
        super().__init__(num_classes, in_channels, hidden)


manager.MODELS.add_component(StrictSegForTests)


def test_model_argument_typo_is_refused_with_the_closest_before_building(tmp_path):
    """Issue 10: a misspelt model argument gets the closest known one, as a config key does;
    for a model whose arguments are all named, load_config refuses it (nothing is built)."""
    from paddleseg_ddr.engine import load_config
    cfg = tmp_path / 'strict.yml'
    root = str(tmp_path / 'cs')  # not read: the config is refused first
    dic = {**small(root), 'model': {'type': 'StrictSegForTests', 'num_classes': 19, 'hiden': 4},
           'optimizer': {'type': 'SGD'}, 'lr_scheduler': {'type': 'PolynomialDecay', 'learning_rate': 0.01}}
    for section in ('train_dataset', 'val_dataset'):
        dic[section]['type'] = 'DDRCityscapes'
    cfg.write_text(yaml.safe_dump(dic))
    with pytest.raises(UserError, match=r"model: unknown argument 'hiden' for StrictSegForTests\. "
                                        r"Did you mean 'hidden'\? StrictSegForTests takes: hidden, in_channels, num_classes"):
        load_config(str(cfg))
