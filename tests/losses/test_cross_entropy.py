"""DDRCrossEntropyLoss: PaddleSeg's CrossEntropyLoss rule (mean over labelled pixels, class
weights normalised by the pixels' weights), which PaddleSeg 2.8 cannot run on Paddle 3."""
import numpy as np
import paddle
import pytest
from paddleseg.models.losses import CrossEntropyLoss

from paddleseg_ddr.losses.cross_entropy import DDRCrossEntropyLoss

WEIGHT = [0.5, 1.0, 2.0, 1.5]


def batch(seed=0):
    rng = np.random.default_rng(seed)
    logit = rng.normal(size=(2, 4, 5, 6)).astype(np.float32) * 3
    label = rng.integers(0, 4, size=(2, 5, 6))
    label[0, :2] = 255  # ignored pixels
    return logit, label


def reference(logit, label, weight=None):
    """NumPy: sum(w[y] * -log softmax(logit)[y]) / sum(w[y]) over labelled pixels."""
    shifted = logit - logit.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    valid = label != 255
    y = np.where(valid, label, 0)
    nll = -np.take_along_axis(log_p, y[:, None], axis=1)[:, 0]
    w = (np.ones(logit.shape[1]) if weight is None else np.asarray(weight))[y] * valid
    return (nll * w).sum() / w.sum()


@pytest.mark.parametrize('weight', [None, WEIGHT])
def test_paddleseg_cross_entropy_fails_on_paddle3(weight):
    """Why the project owns this loss (int64 times float32 in PaddleSeg's mean)."""
    logit, label = batch()
    with pytest.raises(TypeError, match='Type promotion'):
        CrossEntropyLoss(weight=weight)(paddle.to_tensor(logit), paddle.to_tensor(label))


@pytest.mark.parametrize('weight', [None, WEIGHT])
def test_equals_the_formula(weight):
    logit, label = batch()
    x = paddle.to_tensor(logit, stop_gradient=False)
    loss = DDRCrossEntropyLoss(weight=weight)(x, paddle.to_tensor(label))
    assert loss.shape == [] or loss.shape == [1]
    np.testing.assert_allclose(float(loss), reference(logit, label, weight), rtol=1e-5)
    loss.backward()
    grad = x.grad.numpy()
    assert np.all(grad[0, :, :2] == 0) and np.abs(grad).sum() > 0  # nothing from ignored pixels
    # a [N, 1, H, W] label gives the same
    again = DDRCrossEntropyLoss(weight=weight)(paddle.to_tensor(logit), paddle.to_tensor(label[:, None]))
    np.testing.assert_allclose(float(again), float(loss), rtol=1e-6)


def test_nothing_labelled_is_zero_and_wrong_weights_are_refused():
    logit, label = batch()
    x = paddle.to_tensor(logit, stop_gradient=False)
    loss = DDRCrossEntropyLoss()(x, paddle.full(label.shape, 255, 'int64'))
    assert float(loss) == 0.0
    loss.backward()
    with pytest.raises(ValueError, match='3 class weights for 4 classes'):
        DDRCrossEntropyLoss(weight=[1, 1, 1])(paddle.to_tensor(logit), paddle.to_tensor(label))
