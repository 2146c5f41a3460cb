"""Pictures a person would rather look at than read: per image a side-by-side PNG (image |
prediction overlaid on it | ground truth, coloured with the dataset's palette), and the
training curves (loss, learning rate, val mIoU per iteration) read from the run's VisualDL
records. Used by tools/quickstart.py; any export's predictions and any training folder work.

The panels hold exact pixels (no titles drawn over them): the overlay is
``(1 - weight) x image + weight x palette[prediction]`` as predict.py writes
``added_prediction``; the ground truth shows ignored pixels (255) in black. The panel names are
written in a strip above the panels.
"""
import glob
import os

import cv2
import numpy as np

from ..errors import UserError
from ..utils.fileio import atomic_path, write_image
from .predict import label_tables

HEADER = 24  # pixels of the title strip above the panels
GAP = 4  # pixels between panels


def colorize(label, colors, ignore_index=255):
    """RGB uint8 image of a label map with ``colors`` [>= 256, 3] (RGB); ``ignore_index`` black."""
    rgb = colors[np.asarray(label, np.uint8)]
    if ignore_index is not None:
        rgb[np.asarray(label) == ignore_index] = 0
    return rgb


def overlay(bgr, label, colors, weight=0.6):
    """The prediction over the image (BGR uint8), as predict.py's ``added_prediction``."""
    color_bgr = np.ascontiguousarray(colors[np.asarray(label, np.uint8)][..., ::-1])
    return cv2.addWeighted(bgr, 1 - weight, color_bgr, weight, 0)


def side_by_side(bgr, prediction, ground_truth, colors, titles=('image', 'prediction', 'ground truth'),
                 weight=0.6, ignore_index=255):
    """BGR uint8 [HEADER + H, 3 W + 2 GAP, 3]: image | prediction overlay | ground truth (or
    the prediction's colours alone when ``ground_truth`` is None), titles above."""
    h, w = bgr.shape[:2]
    if prediction.shape != (h, w) or (ground_truth is not None and ground_truth.shape != (h, w)):
        raise ValueError(f'image {bgr.shape[:2]}, prediction {prediction.shape} and ground truth '
                         f'{None if ground_truth is None else ground_truth.shape} must have the same size')
    third = colorize(ground_truth if ground_truth is not None else prediction, colors, ignore_index)[..., ::-1]
    panels = [bgr, overlay(bgr, prediction, colors, weight), np.ascontiguousarray(third)]
    canvas = np.full((HEADER + h, 3 * w + 2 * GAP, 3), 255, np.uint8)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        x = i * (w + GAP)
        canvas[HEADER:, x:x + w] = panel
        cv2.putText(canvas, str(title), (x + 4, HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


def panel(canvas, index, width):
    """Panel ``index`` (0 image, 1 overlay, 2 ground truth) of a :func:`side_by_side` picture."""
    x = index * (width + GAP)
    return canvas[HEADER:, x:x + width]


def write_side_by_side(path, bgr, prediction, ground_truth, meta=None, prediction_title='prediction',
                       weight=0.6, ignore_index=255):
    """Write one :func:`side_by_side` PNG (atomically) with ``meta``'s palette (a DatasetMeta,
    e.g. from deploy.yaml; PaddleSeg's generic colours without it)."""
    colors, _ = label_tables(meta)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_image(path, side_by_side(bgr, prediction, ground_truth, colors,
                                   ('image', prediction_title, 'ground truth'), weight, ignore_index))
    return path


def read_training_curves(log_dir):
    """{'loss': [(iter, value)], 'lr': [...], 'miou': [...]} from the VisualDL records the
    training engine writes into ``log_dir`` with ``--use_vdl`` (the newest record file)."""
    files = sorted(glob.glob(os.path.join(log_dir, 'vdlrecords.*.log')), key=os.path.getmtime)
    if not files:
        raise UserError(f"no VisualDL records (vdlrecords.*.log) in '{log_dir}': train with --use_vdl to record "
                        'the curves.')
    from visualdl import LogReader
    reader = LogReader(file_path=files[-1])
    tags = reader.get_tags().get('scalar', [])
    curves = {}
    for key, tag in (('loss', 'Train/loss'), ('lr', 'Train/lr'), ('miou', 'Evaluate/mIoU')):
        curves[key] = sorted((int(r.id), float(r.value)) for r in reader.get_data('scalar', tag)) if tag in tags else []
    return curves


def plot_training_curves(curves, path, title=None):
    """One PNG, three panels sharing the iteration axis: training loss, learning rate, val mIoU."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (key, label, color) in zip(axes, (('loss', 'training loss', 'tab:blue'),
                                              ('lr', 'learning rate', 'tab:orange'),
                                              ('miou', 'val mIoU', 'tab:green'))):
        points = curves.get(key) or []
        if points:
            its, values = zip(*points)
            ax.plot(its, values, marker='o' if key == 'miou' else None, color=color)
        else:
            ax.text(0.5, 0.5, 'not recorded', ha='center', va='center', transform=ax.transAxes)
        ax.set_title(label)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=100)
    plt.close(fig)
    return path
