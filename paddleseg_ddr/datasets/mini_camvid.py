"""A deterministic mini CamVid in the layout of the 32-class colour-label release.

It draws the mini Cityscapes' road scenes (:func:`.mini_cityscapes.draw_scene` /
:func:`paint_scene`), renames each object to its CamVid class, adds objects of classes that
CamVid has and Cityscapes does not (Archway, Animal, Misc_Text, TrafficCone, ParkingBlock),
and renders the colour label ``labels/<stem>_L.png`` from exactly the painted pixels, with
the release's 32-class palette. Lane marks are labelled LaneMkgsDriv, the bonnet Void,
terrain VegetationMisc, trucks and buses Truck_Bus, ...: colours the converter must turn
into ignore. Split lists are written in SegNet-Tutorial's format. The converter
(:func:`.camvid_labels.convert_camvid`) runs on it as on the real release.
"""
import json
import os

import cv2
import numpy as np

from ..errors import UserError
from .camvid_labels import COLOUR_OF
from .mini_cityscapes import PAINTERS, _ellipse, _rect, _solid, draw_scene, paint_scene

MARKER = '.mini_camvid.json'
# Video sequences of the release, used as stem prefixes as in '0001TP_006690'.
SEQUENCES = {'train': ('0001TP', '0006R0', '0016E5'), 'val': ('0016E5',), 'test': ('Seq05VD',)}

# Cityscapes label (as the scene drawing names objects) -> CamVid 32-class name.
CAMVID_NAME = {
    'sky': 'Sky', 'building': 'Building', 'vegetation': 'Tree', 'terrain': 'VegetationMisc', 'sidewalk': 'Sidewalk',
    'road': 'Road', 'lane marking': 'LaneMkgsDriv', 'wall': 'Wall', 'fence': 'Fence', 'pole': 'Column_Pole',
    'traffic sign': 'SignSymbol', 'traffic light': 'TrafficLight', 'person': 'Pedestrian', 'rider': 'Bicyclist',
    'bicycle': 'Bicyclist', 'car': 'Car', 'truck': 'Truck_Bus', 'bus': 'Truck_Bus', 'train': 'Train',
    'motorcycle': 'MotorcycleScooter', 'ego vehicle': 'Void',
}


def _text(rng, h, w, box):
    """A shop sign: dark letters on a light board."""
    tex = np.full((h, w, 3), 225, np.float32) + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    for x in range(1, max(w - 2, 1), 4):
        tex[h // 4: h - h // 4, x:x + 2] = 30
    return tex


EXTRA_PAINTERS = {
    'Archway': _solid([140, 120, 95], 15), 'Animal': _solid([110, 80, 50], 20), 'Misc_Text': _text,
    'TrafficCone': _solid([240, 110, 20], 10), 'ParkingBlock': _solid([200, 200, 190], 10),
}
PAINTERS_CAMVID = {**PAINTERS, **EXTRA_PAINTERS}


def _extras(rng, width, height):
    """CamVid-only objects, drawn over the scene: they must all become ignore."""
    W, H = width, height
    objs = []
    if rng.random() < 0.5:   # an archway in a facade
        x = W * rng.uniform(0.02, 0.3) if rng.random() < 0.5 else W * rng.uniform(0.65, 0.9)
        objs.append(('Archway', _rect(x, H * 0.2, x + W * 0.08, H * 0.45)))
    if rng.random() < 0.6:   # a shop sign with text
        x = W * rng.uniform(0.0, 0.85)
        objs.append(('Misc_Text', _rect(x, H * rng.uniform(0.1, 0.3), x + W * 0.12, H * 0.36)))
    if rng.random() < 0.4:   # a dog on the pavement
        x = W * rng.uniform(0.05, 0.95)
        objs.append(('Animal', _ellipse(x, H * 0.85, W * 0.03, H * 0.025, 10)))
    if rng.random() < 0.4:   # a traffic cone, a parking block
        x = W * rng.uniform(0.3, 0.7)
        objs.append(('TrafficCone', [[x, H * 0.7], [x + W * 0.012, H * 0.78], [x - W * 0.012, H * 0.78]]))
        objs.append(('ParkingBlock', _rect(x + W * 0.05, H * 0.8, x + W * 0.12, H * 0.83)))
    return objs


def render(rng, width, height):
    """(RGB image, RGB colour label) of one scene, agreeing pixel for pixel."""
    from .mini_cityscapes import _clip
    objs = draw_scene(rng, width, height)   # Cityscapes names: painted as in the mini Cityscapes
    objs += [(label, p) for label, p in ((l, _clip(p, width, height)) for l, p in _extras(rng, width, height)) if p]
    colour = np.zeros((height, width, 3), np.uint8)

    def on_paint(label, box, mask):
        x0, y0, x1, y1 = box
        region = colour[y0:y1, x0:x1]
        region[mask] = COLOUR_OF[CAMVID_NAME.get(label, label)]

    image = paint_scene(objs, width, height, rng, on_paint=on_paint, painters=PAINTERS_CAMVID)
    return image, colour


def _check_arguments(root, **counts):
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"--{name} must be a whole number of at least 1, got {value!r} "
                            "(defaults: --num_train 24 --num_val 8 --num_test 8 --width 240 --height 180).")
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"--root '{root}' is a file, not a folder: give the folder to write the mini CamVid into "
                        "(it is created if missing), e.g. --root data/mini_camvid.")


def generate_mini_camvid(root, num_train=24, num_val=8, num_test=8, width=240, height=180, seed=0):
    """Write a mini CamVid release under ``root``: ``images/``, ``labels/*_L.png`` (32-class
    colours) and ``{train,val,test}.txt``. Idempotent for the same parameters.
    Returns {'root', 'train', 'val', 'test'}."""
    from ..utils.fileio import atomic_write, write_image
    _check_arguments(root, num_train=num_train, num_val=num_val, num_test=num_test, width=width, height=height)
    params = {'num_train': num_train, 'num_val': num_val, 'num_test': num_test, 'width': width, 'height': height,
              'seed': seed, 'version': 1}
    root = os.path.abspath(root)
    summary = {'root': root, 'train': num_train, 'val': num_val, 'test': num_test}
    marker = os.path.join(root, MARKER)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == params:
                return summary
    for sub in ('images', 'labels'):
        try:
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create '{os.path.join(root, sub)}': {e.strerror or e}. Give --root a folder "
                            "you can write to.") from None
    for split_index, (split, count) in enumerate((('train', num_train), ('val', num_val), ('test', num_test))):
        lines = []
        for i in range(count):
            seq = SEQUENCES[split][i % len(SEQUENCES[split])]
            n = (split_index * 1000 + i) * 30   # frame numbers as in '0001TP_006690', 'Seq05VD_f00660'
            stem = f'{seq}_f{n:05d}' if seq.startswith('Seq') else f'{seq}_{n:06d}'
            rng = np.random.default_rng([seed, split_index, i])
            image, colour = render(rng, width, height)
            write_image(os.path.join(root, 'images', stem + '.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            write_image(os.path.join(root, 'labels', stem + '_L.png'), cv2.cvtColor(colour, cv2.COLOR_RGB2BGR))
            lines.append(f'/SegNet/CamVid/{split}/{stem}.png /SegNet/CamVid/{split}annot/{stem}.png\n')
        with atomic_write(os.path.join(root, split + '.txt'), 'w') as f:
            f.writelines(lines)
    with atomic_write(marker, 'w') as f:
        json.dump(params, f)
    return summary
