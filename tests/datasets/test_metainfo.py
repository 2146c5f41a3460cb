"""Dataset metadata: Cityscapes' comes from the Cityscapes team's own label table; datasets
without METAINFO get a usable generic one."""
import pytest

import paddleseg_ddr  # noqa: F401  (registers the datasets)
from paddleseg_ddr.datasets import DatasetMeta, dataset_meta


def test_cityscapes_metainfo_follows_the_official_label_table():
    meta = dataset_meta('DDRCityscapes')
    assert meta.num_classes == 19 and meta.ignore_index == 255
    # hand-copied from the Cityscapes label table: trainId 0 road (id 7, purple), 18 bicycle (id 33)
    assert meta.classes[0] == 'road' and meta.palette[0] == (128, 64, 128) and meta.label_ids[0] == 7
    assert meta.classes[18] == 'bicycle' and meta.palette[18] == (119, 11, 32) and meta.label_ids[18] == 33
    assert meta.to_deploy()['label_ids'][13] == 26  # car


def test_a_dataset_without_metainfo_gets_numbered_classes_and_distinct_colours():
    meta = dataset_meta('ADE20K')
    assert meta.num_classes == 150 and meta.classes[:2] == ('0', '1') and meta.label_ids is None
    assert len(set(meta.palette)) == 150


def test_inconsistent_metainfo_is_refused():
    with pytest.raises(ValueError, match='2 colours for 3 classes'):
        DatasetMeta(classes=('a', 'b', 'c'), palette=((0, 0, 0), (1, 1, 1)))
