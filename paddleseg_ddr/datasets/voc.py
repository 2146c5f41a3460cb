"""Pascal VOC 2012 (21 classes, 255 = object borders and void) read with the checks a user needs.

PaddleSeg's ``PascalVOC`` downloads the 2 GB release when ``dataset_root`` does not exist
(offline: a long failure far from the cause), opens its lists without checking them, and
its 'trainaug' reads a ``SegmentationClassAug``/``aug.txt`` pair that nothing here makes.
``DDRPascalVOC`` reads the release's own layout::

    VOCdevkit/VOC2012/JPEGImages/<name>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<name>.png        (palette PNGs: the index is the class)
    VOCdevkit/VOC2012/SegmentationClassAug/<name>.png     (made by tools/convert_voc_aug.py)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval,trainaug}.txt

and says which folder, list or file is missing and how to make it. Files are read by
:mod:`.reading`: a VOC label is a palette ('P') PNG whose pixel values are the class
indices, and Pillow hands those indices on (never the RGB colours of the palette).
"""
import os

import numpy as np
import paddle
from paddleseg.cvlibs import manager
from paddleseg.transforms import Compose
from paddleseg.transforms import functional as F

from ..errors import UserError
from .metainfo import DatasetMeta
from .reading import read_image, read_label

CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
           'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
           'tvmonitor')

VOC_URL = 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar'
SBD_URL = 'http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz'
PREPARE = (f"Download {VOC_URL} and untar it (it makes VOCdevkit/VOC2012/), then point dataset_root at the "
           "VOCdevkit folder; for the augmented set (mode: trainaug) also download SBD's benchmark.tgz and run "
           "`python tools/convert_voc_aug.py --voc_root <VOCdevkit> --sbd_root <benchmark_RELEASE>`. "
           "Or make the bundled miniature with `python tools/make_mini_voc.py`.")
CONVERT = ('python tools/convert_voc_aug.py --voc_root <VOCdevkit> --sbd_root <benchmark_RELEASE>')


def voc_colormap(n=256):
    """The VOC devkit's colour map (``VOClabelcolormap.m``): the bits of the index, read three at
    a time, fill the red, green and blue bytes from their most significant bit down."""
    colours = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


PALETTE = voc_colormap()  # 256 colours: index 255 (borders) is (224, 224, 192)

METAINFO = DatasetMeta(
    classes=CLASSES, palette=PALETTE[:len(CLASSES)], ignore_index=255, prepare=PREPARE,
    label_hint=('Pascal VOC labels hold the class indices 0-20 and 255 (object borders): use the palette PNGs of '
                'SegmentationClass as they come in the release (not colour renderings), and make '
                f'SegmentationClassAug with `{CONVERT}`.'))
CLASS_NAMES = METAINFO.classes

MODES = {  # mode: (list file, label folder)
    'train': ('train.txt', 'SegmentationClass'),
    'val': ('val.txt', 'SegmentationClass'),
    'trainval': ('trainval.txt', 'SegmentationClass'),
    'trainaug': ('trainaug.txt', 'SegmentationClassAug'),
}
IMAGE_FIX = (f"Replace it with the original from VOCtrainval_11-May-2012.tar (for the miniature, delete it and run "
             f"`python tools/make_mini_voc.py` again), or remove its name from the list.")


def find_voc2012(dataset_root):
    """The ``VOC2012`` folder of ``dataset_root``: the folder itself, ``<root>/VOC2012`` (root is
    VOCdevkit, PaddleSeg's convention) or ``<root>/VOCdevkit/VOC2012``. None if none holds JPEGImages."""
    root = os.path.abspath(dataset_root)
    for folder in (root, os.path.join(root, 'VOC2012'), os.path.join(root, 'VOCdevkit', 'VOC2012')):
        if os.path.isdir(os.path.join(folder, 'JPEGImages')):
            return folder
    return None


def read_name_list(path, what='list'):
    """The image names of a VOC list file (one name per line, e.g. ``2007_000032``), in order."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{what} '{path}' is not a text file of image names (not UTF-8).") from None
    except OSError as e:
        raise UserError(f"cannot read {what} '{path}': {e.strerror or e}.") from None
    names = []
    for number, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if len(name.split()) != 1 or '/' in name or '\\' in name:
            raise UserError(f"{what} '{path}', line {number}: expected one image name per line (e.g. 2007_000032, "
                            f"no folder, no extension), got '{name[:120]}'.")
        names.append(name)
    return names


def _files_by_stem(folder, extension):
    return {n[:-len(extension)] for n in os.listdir(folder) if n.endswith(extension)} if os.path.isdir(folder) \
        else set()


def _missing_message(count, total, list_path, kind, example, fix):
    return (f"{count} of the {total} names in '{list_path}' have no {kind}, e.g. '{example}'. {fix}")


@manager.DATASETS.add_component
class DDRPascalVOC(paddle.io.Dataset):
    """Pascal VOC 2012 segmentation (21 classes, ignore 255) from the release's layout.

    Args:
        transforms (list): PaddleSeg transforms.
        dataset_root (str): The ``VOCdevkit`` folder (or its ``VOC2012`` folder, or a folder holding
            ``VOCdevkit``).
        mode (str, optional): 'train' (1,464 images with VOC's labels), 'trainaug' (10,582 with
            ``SegmentationClassAug``, made by ``tools/convert_voc_aug.py``), 'trainval' or 'val'
            (1,449). Default: 'train'.
        edge (bool, optional): Also return edge maps (PaddleSeg option). Default: False.
    """
    METAINFO = METAINFO
    CLASS_NAMES = METAINFO.classes
    NUM_CLASSES = METAINFO.num_classes
    IGNORE_INDEX = METAINFO.ignore_index
    IMG_CHANNELS = 3

    def __init__(self, transforms, dataset_root, mode='train', edge=False):
        mode = str(mode).lower()
        if mode not in MODES:
            raise UserError(f"DDRPascalVOC: mode must be one of {', '.join(repr(m) for m in MODES)}, got '{mode}'.")
        if transforms is None:
            raise UserError('DDRPascalVOC: transforms are required (at least a Normalize).')
        self.transforms = Compose(transforms)
        self.mode, self.edge = mode, edge
        self.num_classes, self.ignore_index = self.NUM_CLASSES, self.IGNORE_INDEX
        if not dataset_root or not os.path.isdir(dataset_root):
            raise UserError(f"Pascal VOC 2012 not found: the folder '{dataset_root}' does not exist. {PREPARE}")
        voc = find_voc2012(dataset_root)
        if voc is None:
            raise UserError(
                f"Pascal VOC 2012 not found under '{dataset_root}': expected 'JPEGImages/' in it, in 'VOC2012/' or in "
                f"'VOCdevkit/VOC2012/'. {PREPARE}")
        self.dataset_root = voc
        list_name, label_dir = MODES[mode]
        sets = os.path.join(voc, 'ImageSets', 'Segmentation')
        list_path = os.path.join(sets, list_name)
        label_root = os.path.join(voc, label_dir)
        if mode == 'trainaug' and not os.path.isfile(list_path):
            raise UserError(
                f"mode 'trainaug' needs the augmented set, which is not prepared in '{voc}': "
                f"'{list_path}' does not exist{'' if os.path.isdir(label_root) else ' (nor ' + label_root + '/)'}. "
                f"Download SBD ({SBD_URL}), untar it, and run `python tools/convert_voc_aug.py --voc_root "
                f"{os.path.dirname(voc)} --sbd_root <folder>/benchmark_RELEASE` (it writes SegmentationClassAug/ and "
                "trainaug.txt); or train on VOC's own 1,464 images with train_dataset.mode: train.")
        if not os.path.isfile(list_path):
            raise UserError(f"Pascal VOC 2012 split list '{list_path}' not found (mode '{mode}'): it comes with "
                            f"VOCtrainval_11-May-2012.tar in ImageSets/Segmentation/. {PREPARE}")
        if not os.path.isdir(label_root):
            fix = (f'Make it with `{CONVERT}`.' if mode == 'trainaug' else
                   'It comes with VOCtrainval_11-May-2012.tar; untar the release again.')
            raise UserError(f"the label folder '{label_root}' does not exist (mode '{mode}'). {fix}")
        names = read_name_list(list_path, 'split list')
        if not names:
            raise UserError(f"the split list '{list_path}' names no image. {PREPARE}")
        image_dir = os.path.join(voc, 'JPEGImages')
        images, labels = _files_by_stem(image_dir, '.jpg'), _files_by_stem(label_root, '.png')
        no_image = [n for n in names if n not in images]
        if no_image:
            raise UserError(_missing_message(len(no_image), len(names), list_path, 'image',
                                             os.path.join(image_dir, no_image[0] + '.jpg'),
                                             'Restore JPEGImages/ from VOCtrainval_11-May-2012.tar, or use the list '
                                             'that came with these images.'))
        no_label = [n for n in names if n not in labels]
        if no_label:
            fix = (f'Make the augmented labels again with `{CONVERT} --overwrite`.' if mode == 'trainaug' else
                   'Restore SegmentationClass/ from VOCtrainval_11-May-2012.tar.')
            raise UserError(_missing_message(len(no_label), len(names), list_path, 'label',
                                             os.path.join(label_root, no_label[0] + '.png'), fix))
        self.file_list = [[os.path.join(image_dir, n + '.jpg'), os.path.join(label_root, n + '.png')]
                          for n in names]
        self.label_fix = (f'Make it again with `{CONVERT} --overwrite`.' if mode == 'trainaug' else
                          'Restore it from VOCtrainval_11-May-2012.tar (for the miniature, run '
                          '`python tools/make_mini_voc.py` again).')

    def __len__(self):
        return len(self.file_list)

    def __getitem__(self, idx):
        """PaddleSeg's ``Dataset.__getitem__`` with the files read by :mod:`.reading`."""
        image_path, label_path = self.file_list[idx]
        compose = self.transforms
        image = read_image(image_path, compose.read_flag, IMAGE_FIX)
        label = read_label(label_path, self.num_classes, self.ignore_index, self.label_fix,
                           self.METAINFO.label_hint)
        if label.shape != image.shape[:2]:
            raise UserError(
                f"label file '{label_path}' is {label.shape[1]}x{label.shape[0]} pixels but its image '{image_path}' "
                f"is {image.shape[1]}x{image.shape[0]}: a label must have its image's size. {self.label_fix}")
        data = {'img': image, 'label': label, 'trans_info': [], 'gt_fields': []}
        if self.mode == 'val':
            data = compose(data)
            data['label'] = data['label'][np.newaxis, :, :]
        else:
            data['gt_fields'].append('label')
            data = compose(data)
            if self.edge:
                data['edge'] = F.mask_to_binary_edge(data['label'], radius=2, num_classes=self.num_classes)
        return data
