"""Evaluation with val transforms that change the image size: the prediction is brought back
to the label's size, with and without data-loading workers, and the metrics are right."""
import cv2
import numpy as np
import paddle
import pytest
from paddleseg.transforms import Normalize, Padding, RandomPaddingCrop, Resize, ResizeByLong, ResizeByShort

from paddleseg_ddr.datasets import DDRCityscapes
from paddleseg_ddr.engine.data import iterate_batches
from paddleseg_ddr.engine.evaluate import evaluate
from paddleseg_ddr.errors import UserError
from test_cli import tiny_cityscapes  # tests/ is on sys.path (rootdir conftest)

H, W, C = 64, 128, 19  # tiny_cityscapes' image size; Cityscapes classes


class Pointwise(paddle.nn.Layer):
    """1x1 convolutions only: a pixel's logits depend on that pixel alone."""

    def __init__(self):
        super().__init__()
        paddle.seed(3)
        self.conv = paddle.nn.Conv2D(3, C, 1)

    def forward(self, x):
        return [self.conv(x) * 4.0]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return tiny_cityscapes(tmp_path_factory.mktemp('cs'), n=2)


@pytest.fixture(scope='module')
def model():
    m = Pointwise()
    m.eval()
    return m


def dataset(root, *size_transforms):
    return DDRCityscapes([*size_transforms, Normalize()], root, mode='val')


def numpy_confusion(model, ds):
    """Expected confusion matrix: the model on each transformed image, its logits resized back
    to the label's size with OpenCV (bilinear, half-pixel centres) after cropping any padding,
    compared with the label file in NumPy."""
    conf = np.zeros((C, C), np.int64)
    for i, (_, label_path) in enumerate(ds.file_list):
        sample = ds[i]
        with paddle.no_grad():
            logit = model(paddle.to_tensor(sample['img'][None]))[0].numpy()[0].transpose(1, 2, 0)
        for mode, (h, w) in reversed(sample['trans_info']):
            if mode == 'padding':
                logit = logit[:h, :w]
            else:
                logit = np.stack([cv2.resize(logit[..., k], (w, h), interpolation=cv2.INTER_LINEAR)
                                  for k in range(C)], axis=-1)
        pred = logit.argmax(axis=-1)
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        assert pred.shape == label.shape
        keep = label != 255
        np.add.at(conf, (label[keep], pred[keep]), 1)
    return conf


@pytest.fixture(scope='module')
def whole(root, model):
    return evaluate(model, dataset(root), print_detail=False)


# Transforms that leave the size as it is (or pad): a pointwise model must give the
# whole-image evaluation exactly.
IDENTITY_LIKE = {
    'Resize': lambda: Resize((W, H)),
    'ResizeByShort': lambda: ResizeByShort(H),
    'ResizeByLong': lambda: ResizeByLong(W),
    'Padding': lambda: Padding((W + 40, H + 24)),
}
# Transforms that really rescale: compared with the NumPy/OpenCV computation.
RESCALING = {
    'Resize': lambda: [Resize((W // 2, H // 2))],
    'ResizeByShort': lambda: [ResizeByShort(H // 2)],
    'ResizeByLong': lambda: [ResizeByLong(W * 3 // 2)],
    'ResizeByShort+Padding': lambda: [ResizeByShort(40), Padding((96, 48))],
}


@pytest.mark.parametrize('num_workers', [0, 1])
@pytest.mark.parametrize('name', sorted(IDENTITY_LIKE))
def test_identity_like_transforms_give_the_whole_image_metrics(root, model, whole, name, num_workers):
    metrics = evaluate(model, dataset(root, IDENTITY_LIKE[name]()), num_workers=num_workers, print_detail=False)
    np.testing.assert_array_equal(metrics['confusion'], whole['confusion'])
    assert metrics['miou'] == whole['miou'] and metrics['confusion'].sum() == 2 * H * W


@pytest.mark.parametrize('num_workers', [0, 1])
@pytest.mark.parametrize('name', sorted(RESCALING))
def test_rescaling_transforms_match_an_independent_computation(root, model, whole, name, num_workers):
    ds = dataset(root, *RESCALING[name]())
    metrics = evaluate(model, ds, num_workers=num_workers, print_detail=False)
    expected = numpy_confusion(model, ds)
    assert expected.sum() == 2 * H * W
    np.testing.assert_array_equal(metrics['confusion'], expected)
    assert not np.array_equal(metrics['confusion'], whole['confusion'])  # the resize did matter


def test_batches_have_the_same_trans_info_with_and_without_workers(root):
    ds = dataset(root, ResizeByShort(32), Padding((80, 40)))
    batches = [[0], [1]]
    seen = []
    for workers in (0, 1):
        seen.append([(idx, data['trans_info'], data['img'].shape) for idx, data in iterate_batches(ds, batches, workers)])
    assert seen[0] == seen[1]
    assert seen[0][0][1] == [[['resize', [H, W]], ['padding', [32, 64]]]]


def test_summary_line_in_paddleseg_format_and_class_table(root, model, whole, capsys):
    evaluate(model, dataset(root), print_detail=True)
    out = capsys.readouterr().out
    line = (f"[EVAL] #Images: 2 mIoU: {whole['miou']:.4f} Acc: {whole['acc']:.4f} "
            f"Kappa: {whole['kappa']:.4f} Dice: {whole['mdice']:.4f}")
    assert any(row.endswith(line) for row in out.splitlines()), out
    assert 'traffic light' in out and 'Recall' in out


def test_a_cropping_val_transform_is_a_user_error(root, model):
    with pytest.raises(UserError, match='must not crop'):
        evaluate(model, dataset(root, RandomPaddingCrop((32, 32))), print_detail=False)
