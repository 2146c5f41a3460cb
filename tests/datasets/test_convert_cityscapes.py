import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from paddleseg_ddr.datasets import DDRCityscapes, convert_cityscapes
from paddleseg_ddr.datasets.cityscapes_labels import check_polygons
from paddleseg_ddr.errors import UserError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def test_converts_polygons_like_real_cityscapes_and_skips_up_to_date(tmp_path, mini_root):
    root = str(tmp_path / 'cs')
    shutil.copytree(mini_root, root)
    for f in glob.glob(os.path.join(root, 'gtFine', '*', '*', '*_labelTrainIds.png')):
        os.remove(f)
    expected = {f: None for f in glob.glob(os.path.join(mini_root, 'gtFine', '*', '*', '*_labelTrainIds.png'))}
    assert convert_cityscapes(root, num_workers=2) == len(expected) == 50
    for f in expected:
        ours = cv2.imread(f.replace(mini_root, root), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(ours, cv2.imread(f, cv2.IMREAD_UNCHANGED))
    assert convert_cityscapes(root) == 0                 # all up to date
    assert convert_cityscapes(root, splits=['val'], overwrite=True) == 10
    assert not glob.glob(os.path.join(root, 'gtFine', '*', '*', '*.tmp.png'))


def test_dataset_reads_the_converted_layout(mini_root):
    ds = DDRCityscapes([], mini_root, mode='val')
    assert len(ds) == 10
    for image, label in ds.file_list:
        assert os.path.basename(image).replace('_leftImg8bit.png', '') == \
            os.path.basename(label).replace('_gtFine_labelTrainIds.png', '')


def test_errors_name_the_path_and_the_layout(tmp_path):
    with pytest.raises(UserError, match='gtFine_trainvaltest.zip'):
        convert_cityscapes(str(tmp_path / 'missing'))
    os.makedirs(tmp_path / 'empty' / 'gtFine' / 'train' / 'ulm')
    with pytest.raises(UserError, match=r'no \*_gtFine_polygons.json .*official layout'):
        convert_cityscapes(str(tmp_path / 'empty'))


def test_cli_exits_2_with_the_message(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/convert_cityscapes.py', '--dataset_root', str(tmp_path / 'x')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'gtFine' in proc.stderr and 'Traceback' not in proc.stderr


def _polygons(tmp_path, annotation, name='ulm_000000_000019'):
    folder = tmp_path / 'cs' / 'gtFine' / 'train' / 'ulm'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}_gtFine_polygons.json'
    path.write_text(annotation if isinstance(annotation, str) else json.dumps(annotation))
    return str(path)


GOOD = {'imgHeight': 6, 'imgWidth': 10, 'objects': [
    {'label': 'road', 'polygon': [[0, 3], [9, 3], [9, 5], [0, 5]]},
    {'label': 'cargroup', 'polygon': [[0, 0], [4, 0], [4, 2]]},                 # official: '<label>group'
    {'label': 'no such thing', 'polygon': [], 'deleted': 1},                     # skipped by cityscapesscripts
    {'label': 'license plate', 'polygon': [[0, 0]]},                             # id < 0: not drawn
]}


def test_official_polygon_files_are_accepted_and_rendered(tmp_path, mini_root):
    for path in glob.glob(os.path.join(mini_root, 'gtFine', '*', '*', '*_gtFine_polygons.json'))[:5]:
        check_polygons(path)
    path = _polygons(tmp_path, GOOD)
    assert convert_cityscapes(str(tmp_path / 'cs')) == 1
    label = cv2.imread(path.replace('_polygons.json', '_labelTrainIds.png'), cv2.IMREAD_UNCHANGED)
    assert label[4, 5] == 0 and label[0, 3] == 13 and label[5, 0] == 0  # road, car


POLYGON = 'the "polygon" of object'


@pytest.mark.parametrize('change, message', [
    (lambda a: a.update(imgHeight=True), '"imgHeight" is true, not a whole number of pixels'),
    (lambda a: a.update(imgWidth=10 ** 6), '"imgWidth" is 1000000, not a whole number of pixels in [1, 32768]'),
    (lambda a: a.update(imgWidth=0), '"imgWidth" is 0'),
    (lambda a: a.pop('objects'), '"objects" is missing'),
    (lambda a: a.update(objects={}), '"objects" is a dict, not a list'),
    (lambda a: a['objects'].append('car'), 'object 4 is a str, not an object'),
    (lambda a: a['objects'][0].pop('polygon'), 'object 0 has no "polygon"'),
    (lambda a: a['objects'][0]['polygon'].append([1, float('nan')]), f'{POLYGON} 0 is not a list of [x, y] number'),
    (lambda a: a['objects'][0]['polygon'].append([1, True]), f'{POLYGON} 0 is not a list of [x, y] number'),
    (lambda a: a['objects'][1].update(label=7), 'the "label" of object 1 is 7, not a name'),
    (lambda a: a['objects'][1].update(label='carr'),
     "object 1 has the label 'carr', which is not a Cityscapes label name (did you mean 'car'?)"),
    (lambda a: a['objects'][1].update(polygon=[[1, 1]]), f'{POLYGON} 1 has 1 point(s); it needs at least 2'),
])
def test_malformed_polygon_files_are_refused_naming_the_file(tmp_path, change, message):
    annotation = json.loads(json.dumps(GOOD))
    change(annotation)
    path = _polygons(tmp_path, json.dumps(annotation))
    with pytest.raises(UserError) as e:
        convert_cityscapes(str(tmp_path / 'cs'))
    assert f"malformed polygon file '{path}': {message}" in str(e.value)
    assert 'gtFine_trainvaltest.zip' in str(e.value)
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # nothing written


def test_a_bad_file_among_workers_is_named(tmp_path):
    for i in range(4):
        _polygons(tmp_path, GOOD, f'ulm_{i:06d}_000019')
    bad = _polygons(tmp_path, '{"imgHeight": 6, "imgWid', 'ulm_000002_000019')
    with pytest.raises(UserError, match=rf"malformed polygon file '{bad}': not valid JSON"):
        convert_cityscapes(str(tmp_path / 'cs'), num_workers=2)
    assert not os.path.exists(bad.replace('_polygons.json', '_labelTrainIds.png'))
    assert not glob.glob(os.path.join(os.path.dirname(bad), '*.tmp*'))
