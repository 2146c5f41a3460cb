"""val.py --model_dir: an export scored on the config's val_dataset with each engine gives the
dygraph model's mIoU and per-class table, and its confusion matrix equals one computed
independently (ONNX Runtime session + NumPy) from the files on disk."""
import glob
import os

import cv2
import numpy as np
import onnxruntime as ort
import yaml

from paddleseg_ddr import cli
from paddleseg_ddr.deploy.engines import ENGINES
from engine_exports import shared

# The fp32 exports' label maps differ from the dygraph model's on a handful of pixels: where
# two classes' logits are equal to float rounding, the engines' own convolution kernels
# (oneDNN, MLAS, OpenVINO's) break the tie differently from Paddle's dygraph ones. Measured
# on this test's 10 mini val images (1,310,720 pixels): 1-2 pixels per engine (2026-11-26).
MAX_DIFFERENT_PIXELS = 20


def _numpy_confusion(export, mini_root, num_classes=19):
    """The export's confusion matrix from scratch: images and labels read with OpenCV,
    normalised by hand, one plain ONNX Runtime session, np.bincount."""
    session = ort.InferenceSession(os.path.join(export, 'model.onnx'), providers=['CPUExecutionProvider'])
    conf = np.zeros((num_classes, num_classes), np.int64)
    for path in sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*_leftImg8bit.png'))):
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        x = ((image - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
        label_path = path.replace('leftImg8bit', 'gtFine').replace('gtFine.png', 'gtFine_labelTrainIds.png')
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED).astype(np.int64).ravel()
        pred = session.run(None, {'x': x})[0][0].astype(np.int64).ravel()
        keep = label != 255
        conf += np.bincount(label[keep] * num_classes + pred[keep], minlength=num_classes ** 2).reshape(conf.shape)
    return conf


def test_fp32_export_scores_like_dygraph(tmp_path, mini_root, mini_config, capsys):
    export, weights = shared()
    config = mini_config(tmp_path)
    reference = cli.val_main(['--config', config, '--model_path', weights])
    capsys.readouterr()
    total = reference['confusion'].sum()
    for engine in ENGINES:
        metrics = cli.val_main(['--config', config, '--model_dir', export, '--engine', engine, '--cpu_threads', '2'])
        printed = capsys.readouterr().out
        # each pixel predicted differently moves one count between two cells of the matrix
        moved = np.abs(metrics['confusion'] - reference['confusion']).sum() // 2
        assert metrics['confusion'].sum() == total and moved <= MAX_DIFFERENT_PIXELS, (engine, moved)
        assert abs(metrics['miou'] - reference['miou']) <= 1e-4, engine
        assert np.allclose(metrics['class_iou'], reference['class_iou'], atol=1e-3, equal_nan=True), engine
        assert f"exported model: {engine} fp32" in printed and '[EVAL] #Images: 10 mIoU:' in printed
        assert 'traffic light' in printed  # the per-class table, with the dataset's class names


def test_export_is_fed_its_own_preprocessing(tmp_path, mini_root, mini_config):
    """The config's val transforms are replaced by deploy.yaml's (the export was made for
    them): a config normalising differently still scores the export as deployed."""
    export = shared()[0]
    config = mini_config(tmp_path, val_dataset={'type': 'DDRCityscapes', 'dataset_root': mini_root, 'mode': 'val',
                                                'transforms': [{'type': 'Normalize', 'mean': [0.5] * 3,
                                                                'std': [0.5] * 3}]})
    with open(config) as f:
        assert yaml.safe_load(f)['val_dataset']['transforms'][0]['mean'] == [0.5] * 3
    metrics = cli.val_main(['--config', config, '--model_dir', export, '--engine', 'onnxruntime'])
    assert np.array_equal(metrics['confusion'], _numpy_confusion(export, mini_root))
