"""Segmentation metrics from a confusion matrix.

PaddleSeg 2.8's ``calculate_area`` fails on Paddle 3 (it concatenates 0-D tensors), so the
project accumulates a confusion matrix instead: one ``bincount`` per image, summed across
ranks with a single all-reduce, from which every metric follows.
"""
import numpy as np
import paddle


def confusion_matrix(pred, label, num_classes, ignore_index=255):
    """[num_classes, num_classes] int64 matrix, rows = ground truth, columns = prediction.

    ``pred`` and ``label`` are integer tensors of the same number of elements.
    """
    pred = pred.flatten().astype('int64')
    label = label.flatten().astype('int64')
    keep = label != ignore_index
    index = paddle.masked_select(label * num_classes + pred, keep)
    counts = paddle.bincount(index, minlength=num_classes * num_classes)
    return counts.numpy().reshape(num_classes, num_classes)


def _safe_divide(num, den):
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def compute_metrics(conf):
    """Metrics of a confusion matrix (rows = ground truth, columns = prediction).

    A class absent from both the ground truth and the predictions has no IoU or Dice
    (NaN) and is left out of the means, as the official Cityscapes evaluator does.
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pred = conf.sum(axis=0)
    total = conf.sum()
    union = gt + pred - tp
    iou = _safe_divide(tp, union)
    dice = _safe_divide(2 * tp, gt + pred)
    pixel_acc = tp.sum() / total if total > 0 else float('nan')
    expected = (gt * pred).sum() / total**2 if total > 0 else float('nan')
    kappa = (pixel_acc - expected) / (1 - expected) if total > 0 and expected < 1 else float('nan')
    return {
        'miou': float(np.nanmean(iou)) if np.any(union > 0) else float('nan'),
        'class_iou': iou,
        'acc': float(pixel_acc),
        'class_acc': _safe_divide(tp, gt),  # recall per class
        'kappa': float(kappa),
        'mdice': float(np.nanmean(dice)) if np.any(union > 0) else float('nan'),
        'class_dice': dice,
    }


def format_metrics(metrics, class_names=None):
    """A summary line and a per-class table; classes without pixels show 'n/a'."""
    iou, dice = metrics['class_iou'], metrics['class_dice']
    names = class_names or [str(i) for i in range(len(iou))]
    fmt = lambda v: 'n/a' if np.isnan(v) else f'{v:.4f}'
    width = max(len('class'), *(len(n) for n in names))
    lines = [f"mIoU: {fmt(metrics['miou'])}  Acc: {fmt(metrics['acc'])}  "
             f"Kappa: {fmt(metrics['kappa'])}  mDice: {fmt(metrics['mdice'])}",
             f"{'class':<{width}}  {'IoU':>7}  {'Dice':>7}  {'Recall':>7}"]
    for name, i, d, a in zip(names, iou, dice, metrics['class_acc']):
        lines.append(f'{name:<{width}}  {fmt(i):>7}  {fmt(d):>7}  {fmt(a):>7}')
    return '\n'.join(lines)
