"""What generic code needs to know of a dataset, declared by the dataset itself (as
mmsegmentation's ``METAINFO``): class names, colours, ignore index, the label ids of the
official submission format, and how to prepare the data.

A dataset class carries a :class:`DatasetMeta` as its ``METAINFO`` attribute. The engine
reads it for the per-class table and the label check, ``export.py`` copies it into
``deploy.yaml``, and prediction colours and writes label maps with it, so a new dataset is
served by adding its own file. PaddleSeg's datasets, which have no ``METAINFO``, get a
generic one from their ``NUM_CLASSES`` and ``IGNORE_INDEX``.
"""
from dataclasses import dataclass
from typing import Optional

from paddleseg.cvlibs import manager


@dataclass(frozen=True)
class DatasetMeta:
    """Attributes:
        classes: Class names, in training-index order.
        palette: One (R, G, B) per class, for pseudo-colour predictions.
        ignore_index: Label value excluded from training and scoring.
        label_ids: Per training index, the label id of the dataset's official format (e.g.
            Cityscapes ids for submission files), or None when training indices are final.
        prepare: How to get and prepare the data (shown when it is missing).
        label_hint: What to do when label files hold values outside the classes.
    """
    classes: tuple
    palette: tuple
    ignore_index: int = 255
    label_ids: Optional[tuple] = None
    prepare: str = ''
    label_hint: str = ''

    def __post_init__(self):
        if len(self.palette) != len(self.classes):
            raise ValueError(f'{len(self.palette)} colours for {len(self.classes)} classes')
        if self.label_ids is not None and len(self.label_ids) != len(self.classes):
            raise ValueError(f'{len(self.label_ids)} label ids for {len(self.classes)} classes')

    @property
    def num_classes(self):
        return len(self.classes)

    def to_deploy(self):
        """The entries ``export.py`` writes into deploy.yaml (plain lists, YAML-safe)."""
        out = {'class_names': list(self.classes), 'palette': [list(c) for c in self.palette]}
        if self.label_ids is not None:
            out['label_ids'] = list(self.label_ids)
        return out


def generic_palette(num_classes):
    """Distinct colours for a dataset without its own palette (PaddleSeg's colour map)."""
    from paddleseg.utils.visualize import get_color_map_list
    flat = get_color_map_list(num_classes)
    return tuple(tuple(flat[3 * i:3 * i + 3]) for i in range(num_classes))


def dataset_meta(dataset, num_classes=None):
    """The :class:`DatasetMeta` of a dataset instance, class or registered type name.

    Falls back to numbered classes and a generic palette for datasets without ``METAINFO``
    (``num_classes`` from the argument or the dataset's ``NUM_CLASSES``/``num_classes``).
    """
    if isinstance(dataset, str):
        dataset = manager.DATASETS[dataset]
    meta = getattr(dataset, 'METAINFO', None)
    if isinstance(meta, DatasetMeta):
        return meta
    n = num_classes or getattr(dataset, 'num_classes', None) or getattr(dataset, 'NUM_CLASSES', None)
    if not n:
        raise ValueError(f'{dataset!r} declares neither METAINFO nor its number of classes')
    return DatasetMeta(classes=tuple(str(i) for i in range(n)), palette=generic_palette(n),
                       ignore_index=getattr(dataset, 'ignore_index', getattr(dataset, 'IGNORE_INDEX', 255)))
