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


def test_colours_and_ids_come_from_the_dataset_metadata(tmp_path, images, weights):
    """export.py records the config dataset's classes, palette and ids in deploy.yaml; both
    prediction routes colour with them (checked against cityscapesscripts' own table)."""
    import yaml
    from cityscapesscripts.helpers.labels import trainId2label
    export_main(['--config', CONFIG, '--model_path', weights, '--save_dir', str(tmp_path / 'inference')])
    deploy = yaml.safe_load((tmp_path / 'inference' / 'deploy.yaml').read_text())['Deploy']
    assert deploy['class_names'][11] == 'person' and deploy['palette'][11] == list(trainId2label[11].color)
    assert deploy['label_ids'][11] == trainId2label[11].id
    palette_bgr = np.array([trainId2label[t].color for t in range(19)], np.uint8)[:, ::-1]
    for route, args in (('st', ['--config', str(tmp_path / 'inference' / 'deploy.yaml')]),
                        ('dy', ['--config', CONFIG, '--model_path', weights])):
        predict_main([*args, '--image_path', str(images / 'gray.png'), '--save_dir', str(tmp_path / route)])
        label = cv2.imread(str(tmp_path / route / 'label' / 'gray.png'), cv2.IMREAD_UNCHANGED)
        colour = cv2.imread(str(tmp_path / route / 'pseudo_color_prediction' / 'gray.png'))
        assert len(np.unique(label)) > 1, route
        np.testing.assert_array_equal(colour, palette_bgr[label], err_msg=route)


def test_a_dataset_without_label_ids_gets_its_palette_and_refuses_save_label_ids(tmp_path, images):
    from paddleseg.cvlibs import manager

    from paddleseg_ddr.datasets import DatasetMeta, dataset_meta
    from paddleseg_ddr.deploy import PaddleInferencePredictor, export_inference_model, predict_files

    class ThreeClassesForTests:
        METAINFO = DatasetMeta(classes=('road', 'car', 'sky'), palette=((10, 20, 30), (40, 50, 60), (70, 80, 90)))
    if 'ThreeClassesForTests' not in manager.DATASETS.components_dict:
        manager.DATASETS.add_component(ThreeClassesForTests)
    paddle.seed(5)
    model = DDRNet23Slim(num_classes=3, aux_head=False)
    model.eval()
    out = export_inference_model(model, str(tmp_path / 'three'), [{'type': 'Normalize'}],
                                 meta=dataset_meta('ThreeClassesForTests'))
    predictor = PaddleInferencePredictor(out)
    assert predictor.meta.classes == ('road', 'car', 'sky')
    predict_files(predictor, str(images / 'rgba.png'), str(tmp_path / 'res'))
    label = cv2.imread(str(tmp_path / 'res' / 'label' / 'rgba.png'), cv2.IMREAD_UNCHANGED)
    colour = cv2.imread(str(tmp_path / 'res' / 'pseudo_color_prediction' / 'rgba.png'))
    bgr = np.array([[30, 20, 10], [60, 50, 40], [90, 80, 70]], np.uint8)
    np.testing.assert_array_equal(colour, bgr[label])
    with pytest.raises(UserError, match='declares no official label ids'):
        predict_files(predictor, str(images / 'rgba.png'), str(tmp_path / 'res2'), save_label_ids=True)
