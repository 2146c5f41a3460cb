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
