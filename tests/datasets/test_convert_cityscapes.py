import glob
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from paddleseg_ddr.datasets import DDRCityscapes, convert_cityscapes
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
