"""predict.py's outputs are written atomically: a failure never leaves a half-written PNG."""
import os

import cv2
import numpy as np
import pytest

from paddleseg_ddr.deploy import predict_files


class Constant:
    def predict_batch(self, images):
        return [np.full(bgr.shape[:2], 7, np.uint8) for bgr in images]


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_a_failing_write_leaves_previous_results_whole(tmp_path, monkeypatch):
    images = tmp_path / 'images'
    images.mkdir()
    cv2.imwrite(str(images / 'a.png'), np.full((16, 24, 3), 90, np.uint8))
    out = tmp_path / 'out'
    (out / 'label').mkdir(parents=True)
    (out / 'label' / 'notes.txt').write_text('mine')
    assert predict_files(Constant(), str(images), str(out)) == (1, [])
    expected = ['added_prediction/a.png', 'label/a.png', 'label/notes.txt', 'pseudo_color_prediction/a.png']
    assert all_files(out) == expected
    before = {f: open(out / f, 'rb').read() for f in expected}
    real_encode, calls = cv2.imencode, []

    def failing_encode(ext, image, *args):
        calls.append(ext)
        if len(calls) == 2:
            raise cv2.error('out of memory while encoding')
        return real_encode(ext, image, *args)
    monkeypatch.setattr(cv2, 'imencode', failing_encode)
    with pytest.raises(cv2.error):
        predict_files(Constant(), str(images), str(out))
    assert all_files(out) == expected  # no temporary file, nothing half-written
    assert {f: open(out / f, 'rb').read() for f in expected} == before
