"""The augmented Pascal VOC 2012 training set ("trainaug", 10,582 images on the real data):
SBD's class annotations (``benchmark_RELEASE/dataset/cls/<name>.mat``) written as VOC-style
palette PNGs into ``VOC2012/SegmentationClassAug/``, with the list
``ImageSets/Segmentation/trainaug.txt``.

The list is (SBD train ∪ SBD val ∪ VOC train) minus VOC val, as in DeepLab and
mmsegmentation. An image VOC annotates itself (VOC train) keeps VOC's label (finer, with its
255 borders), copied byte for byte; the others get SBD's, read from the ``.mat`` as data with
SciPy (``GTcls.Segmentation``: class indices 0-20). Every PNG is written atomically, the list
last (a list on disk means a complete set); nothing else in the folders is touched, and files
that exist are replaced only with ``overwrite``.
"""
import os
import shutil
import zlib

import numpy as np
from PIL import Image

from ..errors import UserError
from ..utils.fileio import atomic_path, atomic_write
from .reading import read_label
from .voc import CONVERT, PALETTE, SBD_URL, VOC_URL, find_voc2012, read_name_list

NUM_CLASSES = 21
IGNORE = 255
# The public releases' list sizes, and the size of the union they give.
OFFICIAL = {'voc_train': 1464, 'voc_val': 1449, 'sbd_train': 8498, 'sbd_val': 2857}
OFFICIAL_TRAINAUG = 10582
FLAT_PALETTE = [v for colour in PALETTE for v in colour]


def find_sbd_dataset(sbd_root):
    """SBD's ``dataset`` folder (holding ``cls/``, ``train.txt``, ``val.txt``) given it, its
    ``benchmark_RELEASE`` folder or the folder holding ``benchmark_RELEASE``. None if not found."""
    root = os.path.abspath(sbd_root)
    for folder in (root, os.path.join(root, 'dataset'), os.path.join(root, 'benchmark_RELEASE', 'dataset')):
        if os.path.isdir(os.path.join(folder, 'cls')):
            return folder
    return None


def read_sbd_segmentation(path):
    """The class map of an SBD ``cls/*.mat`` (``GTcls.Segmentation``), uint8, checked."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError
    fix = ("Replace it with the original from SBD's benchmark.tgz, or remove its name from SBD's train.txt/val.txt.")
    try:
        mat = loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError, EOFError, KeyError, IndexError, zlib.error) as e:
        raise UserError(f"SBD annotation '{path}' cannot be read as a MATLAB file ({type(e).__name__}: "
                        f"{str(e)[:200]}): it is corrupt or cut short. {fix}") from None
    except NotImplementedError:
        raise UserError(f"SBD annotation '{path}' is a MATLAB v7.3 (HDF5) file; SBD's are v5 files, which SciPy "
                        f"reads. {fix}") from None
    gt = mat.get('GTcls')
    if gt is None:
        found = sorted(k for k in mat if not k.startswith('__'))
        raise UserError(f"SBD annotation '{path}' has no 'GTcls' struct (it holds {found}): class annotations are "
                        f"SBD's dataset/cls/*.mat (dataset/inst/*.mat hold instances, 'GTinst'). {fix}")
    names = getattr(getattr(gt, 'dtype', None), 'names', None) or ()
    if 'Segmentation' not in names or gt.size != 1:
        raise UserError(f"SBD annotation '{path}': 'GTcls' is not a struct with a 'Segmentation' field "
                        f"(fields {list(names)}). {fix}")
    seg = np.asarray(gt['Segmentation'].flat[0])
    if seg.ndim != 2 or seg.size == 0 or not (np.issubdtype(seg.dtype, np.integer) or seg.dtype == bool):
        raise UserError(f"SBD annotation '{path}': GTcls.Segmentation is a {seg.dtype} array of shape "
                        f"{list(seg.shape)}, not a 2-D map of class indices. {fix}")
    bad = np.unique(seg[(seg < 0) | ((seg >= NUM_CLASSES) & (seg != IGNORE))])
    if bad.size:
        raise UserError(f"SBD annotation '{path}': GTcls.Segmentation holds values {bad[:10].tolist()} outside the "
                        f"classes 0-20 and {IGNORE}. {fix}")
    return seg.astype(np.uint8)


def write_palette_png(path, label):
    """``label`` (uint8 class indices) as a VOC palette PNG, atomically."""
    image = Image.fromarray(np.ascontiguousarray(label, np.uint8), mode='P')
    image.putpalette(FLAT_PALETTE)
    with atomic_path(path, suffix='.png') as tmp:
        image.save(tmp, format='PNG')
    return path


def _image_size(path):
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"image '{path}' cannot be opened ({e}): restore it from {VOC_URL}.") from None


def _convert_one(job):
    """Write one SegmentationClassAug PNG; returns its source ('voc' or 'sbd')."""
    name, source, src, image, dst = job
    if source == 'voc':
        label = read_label(src, NUM_CLASSES, IGNORE, f'Restore it from {VOC_URL}.')
    else:
        label = read_sbd_segmentation(src)
    width, height = _image_size(image)
    if label.shape != (height, width):
        raise UserError(f"the label of '{name}' ('{src}') is {label.shape[1]}x{label.shape[0]} pixels but its image "
                        f"'{image}' is {width}x{height}: they must be the same image's. Check that --voc_root and "
                        "--sbd_root are the releases' folders.")
    if source == 'voc':
        with atomic_path(dst, suffix='.png') as tmp:
            shutil.copyfile(src, tmp)
    else:
        write_palette_png(dst, label)
    return source


def _require(folder_or_file, what, fix, is_dir=False):
    if not (os.path.isdir if is_dir else os.path.isfile)(folder_or_file):
        raise UserError(f"{what} '{folder_or_file}' not found. {fix}")


def plan_voc_aug(voc_root, sbd_root):
    """What :func:`convert_voc_aug` will write: the sorted trainaug names with the source of
    each label, and the list sizes. Raises :class:`UserError` naming what is missing."""
    voc = find_voc2012(voc_root) if voc_root and os.path.isdir(voc_root) else None
    if voc is None:
        raise UserError(f"--voc_root '{voc_root}' holds no VOC2012/JPEGImages/: give the VOCdevkit folder made by "
                        f"untarring {VOC_URL}.")
    sbd = find_sbd_dataset(sbd_root) if sbd_root and os.path.isdir(sbd_root) else None
    if sbd is None:
        raise UserError(f"--sbd_root '{sbd_root}' holds no dataset/cls/: give the benchmark_RELEASE folder made by "
                        f"untarring SBD's {SBD_URL}.")
    sets = os.path.join(voc, 'ImageSets', 'Segmentation')
    lists = {}
    for key, path, fix in (
            ('voc_train', os.path.join(sets, 'train.txt'), f'It comes with {VOC_URL}.'),
            ('voc_val', os.path.join(sets, 'val.txt'), f'It comes with {VOC_URL}.'),
            ('sbd_train', os.path.join(sbd, 'train.txt'), f"It comes with SBD's benchmark.tgz ({SBD_URL})."),
            ('sbd_val', os.path.join(sbd, 'val.txt'), f"It comes with SBD's benchmark.tgz ({SBD_URL}).")):
        _require(path, 'list', fix)
        lists[key] = read_name_list(path, 'list')
    voc_train, voc_val = set(lists['voc_train']), set(lists['voc_val'])
    sbd_names = set(lists['sbd_train']) | set(lists['sbd_val'])
    names = sorted((voc_train | sbd_names) - voc_val)
    if not names:
        raise UserError(f"the lists of '{voc}' and '{sbd}' give no training image: check the two roots.")
    image_dir = os.path.join(voc, 'JPEGImages')
    jpegs = {n[:-4] for n in os.listdir(image_dir) if n.endswith('.jpg')}
    voc_labels = {n[:-4] for n in os.listdir(os.path.join(voc, 'SegmentationClass')) if n.endswith('.png')} \
        if os.path.isdir(os.path.join(voc, 'SegmentationClass')) else set()
    mats = {n[:-4] for n in os.listdir(os.path.join(sbd, 'cls')) if n.endswith('.mat')}
    missing = [n for n in names if n not in jpegs]
    if missing:
        raise UserError(f"{len(missing)} of the {len(names)} trainaug images are not in '{image_dir}', e.g. "
                        f"'{missing[0]}.jpg': SBD's images are VOC 2011 images, all in VOC 2012's JPEGImages; check "
                        f"--voc_root is the 2012 release ({VOC_URL}).")
    missing = sorted(voc_train - voc_labels)
    if missing:
        raise UserError(f"{len(missing)} images of VOC's train.txt have no label in "
                        f"'{os.path.join(voc, 'SegmentationClass')}', e.g. '{missing[0]}.png': restore "
                        f"SegmentationClass/ from {VOC_URL}.")
    missing = sorted(n for n in names if n not in voc_train and n not in mats)
    if missing:
        raise UserError(f"{len(missing)} images of SBD's train.txt/val.txt have no class annotation in "
                        f"'{os.path.join(sbd, 'cls')}', e.g. '{missing[0]}.mat': untar SBD's benchmark.tgz again.")
    jobs = []
    for n in names:
        if n in voc_train:
            jobs.append((n, 'voc', os.path.join(voc, 'SegmentationClass', n + '.png')))
        else:
            jobs.append((n, 'sbd', os.path.join(sbd, 'cls', n + '.mat')))
    sizes = {k: len(set(v)) for k, v in lists.items()}
    sizes['sbd_in_voc_val'] = len(sbd_names & voc_val)
    return {'voc': voc, 'sbd': sbd, 'jobs': jobs, 'sizes': sizes, 'image_dir': image_dir}


def convert_voc_aug(voc_root, sbd_root, overwrite=False, num_workers=1):
    """Write ``SegmentationClassAug/*.png`` and ``trainaug.txt`` into ``voc_root``'s VOC2012.

    Returns the counts: ``trainaug`` (list size), ``from_voc`` / ``from_sbd`` (labels by source),
    the input list sizes, ``sbd_in_voc_val`` (SBD images left out because VOC validates on
    them) and ``official`` (whether the inputs are the releases' full lists).
    """
    plan = plan_voc_aug(voc_root, sbd_root)
    voc = plan['voc']
    out_dir = os.path.join(voc, 'SegmentationClassAug')
    list_path = os.path.join(voc, 'ImageSets', 'Segmentation', 'trainaug.txt')
    targets = [os.path.join(out_dir, n + '.png') for n, _, _ in plan['jobs']]
    if not overwrite:
        existing = [p for p in targets if os.path.exists(p)] + ([list_path] if os.path.exists(list_path) else [])
        if existing:
            state = ('the augmented set looks prepared' if os.path.exists(list_path) else
                     f"'{list_path}' is not there, so an earlier run stopped before the end")
            raise UserError(f"{len(existing)} of the files to write exist already, e.g. '{existing[0]}': {state}. "
                            f"Pass --overwrite to write them again ({CONVERT} --overwrite); other files in the "
                            "folder are never touched.")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create '{out_dir}': {e.strerror or e}.") from None
    jobs = [(n, source, src, os.path.join(plan['image_dir'], n + '.jpg'), dst)
            for (n, source, src), dst in zip(plan['jobs'], targets)]
    if num_workers > 1 and len(jobs) > 1:
        from multiprocessing import Pool
        with Pool(num_workers) as pool:
            sources = list(pool.imap(_convert_one, jobs, chunksize=64))
    else:
        sources = [_convert_one(job) for job in jobs]
    with atomic_write(list_path, 'w', encoding='utf-8') as f:  # last: its presence marks a complete set
        f.write(''.join(n + '\n' for n, _, _ in plan['jobs']))
    sizes = plan['sizes']
    counts = {'trainaug': len(jobs), 'from_voc': sources.count('voc'), 'from_sbd': sources.count('sbd'),
              'label_dir': out_dir, 'list': list_path, **sizes,
              'official': all(sizes[k] == v for k, v in OFFICIAL.items())}
    return counts
