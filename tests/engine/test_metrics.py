import math

import numpy as np
import paddle

from paddleseg_ddr.engine.metrics import compute_metrics, confusion_matrix, format_metrics


def numpy_confusion(pred, label, c, ignore=255):
    conf = np.zeros((c, c), np.int64)
    keep = label != ignore
    np.add.at(conf, (label[keep], pred[keep]), 1)
    return conf


def test_confusion_matrix_matches_numpy():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 7, (2, 1, 30, 40))
    label = rng.integers(0, 7, (2, 1, 30, 40))
    label[rng.random(label.shape) < 0.3] = 255
    conf = confusion_matrix(paddle.to_tensor(pred), paddle.to_tensor(label), 7)
    np.testing.assert_array_equal(conf, numpy_confusion(pred, label, 7))


def test_metrics_against_hand_computed_values():
    # rows: ground truth, columns: prediction; class 3 occurs nowhere, class 2 only predicted.
    conf = np.array([[50, 10, 0, 0],
                     [5, 30, 5, 0],
                     [0, 0, 0, 0],
                     [0, 0, 0, 0]])
    m = compute_metrics(conf)
    iou0, iou1, iou2 = 50 / 65, 30 / 50, 0.0
    assert math.isclose(m['class_iou'][0], iou0) and math.isclose(m['class_iou'][1], iou1)
    assert m['class_iou'][2] == 0.0 and math.isnan(m['class_iou'][3])
    assert math.isclose(m['miou'], (iou0 + iou1 + iou2) / 3)  # class 3 not counted as 0
    total = 100
    assert math.isclose(m['acc'], 80 / total)
    pe = (60 * 55 + 40 * 40 + 0 * 5) / total**2
    assert math.isclose(m['kappa'], (0.8 - pe) / (1 - pe))
    assert math.isclose(m['class_dice'][0], 100 / 115)
    assert math.isclose(m['mdice'], (100 / 115 + 60 / 80 + 0) / 3)
    table = format_metrics(m, ['a', 'b', 'c', 'd'])
    assert 'n/a' in table.splitlines()[-1] and table.splitlines()[-1].startswith('d')


def test_random_predictions_against_independent_computation():
    rng = np.random.default_rng(1)
    c = 5
    label = rng.integers(0, c, 5000)
    pred = np.where(rng.random(5000) < 0.6, label, rng.integers(0, c, 5000))
    conf = confusion_matrix(paddle.to_tensor(pred), paddle.to_tensor(label), c)
    m = compute_metrics(conf)
    ious = [np.sum((pred == k) & (label == k)) / np.sum((pred == k) | (label == k)) for k in range(c)]
    np.testing.assert_allclose(m['class_iou'], ious)
    assert math.isclose(m['acc'], np.mean(pred == label))
