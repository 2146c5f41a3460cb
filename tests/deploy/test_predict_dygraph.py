"""predict.py --config --model_path (dygraph) with val transforms that change the image size:
the label map comes back at the image's size and matches an independent computation."""
import cv2
import numpy as np
import paddle
import pytest

from paddleseg_ddr.cli import predict_main
from paddleseg_ddr.deploy import DygraphPredictor
from test_cli import PointwiseSegForTests, pointwise_weights, write_config  # tests/ is on sys.path

NORMALIZE = {'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}
TRANSFORMS = {  # (w, h) sizes for an image of 90 x 50
    'Resize': [{'type': 'Resize', 'target_size': [45, 32]}],
    'ResizeByShort': [{'type': 'ResizeByShort', 'short_size': 30}],
    'ResizeByLong': [{'type': 'ResizeByLong', 'long_size': 135}],
    'Padding': [{'type': 'Padding', 'target_size': [96, 64]}],
    'ResizeByShort+Padding': [{'type': 'ResizeByShort', 'short_size': 40}, {'type': 'Padding', 'target_size': [80, 48]}],
}


@pytest.fixture(scope='module')
def model():
    paddle.seed(7)
    m = PointwiseSegForTests()
    m.eval()
    return m


@pytest.fixture(scope='module')
def bgr():
    return np.random.default_rng(2).integers(0, 255, (50, 90, 3)).astype(np.uint8)


def reference(model, transforms_cfg, bgr):
    """The model on the transformed image, its logits brought back with OpenCV (padding
    cropped, bilinear resize with half-pixel centres), argmax in NumPy."""
    data = DygraphPredictor(model, transforms_cfg).transforms({'img': bgr.astype('float32')})
    with paddle.no_grad():
        logit = model(paddle.to_tensor(data['img'][None]))[0].numpy()[0].transpose(1, 2, 0)
    for mode, (h, w) in reversed(data['trans_info']):
        if mode == 'padding':
            logit = logit[:h, :w]
        else:
            logit = np.stack([cv2.resize(logit[..., k], (w, h), interpolation=cv2.INTER_LINEAR)
                              for k in range(logit.shape[-1])], axis=-1)
    return logit.argmax(axis=-1).astype(np.uint8)


@pytest.mark.parametrize('name', sorted(TRANSFORMS))
def test_size_changing_transforms_are_undone(model, bgr, name):
    cfg = TRANSFORMS[name] + [NORMALIZE]
    label = DygraphPredictor(model, cfg)(bgr)
    assert label.shape == bgr.shape[:2]
    np.testing.assert_array_equal(label, reference(model, cfg, bgr))
    whole = DygraphPredictor(model, [NORMALIZE])(bgr)
    if name == 'Padding':  # pointwise model: padding changes nothing
        np.testing.assert_array_equal(label, whole)
    else:  # a real rescale changes some pixels (so the test sees the resize)
        assert 0 < (label != whole).sum() < label.size


def test_identity_like_resize_with_flip_and_slide_gives_the_whole_image_labels(model, bgr):
    whole = DygraphPredictor(model, [NORMALIZE])(bgr)
    cfg = [{'type': 'Resize', 'target_size': [90, 50]}, NORMALIZE]
    for options in ({}, {'aug_pred': True, 'flip_horizontal': True},
                    {'is_slide': True, 'crop_size': [32, 32], 'stride': [24, 24]}):
        np.testing.assert_array_equal(DygraphPredictor(model, cfg, **options)(bgr), whole, err_msg=str(options))


def test_predict_cli_with_a_resizing_val_transform(tmp_path, model, bgr):
    cfg_transforms = TRANSFORMS['ResizeByShort+Padding'] + [NORMALIZE]
    cfg = write_config(tmp_path, model={'type': 'PointwiseSegForTests', 'num_classes': 19},
                       val_dataset={'dataset_root': str(tmp_path), 'transforms': cfg_transforms})
    weights = pointwise_weights(tmp_path / 'w.pdparams', seed=7)
    same = PointwiseSegForTests()
    same.set_state_dict(paddle.load(weights))
    same.eval()
    cv2.imwrite(str(tmp_path / 'street.png'), bgr)
    predict_main(['--config', cfg, '--model_path', weights, '--image_path', str(tmp_path / 'street.png'),
                  '--save_dir', str(tmp_path / 'out')])
    label = cv2.imread(str(tmp_path / 'out' / 'label' / 'street.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == bgr.shape[:2]
    np.testing.assert_array_equal(label, reference(same, cfg_transforms, bgr))
