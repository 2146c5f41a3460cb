"""The quickstart's pictures (paddleseg_ddr/deploy/report.py): the side-by-side panels hold the
image, the prediction blended with the palette colour of each predicted class, and the ground
truth in palette colours; the training curves come from the VisualDL records the engine writes.
And the quickstart's deployed run on an export: its mIoU equals val.py's on the same export."""
import os
import sys

import cv2
import numpy as np
import pytest

from paddleseg_ddr.datasets.metainfo import dataset_meta
from paddleseg_ddr.deploy import report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def test_side_by_side_panels_are_image_overlay_and_ground_truth(tmp_path):
    meta = dataset_meta('DDRCityscapes')
    palette = np.array(meta.palette, np.float64)  # RGB, one row per class
    rng = np.random.default_rng(0)
    h, w = 20, 30
    bgr = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    pred = rng.integers(0, 19, (h, w)).astype(np.uint8)
    truth = rng.integers(0, 19, (h, w)).astype(np.uint8)
    truth[:3] = 255  # ignored pixels
    path = report.write_side_by_side(str(tmp_path / 'pics' / 'a.png'), bgr, pred, truth, meta,
                                     prediction_title='prediction (openvino bf16)')
    canvas = cv2.imread(path)  # PNG: lossless
    assert canvas.shape == (report.HEADER + h, 3 * w + 2 * report.GAP, 3)
    np.testing.assert_array_equal(report.panel(canvas, 0, w), bgr)
    # overlay: 0.4 x image + 0.6 x the predicted class's palette colour (BGR), rounded
    expected = np.clip(np.rint(0.4 * bgr + 0.6 * palette[pred][..., ::-1]), 0, 255)
    assert np.abs(report.panel(canvas, 1, w).astype(int) - expected).max() <= 1
    # ground truth in palette colours, ignored pixels black
    third = report.panel(canvas, 2, w)
    np.testing.assert_array_equal(third[3:], palette[truth[3:]][..., ::-1].astype(np.uint8))
    assert (third[:3] == 0).all()
    # the title strip carries the names (dark text on white)
    assert (canvas[:report.HEADER] < 128).any() and (canvas[:report.HEADER] == 255).mean() > 0.5


def test_training_curves_read_from_visualdl_and_plotted(tmp_path):
    from visualdl import LogWriter
    writer = LogWriter(str(tmp_path))
    for it in range(20, 201, 20):
        writer.add_scalar('Train/loss', 3.0 / it * 20, it)
        writer.add_scalar('Train/lr', 0.02 * (1 - it / 200) ** 0.9, it)
    for it, miou in ((100, 0.12), (200, 0.21)):
        writer.add_scalar('Evaluate/mIoU', miou, it)
    writer.close()
    curves = report.read_training_curves(str(tmp_path))
    assert [it for it, _ in curves['loss']] == list(range(20, 201, 20))
    assert curves['loss'][0][1] == pytest.approx(3.0) and curves['miou'] == [(100, pytest.approx(0.12)),
                                                                              (200, pytest.approx(0.21))]
    png = report.plot_training_curves(curves, str(tmp_path / 'curves.png'))
    image = cv2.imread(png)
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 600
    # three panels drawn with lines in their colours: blue loss, orange lr, green mIoU (BGR)
    for bgr in ((180, 119, 31), (14, 127, 255), (44, 160, 44)):
        assert (np.abs(image.astype(int) - bgr).sum(axis=2) < 30).sum() > 50, bgr
    empty = tmp_path / 'no_records'
    empty.mkdir()
    from paddleseg_ddr.errors import UserError
    with pytest.raises(UserError, match='--use_vdl'):
        report.read_training_curves(str(empty))


def test_deployed_run_scores_like_val_and_writes_one_picture_per_image(tmp_path, mini_root):
    """quickstart.deployed_run on an export of a briefly initialised model: its mIoU equals
    val.py --model_dir with the same engine and precision (the fast head is exact), and one
    side-by-side PNG per val image, whose prediction panel is the overlay of the runner's labels."""
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    import quickstart

    from paddleseg_ddr.cli import val_main
    from paddleseg_ddr.deploy.engines import create_runner
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'deploy'))
    from engine_exports import shared
    export = shared()[0]
    opts = [f'train_dataset.dataset_root={mini_root}', f'val_dataset.dataset_root={mini_root}']
    pictures = tmp_path / 'pictures'
    metrics, latency, written = quickstart.deployed_run(export, quickstart.CONFIG, opts, 'onnxruntime', 'fp32',
                                                        str(pictures), cpu_threads=2)
    val = val_main(['--config', quickstart.CONFIG, '--model_dir', export, '--engine', 'onnxruntime',
                    '--cpu_threads', '2', '--opts', *opts])
    assert metrics['miou'] == val['miou'] and (metrics['confusion'] == val['confusion']).all()
    assert len(written) == val['images'] == len(os.listdir(pictures))
    assert latency['median_ms'] > 0 and latency['size'] == '512x256'
    # the prediction panel of the first picture: the uncut export's labels, overlaid
    runner = create_runner(export, 'onnxruntime', 'fp32', cpu_threads=2)
    image_file = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(mini_root, 'leftImg8bit', 'val'))
                        for f in fs)[0]
    bgr = cv2.imread(image_file)
    canvas = cv2.imread(str(pictures / (os.path.splitext(os.path.basename(image_file))[0] + '.png')))
    colors = np.array(runner.meta.palette, np.float64)[..., ::-1]
    expected = np.rint(0.4 * bgr + 0.6 * colors[runner(bgr)])
    assert np.abs(report.panel(canvas, 1, bgr.shape[1]).astype(int) - expected).max() <= 1
