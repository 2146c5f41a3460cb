import numpy as np
import paddle
import pytest

from paddleseg_ddr.losses import DDROhemCrossEntropyLoss


def numpy_ohem(logit, label, thresh, min_kept, weight=None, ignore=255):
    """Independent reference: HRNet/DDRNet's OHEM rule written with NumPy on flat arrays."""
    n, c, h, w = logit.shape
    scores = logit.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    target = label.reshape(-1)
    valid = target != ignore
    scores, target = scores[valid], target[valid]
    scores = scores - scores.max(axis=1, keepdims=True)
    logp = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    logp_t = logp[np.arange(len(target)), target]
    losses = -logp_t * (1.0 if weight is None else np.asarray(weight)[target])
    prob = np.exp(logp_t)
    order = np.argsort(prob, kind='stable')
    kth = prob[order][min(min_kept, len(prob) - 1)]
    threshold = max(kth, thresh)
    return losses[prob < threshold].mean()


CASES = [  # (thresh, min_kept, weighted, ignore_fraction)
    (0.7, 10, False, 0.0),
    (0.9, 200, True, 0.2),
    (0.3, 5, True, 0.5),      # min_kept dominates: threshold rises above thresh
    (1.0, 1, False, 0.1),     # threshold 1: every labelled pixel counts (plain CE)
]


@pytest.mark.parametrize('thresh,min_kept,weighted,ignore_fraction', CASES)
def test_matches_numpy_reference(thresh, min_kept, weighted, ignore_fraction):
    rng = np.random.default_rng(int(thresh * 10) + min_kept)
    c = 5
    logit = rng.normal(0, 2, (2, c, 12, 10)).astype(np.float32)
    label = rng.integers(0, c, (2, 12, 10))
    label[rng.random(label.shape) < ignore_fraction] = 255
    weight = rng.uniform(0.5, 1.5, c).tolist() if weighted else None
    loss = DDROhemCrossEntropyLoss(thresh, min_kept, weight=weight)(paddle.to_tensor(logit), paddle.to_tensor(label))
    expected = numpy_ohem(logit, label, thresh, min_kept, weight)
    assert abs(float(loss) - expected) <= 1e-5 * max(1.0, abs(expected))


def test_thresh_one_equals_weighted_cross_entropy_over_labelled_pixels():
    rng = np.random.default_rng(3)
    logit = rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32)
    label = rng.integers(0, 3, (1, 6, 6))
    label[0, 0] = 255
    loss = DDROhemCrossEntropyLoss(1.0, 1)(paddle.to_tensor(logit), paddle.to_tensor(label[:, None]))
    ce = paddle.nn.functional.cross_entropy(paddle.to_tensor(logit).transpose([0, 2, 3, 1]),
                                            paddle.to_tensor(label[..., None]), ignore_index=255)
    assert abs(float(loss) - float(ce)) < 1e-5


def test_gradient_flows_only_through_kept_pixels():
    logit = np.zeros((1, 2, 1, 4), np.float32)
    logit[0, 0, 0, :] = [5, 5, -1, 0]  # pixels 0, 1 easy for class 0; 2, 3 hard
    x = paddle.to_tensor(logit, stop_gradient=False)
    label = paddle.to_tensor(np.zeros((1, 1, 4), np.int64))
    DDROhemCrossEntropyLoss(0.9, 1)(x, label).backward()
    grad = np.abs(x.grad.numpy()).sum(axis=1)[0, 0]
    assert grad[0] == 0 and grad[1] == 0 and grad[2] > 0 and grad[3] > 0


def test_all_ignored_gives_zero_loss_with_gradient_path():
    x = paddle.randn([1, 3, 4, 4])
    x.stop_gradient = False
    loss = DDROhemCrossEntropyLoss()(x, paddle.full([1, 4, 4], 255, dtype='int64'))
    loss.backward()
    assert float(loss) == 0.0 and x.grad is not None


def test_wrong_number_of_class_weights_is_reported():
    with pytest.raises(ValueError, match='3 class weights for 5 classes'):
        DDROhemCrossEntropyLoss(weight=[1, 1, 1])(paddle.randn([1, 5, 2, 2]), paddle.zeros([1, 2, 2], 'int64'))
