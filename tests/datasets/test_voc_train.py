"""The whole chain on the miniature VOC (trainaug made by the converter): a short training
learns, val.py prints VOC's class names, export.py writes VOC's classes and palette into
deploy.yaml and the predictions are coloured with the VOC devkit's colours (copied by hand)."""
import glob
import os

import cv2
import numpy as np
import pytest
import yaml

from paddleseg_ddr.cli import export_main, predict_main, train_main, val_main
from paddleseg_ddr.datasets.voc import CLASSES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
QUICKSTART = os.path.join(ROOT, 'configs', 'quickstart', 'rdrnet_s_simple_mini_voc.yml')
ITERS = 60
# measured 0.3053 (DDRNet-23-slim, 60 iterations of 4 crops of 128x128, seed 0, 2 CPU cores); predicting
# background everywhere scores ~0.08 on the 8 val images (background IoU ~0.65 over 8 classes present)
MIN_MIOU = 0.18
# VOClabelcolormap.m, by hand, RGB
DEVKIT_RGB = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
              (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
              (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128)]


@pytest.fixture(scope='module')
def trained(mini_voc, tmp_path_factory):
    """DDRNet-23-slim trained ITERS iterations on trainaug (the quickstart VOC recipe otherwise)."""
    folder = tmp_path_factory.mktemp('voc_train')
    config = folder / 'config.yml'
    config.write_text(yaml.safe_dump({
        '_base_': QUICKSTART, 'iters': ITERS,
        'model': {'type': 'DDRNet23Slim', 'num_classes': 21, 'aux_head': True, 'pretrained': None},
        'train_dataset': {'dataset_root': mini_voc['voc_root'], 'mode': 'trainaug'},
        'val_dataset': {'dataset_root': mini_voc['voc_root']}}))
    out = train_main(['--config', str(config), '--log_iters', '10', '--save_interval', str(ITERS),
                      '--save_dir', str(folder / 'o'), '--num_workers', '0', '--seed', '0'])
    return {'config': str(config), 'folder': folder, 'history': out['history'],
            'weights': str(folder / 'o' / f'iter_{ITERS}' / 'model.pdparams')}


@pytest.mark.slow
def test_short_training_learns_the_mini_voc(trained, capsys):
    losses = [h['loss'] for h in trained['history']]
    assert len(losses) == ITERS // 10 and np.mean(losses[-3:]) < 0.6 * np.mean(losses[:2])
    capsys.readouterr()
    metrics = val_main(['--config', trained['config'], '--model_path', trained['weights']])
    printed = capsys.readouterr()
    with capsys.disabled():
        print(f"\n[measured] mini VOC val mIoU, DDRNet-23-slim after {ITERS} iterations: {metrics['miou']:.4f} "
              f"(losses {losses[0]:.3f} -> {losses[-1]:.3f})")
    assert metrics['images'] == 8 and metrics['miou'] > MIN_MIOU
    table = printed.out + printed.err
    for name in ('background', 'aeroplane', 'pottedplant', 'tvmonitor', 'diningtable'):
        assert name in table, name


@pytest.mark.slow
def test_export_and_predict_use_voc_classes_and_colours(trained, mini_voc):
    save = trained['folder'] / 'inference'
    export_main(['--config', trained['config'], '--model_path', trained['weights'], '--save_dir', str(save)])
    deploy = yaml.safe_load((save / 'deploy.yaml').read_text())['Deploy']
    assert deploy['class_names'] == list(CLASSES)
    assert deploy['palette'] == [list(c) for c in DEVKIT_RGB]
    assert 'label_ids' not in deploy
    images = sorted(glob.glob(os.path.join(mini_voc['voc_root'], 'VOC2012', 'JPEGImages', '*.jpg')))[:3]
    listing = trained['folder'] / 'images.txt'
    listing.write_text(''.join(p + '\n' for p in images))
    predict_main(['--config', str(save / 'deploy.yaml'), '--image_path', str(listing),
                  '--save_dir', str(trained['folder'] / 'pred')])
    palette_bgr = np.array(DEVKIT_RGB, np.uint8)[:, ::-1]
    seen = set()
    for path in images:
        name = os.path.splitext(os.path.basename(path))[0] + '.png'
        label = cv2.imread(str(trained['folder'] / 'pred' / 'label' / name), cv2.IMREAD_UNCHANGED)
        colour = cv2.imread(str(trained['folder'] / 'pred' / 'pseudo_color_prediction' / name))
        assert label.shape == cv2.imread(path).shape[:2]
        np.testing.assert_array_equal(colour, palette_bgr[label])
        seen |= set(np.unique(label).tolist())
    assert len(seen) >= 3 and seen <= set(range(21))
