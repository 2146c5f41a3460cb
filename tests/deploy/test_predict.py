import glob
import os
import shutil

import cv2
import numpy as np
import paddle
import pytest

from paddleseg_ddr.cli import export_main, predict_main
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.models import DDRNet23Slim

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONFIG = os.path.join(ROOT, 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    paddle.seed(1)
    model = DDRNet23Slim(num_classes=19)
    model.train()
    with paddle.no_grad():
        for _ in range(3):
            model(paddle.randn([2, 3, 64, 64]) + 0.3)
    path = str(tmp_path_factory.mktemp('w') / 'model.pdparams')
    paddle.save(model.state_dict(), path)
    return path


@pytest.fixture
def images(tmp_path, mini_root):
    """A small input tree: two val images in sub-folders, one grayscale, one RGBA."""
    src = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[:2]
    root = tmp_path / 'images'
    for i, path in enumerate(src):
        os.makedirs(root / f'city{i}', exist_ok=True)
        shutil.copy(path, root / f'city{i}' / os.path.basename(path))
    bgr = cv2.imread(src[0])
    cv2.imwrite(str(root / 'gray.png'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / 'rgba.png'), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    return root


def labels(folder):
    return {os.path.relpath(f, folder): cv2.imread(f, cv2.IMREAD_UNCHANGED)
            for f in sorted(glob.glob(os.path.join(folder, 'label', '**', '*.png'), recursive=True))}


def test_checkpoint_and_export_give_the_same_label_maps(tmp_path, images, weights):
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    n = predict_main(['--config', CONFIG, '--model_path', weights, '--image_path', str(images),
                      '--save_dir', str(tmp_path / 'dy')])
    # the documented flow: export.py, then predict.py with the export's deploy.yaml
    predict_main(['--config', str(tmp_path / 'inference' / 'deploy.yaml'), '--image_path', str(images),
                  '--save_dir', str(tmp_path / 'st')])
    dy, st = labels(tmp_path / 'dy'), labels(tmp_path / 'st')
    assert n == 4 and sorted(dy) == sorted(st) == sorted(
        ['label/city0/' + os.listdir(images / 'city0')[0], 'label/city1/' + os.listdir(images / 'city1')[0],
         'label/gray.png', 'label/rgba.png'])
    for k in dy:
        assert dy[k].shape == (256, 512) and (dy[k] == st[k]).mean() >= 0.999, k
    for sub in ('pseudo_color_prediction', 'added_prediction'):
        img = cv2.imread(str(tmp_path / 'st' / sub / 'gray.png'))
        assert img.shape == (256, 512, 3)


def test_unreadable_image_is_reported_and_skipped(tmp_path, images, weights):
    (images / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(UserError, match=r'1 image\(s\) could not be read.*4 predicted'):
        predict_main(['--config', CONFIG, '--model_path', weights, '--image_path', str(images),
                      '--save_dir', str(tmp_path / 'out')])
    assert len(labels(tmp_path / 'out')) == 4


def test_list_file_and_label_ids(tmp_path, images, weights):
    listing = tmp_path / 'images' / 'list.txt'
    listing.write_text('gray.png\nrgba.png\n')
    predict_main(['--config', CONFIG, '--model_path', weights, '--image_path', str(listing),
                  '--save_dir', str(tmp_path / 'ids'), '--save_label_ids'])
    out = labels(tmp_path / 'ids')
    assert sorted(out) == ['label/gray.png', 'label/rgba.png']
    from cityscapesscripts.helpers.labels import trainId2label
    valid_ids = {trainId2label[t].id for t in range(19)}
    assert set(np.unique(out['label/gray.png']).tolist()) <= valid_ids


def test_model_dir_problems_are_named(tmp_path, weights):
    with pytest.raises(UserError, match='has no deploy.yaml'):
        predict_main(['--model_dir', str(tmp_path), '--image_path', str(tmp_path)])
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inf')])
    os.remove(tmp_path / 'inf' / 'model.pdiparams')
    with pytest.raises(UserError, match='lacks model.pdiparams'):
        predict_main(['--model_dir', str(tmp_path / 'inf'), '--image_path', str(tmp_path)])
