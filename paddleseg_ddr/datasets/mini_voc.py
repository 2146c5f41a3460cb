"""A deterministic miniature of Pascal VOC 2012 and of SBD, in the releases' on-disk layouts::

    <root>/VOCdevkit/VOC2012/JPEGImages/<name>.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/<name>.png           palette PNGs, 255 borders
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    <root>/benchmark_RELEASE/dataset/cls/<name>.mat                 GTcls struct, as SBD's
    <root>/benchmark_RELEASE/dataset/{train,val}.txt

The lists overlap as the real ones do: some VOC train images are in SBD, some VOC val images
are in SBD (the converter must leave them out), most SBD images are in neither VOC list, and
SBD's own train/val split cuts across all of them. ``tools/convert_voc_aug.py`` then makes
``SegmentationClassAug`` and ``trainaug.txt`` exactly as on the real data.

Each scene is a textured background (class 0) with one to three objects of a few classes, each
drawn with its own shape, colours and texture (aeroplane, bus, car, cat, person, potted plant,
tv monitor), so that a network can learn them. VOC's label marks a 2-pixel band around every
object outline 255, as VOC's annotators did; SBD's ``GTcls.Segmentation`` has no border band
(as SBD's), with its per-class ``Boundaries`` (sparse) and ``CategoriesPresent``. SBD's
``img/`` and ``inst/`` folders are not written: the converter does not read them.
"""
import json
import os

import cv2
import numpy as np

from ..errors import UserError
from ..utils.fileio import atomic_write

MARKER = '.mini_voc.json'
OBJECT_CLASSES = (1, 6, 7, 8, 15, 16, 20)  # aeroplane, bus, car, cat, person, pottedplant, tvmonitor


# ----------------------------------------------------------------------------- drawing

def _smooth(rng, h, w, cell, sigma):
    small = rng.normal(0.0, sigma, (max(h // cell, 1) + 2, max(w // cell, 1) + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _background(rng, h, w):
    """Muted scenery: a vertical gradient, a blotchy field or a tiled floor, in greys/browns/teals."""
    base = rng.uniform(70, 170, 3).astype(np.float32) * np.array([1.0, 0.95, 0.9], np.float32)
    kind = rng.integers(3)
    if kind == 0:
        ramp = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None] * rng.uniform(20, 50)
        image = base + ramp + np.zeros((h, w, 3), np.float32)
    elif kind == 1:
        image = base + _smooth(rng, h, w, 12, 25)[..., None] * np.array([1, 0.8, 0.6], np.float32)
    else:
        period = int(rng.integers(10, 24))
        yy, xx = np.mgrid[0:h, 0:w]
        tiles = (((yy // period) + (xx // period)) % 2).astype(np.float32)[..., None]
        image = base + (tiles - 0.5) * rng.uniform(15, 35)
    return image + rng.normal(0, 5, (h, w, 3)).astype(np.float32)


def _fill(mask, shape_fn):
    layer = np.zeros(mask.shape, np.uint8)
    shape_fn(layer)
    return layer > 0


def _object(rng, cls, h, w):
    """(mask, colour layer) of one object of class ``cls`` at a random place and size."""
    s = min(h, w)
    cx, cy = int(rng.integers(w // 6, w - w // 6)), int(rng.integers(h // 5, h - h // 5))
    size = int(s * rng.uniform(0.28, 0.5))
    paint = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    if cls == 1:  # aeroplane: pale grey fuselage with swept wings
        body = _fill(mask, lambda m: cv2.ellipse(m, (cx, cy), (size, max(size // 5, 2)), 0, 0, 360, 1, -1))
        wing = np.array([[cx - size // 4, cy], [cx + size // 6, cy], [cx - size // 2, cy + size // 1.3],
                         [cx - size // 1.6, cy + size // 1.4]], np.int32)
        mirrored = (wing * [1, -1] + [0, 2 * cy]).astype(np.int32)
        wings = _fill(mask, lambda m: cv2.fillPoly(m, [wing, mirrored], 1))
        mask = body | wings
        paint[:] = np.array([215, 218, 228], np.float32) + rng.normal(0, 4, 3)
    elif cls == 6:  # bus: yellow box with a dark window band
        x0, y0, x1, y1 = cx - size, cy - size // 2, cx + size, cy + size // 2
        mask = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        paint[:] = (235, 190, 30)
        band = (yy > y0 + (y1 - y0) * 0.15) & (yy < y0 + (y1 - y0) * 0.45) & ((xx - x0) % 12 < 9)
        paint[band] = (40, 50, 60)
    elif cls == 7:  # car: red rounded body, black wheels
        body = _fill(mask, lambda m: cv2.ellipse(m, (cx, cy), (size, size // 3), 0, 0, 360, 1, -1))
        cabin = _fill(mask, lambda m: cv2.ellipse(m, (cx, cy - size // 4), (size // 2, size // 3), 0, 180, 360, 1, -1))
        r = max(size // 5, 2)
        wheels = _fill(mask, lambda m: [cv2.circle(m, (cx + d, cy + size // 4), r, 1, -1) for d in (-size // 2, size // 2)])
        mask = body | cabin | wheels
        paint[:] = (200, 25, 30)
        paint[wheels] = (20, 20, 20)
    elif cls == 8:  # cat: orange ellipse with dark stripes and ears
        body = _fill(mask, lambda m: cv2.ellipse(m, (cx, cy), (size, int(size * 0.6)), 0, 0, 360, 1, -1))
        ears = _fill(mask, lambda m: cv2.fillPoly(m, [np.array([[cx + size // 2, cy - size // 3],
                                                               [cx + size // 2 + size // 4, cy - size],
                                                               [cx + size, cy - size // 4]], np.int32)], 1))
        mask = body | ears
        stripes = ((xx + yy // 2) % 10 < 4)
        paint[:] = (230, 140, 50)
        paint[stripes] = (110, 60, 20)
    elif cls == 15:  # person: blue torso and legs, skin-coloured head
        tw = max(size // 3, 3)
        torso = (np.abs(xx - cx) <= tw) & (yy >= cy - size // 2) & (yy <= cy + size)
        head = (xx - cx) ** 2 + (yy - (cy - size // 2 - tw)) ** 2 <= (tw * 0.9) ** 2
        mask = torso | head
        paint[:] = (40, 70, 170)
        paint[head] = (235, 190, 160)
    elif cls == 16:  # potted plant: green leafy blob on a brown pot
        pot = np.array([[cx - size // 3, cy + size // 4], [cx + size // 3, cy + size // 4],
                        [cx + size // 5, cy + size], [cx - size // 5, cy + size]], np.int32)
        pot_m = _fill(mask, lambda m: cv2.fillPoly(m, [pot], 1))
        leaves = np.zeros((h, w), bool)
        for _ in range(5):
            lx, ly = cx + int(rng.integers(-size // 2, size // 2 + 1)), cy - int(rng.integers(0, size // 2 + 1))
            leaves |= (xx - lx) ** 2 + (yy - ly) ** 2 <= (size // 3) ** 2
        mask = pot_m | leaves
        paint[:] = (50, 150, 40)
        paint += (_smooth(rng, h, w, 4, 30)[..., None] * [0.3, 1, 0.3])
        paint[pot_m] = (140, 80, 40)
    elif cls == 20:  # tv monitor: black frame, glowing blue screen
        x0, y0, x1, y1 = cx - size, cy - int(size * 0.7), cx + size, cy + int(size * 0.7)
        mask = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        paint[:] = (25, 25, 28)
        screen = (xx >= x0 + 4) & (xx <= x1 - 4) & (yy >= y0 + 4) & (yy <= y1 - 4)
        paint[screen] = (90, 170, 240)
    return mask, paint


def _scene(rng, h, w):
    """(image RGB uint8, class map without borders, instance map)."""
    image = _background(rng, h, w)
    classes = np.zeros((h, w), np.uint8)
    instances = np.zeros((h, w), np.uint8)
    count = int(rng.integers(1, 4))
    for k in range(1, count + 1):
        cls = int(rng.choice(OBJECT_CLASSES))
        mask, paint = _object(rng, cls, h, w)
        if not mask.any():
            continue
        image[mask] = paint[mask] + rng.normal(0, 6, (int(mask.sum()), 3))
        classes[mask], instances[mask] = cls, k
    light = rng.uniform(0.8, 1.15)
    image = cv2.GaussianBlur(np.clip(image * light, 0, 255).astype(np.uint8), (3, 3), 0)
    return image, classes, instances


def voc_label(classes, instances):
    """VOC's annotation: the class map with a 2-pixel band of 255 along every object outline."""
    kernel = np.ones((3, 3), np.uint8)
    border = cv2.dilate(instances, kernel) != cv2.erode(instances, kernel)
    label = classes.copy()
    label[border] = 255
    return label


def sbd_struct(classes):
    """SBD's ``GTcls`` struct: Segmentation (uint8 map), Boundaries (20x1 cell of sparse
    per-class outlines), CategoriesPresent (column of the object classes present)."""
    from scipy import sparse
    kernel = np.ones((3, 3), np.uint8)
    boundaries = np.empty((20, 1), dtype=object)
    for c in range(1, 21):
        region = (classes == c).astype(np.uint8)
        boundaries[c - 1, 0] = sparse.csc_matrix((region - cv2.erode(region, kernel)).astype(bool))
    present = np.array([[c] for c in np.unique(classes) if c != 0], np.uint8).reshape(-1, 1)
    return {'Boundaries': boundaries, 'Segmentation': classes.astype(np.uint8), 'CategoriesPresent': present}


def _save_palette_png(path, label):
    from .voc_aug import write_palette_png
    write_palette_png(path, label)


# ----------------------------------------------------------------------------- layout

def plan_names(num_trainaug, num_val):
    """The names of each group, VOC-style (``<year>_<index>``), and the lists they form.

    trainaug = VOC train (a third, half of it also in SBD) + SBD-only; val = VOC val, about
    three in eight of it also in SBD. SBD's own train/val split takes every third SBD name
    into val.
    """
    names = [f'{2007 + i % 5}_{1000 + 7 * i:06d}' for i in range(num_trainaug + num_val)]
    trainaug, val = names[:num_trainaug], names[num_trainaug:]
    n_voc_train = max(1, num_trainaug // 3)
    voc_train = trainaug[:n_voc_train]
    both_train = voc_train[:n_voc_train // 2]            # in VOC train and in SBD
    sbd_only = trainaug[n_voc_train:]
    both_val = val[:(3 * num_val) // 8]                  # in VOC val and in SBD: excluded from trainaug
    sbd = sorted(both_train + sbd_only + both_val)
    return {'voc_train': sorted(voc_train), 'voc_val': sorted(val), 'sbd_train': [n for i, n in enumerate(sbd) if i % 3],
            'sbd_val': [n for i, n in enumerate(sbd) if i % 3 == 0], 'trainaug': sorted(trainaug)}


def _write_list(path, names):
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(''.join(n + '\n' for n in names))


def _check_arguments(root, **counts):
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"--{name} must be a whole number of at least 1, got {value!r} "
                            "(defaults: --num_trainaug 24 --num_val 8 --width 160 --height 120).")
    if counts['num_trainaug'] < 3:
        raise UserError(f"--num_trainaug must be at least 3 (VOC train, SBD-only images), got {counts['num_trainaug']}.")
    if counts['width'] < 32 or counts['height'] < 32:
        raise UserError(f"--width and --height must be at least 32 pixels, got {counts['width']}x{counts['height']}.")
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"--root '{root}' is a file, not a folder: give the folder to write the miniature into "
                        "(it is created if missing), e.g. --root data/mini_voc.")


def generate_mini_voc(root, num_trainaug=24, num_val=8, width=160, height=120, seed=0):
    """Write the miniature VOC 2012 + SBD under ``root``. Idempotent: a complete miniature with
    the same parameters is left as it is. Returns {'root', 'voc_root', 'sbd_root', lists...}."""
    from scipy.io import savemat
    _check_arguments(root, num_trainaug=num_trainaug, num_val=num_val, width=width, height=height)
    root = os.path.abspath(root)
    voc = os.path.join(root, 'VOCdevkit', 'VOC2012')
    sbd = os.path.join(root, 'benchmark_RELEASE', 'dataset')
    lists = plan_names(num_trainaug, num_val)
    summary = {'root': root, 'voc_root': os.path.dirname(voc), 'sbd_root': os.path.dirname(sbd),
               **{k: len(v) for k, v in lists.items()}}
    params = {'num_trainaug': num_trainaug, 'num_val': num_val, 'width': width, 'height': height, 'seed': seed,
              'version': 1}
    marker = os.path.join(root, MARKER)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == params:
                return summary
    folders = [os.path.join(voc, d) for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation')]
    folders.append(os.path.join(sbd, 'cls'))
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the folder '{folder}' for the miniature: {e.strerror or e}. "
                            "Give --root a folder path you can write to.") from None
    voc_named = set(lists['voc_train']) | set(lists['voc_val'])
    sbd_named = set(lists['sbd_train']) | set(lists['sbd_val'])
    everything = sorted(voc_named | sbd_named | set(lists['trainaug']))
    for index, name in enumerate(everything):
        rng = np.random.default_rng([seed, index])
        h, w = (width, height) if index % 5 == 4 else (height, width)  # every fifth image is portrait
        image, classes, instances = _scene(rng, h, w)
        ok, buf = cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        with atomic_write(os.path.join(voc, 'JPEGImages', name + '.jpg')) as f:
            f.write(buf.tobytes())
        if name in voc_named:
            _save_palette_png(os.path.join(voc, 'SegmentationClass', name + '.png'), voc_label(classes, instances))
        if name in sbd_named:
            path = os.path.join(sbd, 'cls', name + '.mat')
            with atomic_write(path) as f:
                savemat(f, {'GTcls': sbd_struct(classes)}, do_compression=True)
    sets = os.path.join(voc, 'ImageSets', 'Segmentation')
    _write_list(os.path.join(sets, 'train.txt'), lists['voc_train'])
    _write_list(os.path.join(sets, 'val.txt'), lists['voc_val'])
    _write_list(os.path.join(sets, 'trainval.txt'), sorted(voc_named))
    _write_list(os.path.join(sbd, 'train.txt'), lists['sbd_train'])
    _write_list(os.path.join(sbd, 'val.txt'), lists['sbd_val'])
    with atomic_write(marker, 'w', encoding='utf-8') as f:
        json.dump(params, f)
    return summary
