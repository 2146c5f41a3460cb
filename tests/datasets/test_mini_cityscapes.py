import filecmp
import glob
import json
import os

import cv2
import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label, name2label

from paddleseg_ddr.datasets import generate_mini_cityscapes
from paddleseg_ddr.datasets.mini_cityscapes import SPLITS

GT_SUFFIXES = ('_gtFine_polygons.json', '_gtFine_labelIds.png', '_gtFine_color.png',
               '_gtFine_instanceIds.png', '_gtFine_labelTrainIds.png')


def stems(root, split):
    files = sorted(glob.glob(os.path.join(root, 'leftImg8bit', split, '*', '*_leftImg8bit.png')))
    return [f[len(os.path.join(root, 'leftImg8bit', split)) + 1:-len('_leftImg8bit.png')] for f in files]


def test_official_layout_and_file_names(mini_root):
    for split, count in (('train', 40), ('val', 10)):
        names = stems(mini_root, split)
        assert len(names) == count
        for name in names:
            city, base = name.split('/')
            assert city in SPLITS[split]
            c, seq, frame = base.split('_')
            assert c == city and len(seq) == 6 and len(frame) == 6 and seq.isdigit() and frame.isdigit()
            for suffix in GT_SUFFIXES:
                assert os.path.isfile(os.path.join(mini_root, 'gtFine', split, name + suffix)), name + suffix
            image = cv2.imread(os.path.join(mini_root, 'leftImg8bit', split, name + '_leftImg8bit.png'))
            assert image.shape == (256, 512, 3)


def test_polygons_are_official_json(mini_root):
    path = glob.glob(os.path.join(mini_root, 'gtFine', 'train', '*', '*_gtFine_polygons.json'))[0]
    with open(path) as f:
        raw = json.load(f)
    assert set(raw) == {'imgHeight', 'imgWidth', 'objects'} and (raw['imgHeight'], raw['imgWidth']) == (256, 512)
    annotation = Annotation()
    annotation.fromJsonFile(path)
    assert len(annotation.objects) == len(raw['objects']) > 5
    for obj in raw['objects']:
        assert obj['label'] in name2label
        assert all(isinstance(v, int) and 0 <= x < 512 and 0 <= y < 256
                   for x, y in obj['polygon'] for v in (x, y))


def test_train_ids_are_the_official_mapping_of_label_ids(mini_root):
    lut = np.full(256, 255, np.uint8)
    for i, label in id2label.items():
        if 0 <= i < 256:
            lut[i] = 255 if label.trainId in (-1, 255) else label.trainId
    seen = set()
    for path in glob.glob(os.path.join(mini_root, 'gtFine', '*', '*', '*_gtFine_labelIds.png')):
        ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        train_ids = cv2.imread(path.replace('_labelIds', '_labelTrainIds'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(lut[ids], train_ids)
        values = set(np.unique(train_ids).tolist())
        assert values <= set(range(19)) | {255}
        assert {0, 2, 10} <= values  # road, building and sky in every image
        seen |= values
    assert len(seen - {255}) >= 17  # all classes but the rarest appear somewhere


def test_image_is_painted_from_the_labels(mini_root):
    name = stems(mini_root, 'train')[0]
    image = cv2.imread(os.path.join(mini_root, 'leftImg8bit', 'train', name + '_leftImg8bit.png')).astype(float)
    label = cv2.imread(os.path.join(mini_root, 'gtFine', 'train', name + '_gtFine_labelTrainIds.png'), 0)
    eroded = {k: cv2.erode((label == k).astype(np.uint8), np.ones((5, 5))) > 0 for k in (0, 8, 10)}
    mean = {k: image[m].mean(axis=0) for k, m in eroded.items() if m.sum() > 50}
    road = mean[0]
    assert abs(road[0] - road[2]) < 25          # asphalt is grey
    assert np.abs(mean[10] - road).max() > 40   # sky differs clearly from road
    if 8 in mean:
        assert mean[8][1] > mean[8][0] and mean[8][1] > mean[8][2]  # vegetation is green (BGR)


def test_deterministic_for_a_seed(tmp_path):
    a = generate_mini_cityscapes(str(tmp_path / 'a'), num_train=3, num_val=1, width=128, height=64, seed=5)
    b = generate_mini_cityscapes(str(tmp_path / 'b'), num_train=3, num_val=1, width=128, height=64, seed=5)
    c = generate_mini_cityscapes(str(tmp_path / 'c'), num_train=3, num_val=1, width=128, height=64, seed=6)
    files = sorted(os.path.relpath(f, a['root']) for f in glob.glob(os.path.join(a['root'], '*', '*', '*', '*')))
    assert len(files) == 4 * 6
    for f in files:
        assert filecmp.cmp(os.path.join(a['root'], f), os.path.join(b['root'], f), shallow=False), f
    assert not filecmp.cmp(os.path.join(a['root'], files[-1]), os.path.join(c['root'], files[-1]), shallow=False)


def test_generation_is_idempotent(tmp_path):
    root = str(tmp_path / 'm')
    generate_mini_cityscapes(root, num_train=2, num_val=1, width=128, height=64)
    image = glob.glob(os.path.join(root, 'leftImg8bit', 'train', '*', '*.png'))[0]
    before = os.path.getmtime(image)
    generate_mini_cityscapes(root, num_train=2, num_val=1, width=128, height=64)
    assert os.path.getmtime(image) == before
