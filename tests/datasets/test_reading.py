"""Images and labels read honestly (paddleseg_ddr/datasets/reading.py and DDRCityscapes.__getitem__)."""
import os
import random
import re

import cv2
import numpy as np
import paddle
import pytest
import yaml
from PIL import Image
from paddleseg.cvlibs import manager
from paddleseg.datasets import Cityscapes
from paddleseg.transforms import Normalize, RandomHorizontalFlip, RandomPaddingCrop, ResizeStepScaling

from paddleseg_ddr.datasets import DDRCityscapes
from paddleseg_ddr.datasets.reading import read_image, read_label
from paddleseg_ddr.errors import UserError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
QUICKSTART = os.path.join(ROOT, 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')
H, W = 24, 40


def write_tree(root, bits=8, n=2, seed=0):
    """n images per split, labels 0..18 with some 255, stored as 8- or 16-bit PNGs."""
    rng = np.random.default_rng(seed)
    for split in ('train', 'val'):
        for d in ('leftImg8bit', 'gtFine'):
            os.makedirs(os.path.join(root, d, split, 'ulm'), exist_ok=True)
        for i in range(n):
            stem = os.path.join(split, 'ulm', f'ulm_{i:06d}_000019')
            label = rng.integers(0, 19, (H, W))
            label[rng.random((H, W)) < 0.1] = 255
            cv2.imwrite(os.path.join(root, 'leftImg8bit', stem + '_leftImg8bit.png'),
                        rng.integers(0, 256, (H, W, 3)).astype(np.uint8))
            cv2.imwrite(os.path.join(root, 'gtFine', stem + '_gtFine_labelTrainIds.png'),
                        label.astype(np.uint16 if bits == 16 else np.uint8))
    return str(root)


# ----------------------------------------------------------------------------- labels

def test_16bit_label_keeps_its_values(tmp_path):
    label = np.random.default_rng(1).integers(0, 19, (H, W)).astype(np.uint16)
    label[0, :5] = 255
    path = str(tmp_path / 'l.png')
    cv2.imwrite(path, label)
    assert Image.open(path).mode.startswith('I;16')
    out = read_label(path, 19)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, label)


def test_label_of_many_classes_stays_wide(tmp_path):
    label = np.arange(H * W, dtype=np.uint16).reshape(H, W) % 700
    path = str(tmp_path / 'l.png')
    cv2.imwrite(path, label)
    out = read_label(path, 700, ignore_index=65535)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, label)


def test_palette_and_bilevel_labels_give_their_indices(tmp_path):
    label = np.random.default_rng(2).integers(0, 19, (H, W)).astype(np.uint8)
    im = Image.fromarray(label, mode='L').convert('P')
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    im.save(tmp_path / 'p.png')
    np.testing.assert_array_equal(read_label(str(tmp_path / 'p.png'), 19), label)
    Image.fromarray(label > 9).save(tmp_path / 'b.png')
    assert Image.open(tmp_path / 'b.png').mode == '1'
    np.testing.assert_array_equal(read_label(str(tmp_path / 'b.png'), 19), (label > 9).astype(np.uint8))


@pytest.mark.parametrize('bits', [8, 16])
def test_values_outside_the_classes_are_refused_naming_the_file(tmp_path, bits):
    label = np.zeros((H, W), np.uint16 if bits == 16 else np.uint8)
    label[1, 1], label[2, 2], label[3, 3] = 19, 200, 255
    path = str(tmp_path / 'l.png')
    cv2.imwrite(path, label)
    with pytest.raises(UserError) as e:
        read_label(path, 19, fix='FIX', values_fix='VALUES')
    assert f"'{path}' holds values [19, 200] outside [0, 19)" in str(e.value) and str(e.value).endswith('VALUES')
    label[1, 1] = label[2, 2] = 0
    cv2.imwrite(path, label)
    assert read_label(path, 19).max() == 255


@pytest.mark.parametrize('mode, channels', [('RGB', 3), ('RGBA', 4), ('LA', 2)])
def test_multi_channel_labels_are_refused(tmp_path, mode, channels):
    path = str(tmp_path / 'l.png')
    Image.new(mode, (W, H)).save(path)
    with pytest.raises(UserError, match=rf"'{path}' has {channels} channels \(mode {mode}\).*single-channel.*FIX"):
        read_label(path, 19, fix='FIX')


def test_float_labels_are_refused(tmp_path):
    path = str(tmp_path / 'l.tif')
    Image.fromarray(np.ones((H, W), np.float32)).save(path)
    with pytest.raises(UserError, match=r"holds float32 values \(mode F\).*integer class ids"):
        read_label(path, 19)


# ----------------------------------------------------------------------------- broken files

def _png(tmp_path, array, name='x.png'):
    path = str(tmp_path / name)
    cv2.imwrite(path, array)
    return path


def _cut(path, keep):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:keep if keep >= 1 else int(len(data) * keep)])
    return path


@pytest.mark.parametrize('reader, array', [
    (lambda p: read_image(p, fix='FIX'), np.full((H, W, 3), 7, np.uint8)),
    (lambda p: read_label(p, 19, fix='FIX'), np.full((H, W), 7, np.uint8)),
])
def test_empty_truncated_and_garbage_files_are_refused(tmp_path, reader, array):
    path = _png(tmp_path, array)
    assert reader(path).shape[:2] == (H, W)
    for keep, message in ((0, 'is empty (0 bytes)'), (0.5, 'is a truncated PNG'), (20, 'is a truncated PNG'),
                          (len(open(path, 'rb').read()) - 5, 'is a truncated PNG')):
        _png(tmp_path, array)
        _cut(path, keep)
        with pytest.raises(UserError, match=rf"'{path}' {re.escape(message)}.*FIX"):
            reader(path)
    with open(path, 'wb') as f:
        f.write(b'not an image at all')
    with pytest.raises(UserError, match=rf"'{path}' cannot be decoded as an image.*FIX"):
        reader(path)
    with pytest.raises(UserError, match=r"cannot read .*missing.png'"):
        reader(str(tmp_path / 'missing.png'))


def test_truncated_jpeg_is_refused_where_opencv_would_decode_grey(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (64, 96, 3)).astype(np.uint8)
    path = str(tmp_path / 'x.jpg')
    cv2.imwrite(path, image)
    np.testing.assert_array_equal(read_image(path), cv2.imread(path).astype(np.float32))
    _cut(path, 0.6)
    assert cv2.imread(path) is not None  # OpenCV alone decodes it, the rest grey
    with pytest.raises(UserError, match='truncated JPEG'):
        read_image(path)


# ----------------------------------------------------------------------------- DDRCityscapes

@pytest.mark.parametrize('mode', ['train', 'val'])
def test_samples_are_those_of_paddleseg_for_8bit_files(tmp_path, mode):
    """The override reads the same pixels and applies the same transforms as PaddleSeg."""
    root = write_tree(tmp_path / 'cs')
    transforms = [ResizeStepScaling(0.5, 2.0, 0.25), RandomPaddingCrop([32, 32]), RandomHorizontalFlip(), Normalize()]
    ds = DDRCityscapes(transforms if mode == 'train' else [Normalize()], root, mode=mode)
    for index in range(len(ds)):
        samples = []
        for getitem in (DDRCityscapes.__getitem__, Cityscapes.__getitem__):
            np.random.seed(index)
            random.seed(index)
            samples.append(getitem(ds, index))
        ours, theirs = samples
        assert ours.keys() == theirs.keys() and ours['trans_info'] == theirs['trans_info']
        np.testing.assert_array_equal(ours['img'], theirs['img'])
        np.testing.assert_array_equal(ours['label'], theirs['label'])
        assert ours['label'].dtype == theirs['label'].dtype == np.uint8


def test_label_of_another_size_than_its_image_is_refused(tmp_path):
    root = write_tree(tmp_path / 'cs', n=1)
    label = os.path.join(root, 'gtFine', 'train', 'ulm', 'ulm_000000_000019_gtFine_labelTrainIds.png')
    cv2.imwrite(label, np.zeros((H, W + 1), np.uint8))
    with pytest.raises(UserError) as e:
        DDRCityscapes([Normalize()], root, mode='train')[0]
    assert f"'{label}' is {W + 1}x{H} pixels but its image" in str(e.value)
    assert f'convert_cityscapes.py --dataset_root {root} --overwrite' in str(e.value)


class LinearPixelsForDataTests(paddle.nn.Layer):
    """logits = 1x1 convolution of the input: a prediction NumPy computes independently."""

    def __init__(self, num_classes=19, **_):  # **_: the base config's DDRNet keys
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, num_classes, 1)

    def forward(self, x):
        return [self.conv(x)]


if 'LinearPixelsForDataTests' not in manager.MODELS.components_dict:
    manager.MODELS.add_component(LinearPixelsForDataTests)


def numpy_miou(root, weights):
    """The val mIoU and confusion matrix computed with NumPy alone from the files."""
    state = paddle.load(weights)
    w = state['conv.weight'].numpy()[:, :, 0, 0].astype(np.float64)
    b = state['conv.bias'].numpy().astype(np.float64)
    conf = np.zeros((19, 19), np.int64)
    folder = os.path.join(root, 'leftImg8bit', 'val', 'ulm')
    for name in sorted(os.listdir(folder)):
        rgb = cv2.imread(os.path.join(folder, name))[:, :, ::-1].astype(np.float64)
        x = (rgb / 255.0 - 0.5) / 0.5
        pred = (x @ w.T + b).argmax(axis=-1)
        label = cv2.imread(os.path.join(root, 'gtFine', 'val', 'ulm', name.replace(
            '_leftImg8bit.png', '_gtFine_labelTrainIds.png')), cv2.IMREAD_UNCHANGED).astype(np.int64)
        keep = label != 255
        conf += np.bincount(label[keep] * 19 + pred[keep], minlength=19 * 19).reshape(19, 19)
    tp, union = np.diag(conf), conf.sum(0) + conf.sum(1) - np.diag(conf)
    return float(np.mean(tp[union > 0] / union[union > 0])), conf


@pytest.mark.parametrize('workers', [0, 1])
def test_val_on_16bit_labels_scores_their_classes(tmp_path, workers):
    """16-bit labels were read as bfloat16 and every pixel scored as class 0."""
    from paddleseg_ddr.cli import val_main
    root8, root16 = write_tree(tmp_path / 'cs8', 8), write_tree(tmp_path / 'cs16', 16)
    paddle.seed(11)
    weights = str(tmp_path / 'linear.pdparams')
    paddle.save(LinearPixelsForDataTests().state_dict(), weights)
    results = {}
    for bits, root in ((8, root8), (16, root16)):
        cfg = str(tmp_path / f'config{bits}.yml')
        with open(cfg, 'w') as f:
            yaml.safe_dump({'_base_': QUICKSTART, 'model': {'type': 'LinearPixelsForDataTests', 'num_classes': 19},
                            'val_dataset': {'dataset_root': root, 'transforms': [{'type': 'Normalize'}]},
                            'train_dataset': {'dataset_root': root}}, f)
        results[bits] = val_main(['--config', cfg, '--model_path', weights, '--num_workers', str(workers)])
    miou, conf = numpy_miou(root16, weights)
    assert conf.sum() == results[16]['confusion'].sum() and (conf.sum(axis=1) > 0).all()  # every class labelled
    for bits in (8, 16):
        np.testing.assert_array_equal(results[bits]['confusion'], conf, err_msg=f'{bits}-bit')
        assert abs(results[bits]['miou'] - miou) < 1e-12, bits
