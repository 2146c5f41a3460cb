"""Cityscapes through PaddleSeg's reader, with the checks a user needs.

PaddleSeg's ``Cityscapes`` pairs images and labels by zipping two sorted globs: a missing
label file silently shifts every pair after it, and a tree without
``*_gtFine_labelTrainIds.png`` yields an empty dataset. ``DDRCityscapes`` pairs by file
stem and says what is missing and how to make it. Its ``__getitem__`` reads the files itself
(:mod:`.reading`): an empty, truncated or undecodable image or label, a label that is not a
single-channel integer map, of another size than its image, or with values outside the
classes is refused with a message naming the file; 16-bit labels keep their values.
"""
import os

import numpy as np
from paddleseg.cvlibs import manager
from paddleseg.datasets import Cityscapes
from paddleseg.transforms import functional as F

from ..errors import UserError
from .metainfo import DatasetMeta
from .reading import read_image, read_label

PREPARE = ("Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from cityscapes-dataset.com, "
           "unzip both into dataset_root, then run `python tools/convert_cityscapes.py --dataset_root <root>`; "
           "or make the bundled mini dataset with `python tools/make_mini_cityscapes.py`.")


def _metainfo():
    """The 19 training classes with their official colours and ids, from the Cityscapes
    team's own label table (cityscapesscripts)."""
    from cityscapesscripts.helpers.labels import trainId2label
    labels = [trainId2label[i] for i in range(19)]
    return DatasetMeta(
        classes=tuple(label.name for label in labels), palette=tuple(tuple(label.color) for label in labels),
        ignore_index=255, label_ids=tuple(label.id for label in labels), prepare=PREPARE,
        label_hint='Cityscapes training needs *_gtFine_labelTrainIds.png, not the raw labelIds: make them '
                   'with `python tools/convert_cityscapes.py --dataset_root <root>`.')


METAINFO = _metainfo()
CLASS_NAMES = METAINFO.classes

IMAGE_SUFFIX = '_leftImg8bit.png'
IMAGE_FIX = ("Replace it with the original from leftImg8bit_trainvaltest.zip (for the mini dataset, delete "
             "dataset_root and run `python tools/make_mini_cityscapes.py` again), or remove it with its label.")
LABEL_FIX = ("Make it again from its *_gtFine_polygons.json with `python tools/convert_cityscapes.py "
             "--dataset_root <root> --overwrite`, or remove it with its image.")
LABEL_SUFFIX = '_gtFine_labelTrainIds.png'


def _list_split(folder, suffix):
    """{stem: path} for files ``folder/<city>/<stem><suffix>``."""
    files = {}
    if os.path.isdir(folder):
        for city in sorted(os.listdir(folder)):
            city_dir = os.path.join(folder, city)
            if not os.path.isdir(city_dir):
                continue
            for name in os.listdir(city_dir):
                if name.endswith(suffix):
                    files[name[:-len(suffix)]] = os.path.join(city_dir, name)
    return files


@manager.DATASETS.add_component
class DDRCityscapes(Cityscapes):
    """Cityscapes (19 classes, ignore 255) read from the official layout.

    Args:
        transforms (list): PaddleSeg transforms.
        dataset_root (str): Folder holding ``leftImg8bit/`` and ``gtFine/``.
        mode (str, optional): 'train', 'val' or 'test'. Default: 'train'.
        edge (bool, optional): Also return edge maps (PaddleSeg option). Default: False.
    """
    METAINFO = METAINFO
    CLASS_NAMES = METAINFO.classes

    def __init__(self, transforms, dataset_root, mode='train', edge=False):
        mode = str(mode).lower()
        if mode not in ('train', 'val', 'test'):
            raise UserError(f"DDRCityscapes: mode must be 'train', 'val' or 'test', got '{mode}'.")
        root = os.path.abspath(dataset_root) if dataset_root else ''
        for sub in ('leftImg8bit', 'gtFine'):
            if not os.path.isdir(os.path.join(root, sub, mode)):
                raise UserError(
                    f"Cityscapes not found: expected the folder '{os.path.join(root, sub, mode)}' "
                    f"(dataset_root '{dataset_root}'). {PREPARE}")
        super().__init__(transforms, root, mode=mode, edge=edge)

        images = _list_split(os.path.join(root, 'leftImg8bit', mode), IMAGE_SUFFIX)
        labels = _list_split(os.path.join(root, 'gtFine', mode), LABEL_SUFFIX)
        if not images:
            raise UserError(f"No '*{IMAGE_SUFFIX}' images under '{os.path.join(root, 'leftImg8bit', mode)}/<city>/'.")
        if mode != 'test':
            if not labels:
                raise UserError(
                    f"No '*{LABEL_SUFFIX}' files under '{os.path.join(root, 'gtFine', mode)}/<city>/'. "
                    f"Make them from the official polygons with `python tools/convert_cityscapes.py "
                    f"--dataset_root {dataset_root}`.")
            unlabelled = sorted(set(images) - set(labels))
            if unlabelled:
                raise UserError(
                    f"{len(unlabelled)} {mode} image(s) have no '{LABEL_SUFFIX}', e.g. "
                    f"'{images[unlabelled[0]]}'. Run `python tools/convert_cityscapes.py "
                    f"--dataset_root {dataset_root}` (it converts every *_gtFine_polygons.json).")
        self.file_list = [[images[s], labels.get(s)] for s in sorted(images)]

    def __getitem__(self, idx):
        """PaddleSeg's ``Dataset.__getitem__`` with the files read by :mod:`.reading`."""
        image_path, label_path = self.file_list[idx]
        compose = self.transforms
        image = read_image(image_path, compose.read_flag, IMAGE_FIX)
        data = {'img': image, 'label': None, 'trans_info': [], 'gt_fields': []}
        if label_path is not None:
            label = read_label(label_path, self.num_classes, self.ignore_index,
                               LABEL_FIX.replace('<root>', self.dataset_root), self.METAINFO.label_hint)
            if label.shape != image.shape[:2]:
                raise UserError(
                    f"label file '{label_path}' is {label.shape[1]}x{label.shape[0]} pixels but its image "
                    f"'{image_path}' is {image.shape[1]}x{image.shape[0]}: a label must have its image's size. "
                    + LABEL_FIX.replace('<root>', self.dataset_root))
            data['label'] = label
        if self.mode == 'val':
            data = compose(data)
            data['label'] = data['label'][np.newaxis, :, :]
        else:
            if data['label'] is not None:
                data['gt_fields'].append('label')
            data = compose(data)
            if self.edge:
                data['edge'] = F.mask_to_binary_edge(data['label'], radius=2, num_classes=self.num_classes)
        return data
