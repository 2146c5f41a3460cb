import os

import pytest

from paddleseg_ddr.datasets import cityscapes_labels


def test_interrupted_conversion_leaves_no_partial_label(tmp_path, monkeypatch):
    import cityscapesscripts.preparation.json2labelImg as j2l
    json_path = tmp_path / 'x_000000_000000_gtFine_polygons.json'
    json_path.write_text('{"imgHeight": 2, "imgWidth": 2, "objects": []}')
    out = tmp_path / 'x_000000_000000_gtFine_labelTrainIds.png'
    out.write_bytes(b'previous label')

    def crashing(src, dst, encoding):
        assert dst.endswith('.png') and dst != str(out)  # the renderer picks the format from the name
        with open(dst, 'wb') as f:
            f.write(b'\x89PNG half')
        raise KeyboardInterrupt
    monkeypatch.setattr(j2l, 'json2labelImg', crashing)
    with pytest.raises(KeyboardInterrupt):
        cityscapes_labels._convert_one(str(json_path))
    assert sorted(os.listdir(tmp_path)) == sorted([json_path.name, out.name])
    assert out.read_bytes() == b'previous label'
