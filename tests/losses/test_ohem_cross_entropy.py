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
    kept = prob < threshold
    if not kept.any():  # ties at the threshold: nothing strictly below it, keep the tied pixels
        kept = prob <= threshold
    return losses[kept].mean()


def true_class_prob(logit, label, ignore=255):
    """Softmax probability of the true class at each labelled pixel, flat, float64."""
    c = logit.shape[1]
    scores = logit.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    target = label.reshape(-1)
    valid = target != ignore
    scores, target = scores[valid], target[valid]
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(target)), target]


CASES = [  # (thresh, min_kept, weighted, ignore_fraction)
    (0.7, 10, False, 0.0),
    (0.9, 200, True, 0.2),
    (0.3, 5, True, 0.5),      # thresh decides (the 5th smallest probability is far below 0.3)
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


def test_min_kept_decides_when_the_kth_probability_is_above_thresh():
    """A low thresh: the min_kept-th smallest true-class probability p_k is above it, so the
    kept set is exactly the min_kept pixels with probability < p_k."""
    rng = np.random.default_rng(11)
    c, min_kept, thresh = 5, 70, 0.05
    logit = rng.normal(0, 1, (2, c, 10, 8)).astype(np.float32)
    label = rng.integers(0, c, (2, 10, 8))
    label[rng.random(label.shape) < 0.2] = 255
    weight = rng.uniform(0.5, 1.5, c).tolist()
    prob = true_class_prob(logit, label)
    p_k = np.sort(prob)[min_kept]
    assert min_kept < len(prob) and p_k > thresh  # the case really is min_kept's
    assert (prob < p_k).sum() == min_kept and (prob < thresh).sum() < min_kept // 2
    loss = float(DDROhemCrossEntropyLoss(thresh, min_kept, weight=weight)(paddle.to_tensor(logit),
                                                                          paddle.to_tensor(label)))
    expected = numpy_ohem(logit, label, thresh, min_kept, weight)
    assert abs(loss - expected) <= 1e-5 * max(1.0, abs(expected))
    # direct from the definition: weighted mean over exactly those pixels
    target = label.reshape(-1)[label.reshape(-1) != 255]
    w = np.asarray(weight)[target]
    kept = prob < p_k
    assert abs(loss - (-np.log(prob[kept]) * w[kept]).mean()) <= 1e-5 * max(1.0, abs(expected))
    # and it differs from what thresh alone or one pixel more would give
    for other in (numpy_ohem(logit, label, thresh, 1, weight), (-np.log(prob[prob <= p_k]) * w[prob <= p_k]).mean()):
        assert abs(loss - other) > 1e-3


def two_class_logits(probs):
    """[1, 2, 1, n] logits whose class-0 softmax probabilities are ``probs`` (label 0 everywhere)."""
    probs = np.asarray(probs, np.float64)
    logit = np.zeros((1, 2, 1, len(probs)), np.float32)
    logit[0, 0, 0] = np.log(probs / (1 - probs))
    return logit, np.zeros((1, 1, len(probs)), np.int64)


def test_min_kept_by_hand():
    probs = [0.8, 0.1, 0.6, 0.95, 0.2, 0.5]
    logit, label = two_class_logits(probs)
    # thresh 0.15 alone keeps {0.1}; min_kept 3 raises the threshold to p_k = 0.6: keeps {0.1, 0.2, 0.5}
    loss = float(DDROhemCrossEntropyLoss(0.15, 3)(paddle.to_tensor(logit), paddle.to_tensor(label)))
    expected = -np.mean(np.log([0.1, 0.2, 0.5]))
    assert abs(loss - expected) < 1e-5
    assert abs(numpy_ohem(logit, label, 0.15, 3) - expected) < 1e-6
    # min_kept 1 (p_k = 0.2 > 0.15) keeps {0.1}; thresh 0.7 above p_k keeps {0.1, 0.2, 0.5, 0.6}
    assert abs(float(DDROhemCrossEntropyLoss(0.15, 1)(paddle.to_tensor(logit), paddle.to_tensor(label)))
               + np.log(0.1)) < 1e-5
    assert abs(float(DDROhemCrossEntropyLoss(0.7, 3)(paddle.to_tensor(logit), paddle.to_tensor(label)))
               + np.mean(np.log([0.1, 0.2, 0.5, 0.6]))) < 1e-5


def test_nothing_below_the_threshold_keeps_the_pixels_tied_at_it():
    """Three pixels tied at the lowest probability 0.5 and min_kept 2: p_k = 0.5 > thresh and
    no probability is below it, so the tied pixels (and only they) are kept."""
    logit, label = two_class_logits([0.9, 0.5, 0.9, 0.5, 0.5, 0.9])
    x = paddle.to_tensor(logit, stop_gradient=False)
    loss = DDROhemCrossEntropyLoss(0.3, 2)(x, paddle.to_tensor(label))
    assert abs(float(loss) - np.log(2)) < 1e-6 and np.isfinite(float(loss))
    assert abs(numpy_ohem(logit, label, 0.3, 2) - np.log(2)) < 1e-6
    loss.backward()
    grad = np.abs(x.grad.numpy()).sum(axis=1)[0, 0]
    np.testing.assert_array_equal(grad > 0, [False, True, False, True, True, False])


def test_all_probabilities_equal_keeps_every_pixel():
    """Zero logits: every labelled pixel has probability 1/C; min_kept-th smallest ties with all."""
    rng = np.random.default_rng(4)
    logit = np.zeros((1, 4, 5, 5), np.float32)
    label = rng.integers(0, 4, (1, 5, 5))
    label[0, 0, :2] = 255
    weight = [1.0, 2.0, 0.5, 1.5]
    loss = float(DDROhemCrossEntropyLoss(0.1, 5, weight=weight)(paddle.to_tensor(logit), paddle.to_tensor(label)))
    target = label[label != 255]
    expected = np.log(4) * np.mean(np.asarray(weight)[target])
    assert abs(loss - expected) < 1e-5
    assert abs(numpy_ohem(logit, label, 0.1, 5, weight) - expected) < 1e-5
