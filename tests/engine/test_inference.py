import cv2
import numpy as np
import paddle
import pytest
from paddleseg.transforms import Normalize

from paddleseg_ddr.datasets import DDRCityscapes
from paddleseg_ddr.engine.evaluate import evaluate
from paddleseg_ddr.engine.inference import aug_predict, predict_logits, slide_inference
from paddleseg_ddr.models import DDRNet23Slim


class Pointwise(paddle.nn.Layer):
    """A per-pixel model: its logits at a pixel depend on that pixel only, so every
    inference mode must reproduce the whole-image logits."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, num_classes, 1)

    def forward(self, x):
        return [self.conv(x)]


@pytest.fixture
def image():
    paddle.seed(0)
    return paddle.randn([1, 3, 50, 70])


def test_slide_matches_whole_image_for_a_pointwise_model(image):
    model = Pointwise()
    whole = predict_logits(model, image)
    for crop, stride in (((32, 24), (20, 16)), ((70, 50), (70, 50)), ((100, 100), (50, 50)), ((16, 16), (16, 16))):
        np.testing.assert_allclose(slide_inference(model, image, crop, stride).numpy(), whole.numpy(), rtol=1e-5, atol=1e-5)


def test_slide_rejects_stride_larger_than_crop(image):
    from paddleseg_ddr.errors import UserError
    with pytest.raises(UserError, match='stride'):
        slide_inference(Pointwise(), image, (16, 16), (20, 16))


def test_slide_windows_average_overlaps():
    """A model that outputs a constant per window: overlapping pixels get the mean."""
    class WindowId(paddle.nn.Layer):
        calls = 0

        def forward(self, x):
            WindowId.calls += 1
            return [paddle.full([1, 1, *x.shape[2:]], float(WindowId.calls))]
    out = slide_inference(WindowId(), paddle.zeros([1, 3, 10, 30]), (20, 10), (10, 10)).numpy()[0, 0, 0]
    # windows: x 0-20 -> 1, x 10-30 -> 2
    np.testing.assert_allclose(out[:10], 1.0)
    np.testing.assert_allclose(out[10:20], 1.5)
    np.testing.assert_allclose(out[20:], 2.0)


def test_aug_predict_is_softmax_average_of_views(image):
    model = Pointwise()
    whole = paddle.nn.functional.softmax(predict_logits(model, image), axis=1).numpy()
    np.testing.assert_allclose(aug_predict(model, image).numpy(), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aug_predict(model, image, flip_horizontal=True, flip_vertical=True).numpy(),
                               whole, rtol=1e-5, atol=1e-6)
    multi = aug_predict(model, image, scales=(0.5, 1.0, 1.5), flip_horizontal=True)
    assert multi.shape == [1, 4, 50, 70]
    np.testing.assert_allclose(multi.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_counts_every_val_pixel_against_the_label_files(mini_root):
    paddle.seed(0)
    model = DDRNet23Slim(num_classes=19, aux_head=False)
    model.eval()
    ds = DDRCityscapes([Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])], mini_root, mode='val')
    metrics = evaluate(model, ds, print_detail=False)
    conf = np.zeros((19, 19), np.int64)
    for i, (_, label_path) in enumerate(ds.file_list):
        with paddle.no_grad():
            pred = model(paddle.to_tensor(ds[i]['img'][None]))[0].argmax(axis=1).numpy()[0]
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        keep = label != 255
        np.add.at(conf, (label[keep], pred[keep]), 1)
    np.testing.assert_array_equal(metrics['confusion'], conf)
    assert metrics['images'] == 10
