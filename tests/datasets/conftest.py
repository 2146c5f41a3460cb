"""Session fixtures of the dataset tests (shared: add, do not change others' fixtures)."""
import pytest


@pytest.fixture(scope='session')
def mini_voc(tmp_path_factory):
    """The miniature Pascal VOC 2012 + SBD at its default size, generated once, with its
    augmented set made by the converter; returns the generator's summary plus the
    converter's counts under 'counts'."""
    from paddleseg_ddr.datasets.mini_voc import generate_mini_voc
    from paddleseg_ddr.datasets.voc_aug import convert_voc_aug
    info = generate_mini_voc(str(tmp_path_factory.mktemp('data') / 'mini_voc'))
    info['counts'] = convert_voc_aug(info['voc_root'], info['sbd_root'])
    return info


@pytest.fixture(scope='session')
def mini_camvid(tmp_path_factory):
    """The mini CamVid release (default size: 24 / 8 / 8 images of 240x180) generated once and
    converted by the CamVid converter; returns the generator's summary plus the converter's
    report under 'report'."""
    from paddleseg_ddr.datasets.camvid_labels import convert_camvid
    from paddleseg_ddr.datasets.mini_camvid import generate_mini_camvid
    info = generate_mini_camvid(str(tmp_path_factory.mktemp('data') / 'mini_camvid'))
    info['report'] = convert_camvid(info['root'], log=None)
    return info
