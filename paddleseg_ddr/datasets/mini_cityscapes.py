"""A deterministic mini Cityscapes: procedurally drawn road scenes in the official layout.

Each scene is a list of labelled polygons, back to front (sky, buildings, trees, terrain,
sidewalks, road, fences, poles with signs and lights, vehicles, people, ego vehicle). The
polygons go to ``*_gtFine_polygons.json`` in the official format; ``cityscapesscripts``
renders ``_labelIds``, ``_color`` and ``_instanceIds`` from them exactly as for the real
dataset, and :func:`convert_cityscapes` then makes ``_labelTrainIds``. The photo is painted
from the same polygons with PIL's rasteriser (the one ``cityscapesscripts`` uses), each class
with its own colour range and texture, under random lighting and noise, so image and labels
agree pixel for pixel.

The drawing is dataset-neutral (:func:`draw_scene`, :func:`paint_scene`: polygons named with
Cityscapes' label names, painted with an optional callback that sees every painted region),
so other miniatures (``mini_camvid``) draw the same scenes and render their own labels.
"""
import json
import os

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ..errors import UserError

SPLITS = {'train': ('aachen', 'bochum', 'bremen', 'hamburg'), 'val': ('frankfurt', 'lindau', 'munster')}
MARKER = '.mini_cityscapes.json'


# ----------------------------------------------------------------------------- geometry

def _clip(polygon, width, height):
    """Sutherland-Hodgman clip of a polygon to the image rectangle; integer vertices."""
    pts = [tuple(map(float, p)) for p in polygon]
    edges = [(0, 0.0, 1), (0, width - 1.0, -1), (1, 0.0, 1), (1, height - 1.0, -1)]
    for axis, bound, sign in edges:
        inside = lambda p: sign * (p[axis] - bound) >= 0
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur) != inside(prev):
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append(tuple(prev[k] + t * (cur[k] - prev[k]) for k in range(2)))
            if inside(cur):
                out.append(cur)
        pts = out
        if not pts:
            return []
    poly = []
    for x, y in pts:
        p = [int(round(x)), int(round(y))]
        if not poly or p != poly[-1]:
            poly.append(p)
    return poly if len(poly) >= 3 else []


def _ellipse(cx, cy, rx, ry, n=14, rng=None, jitter=0.0):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1.0 + (rng.uniform(-jitter, jitter, n) if rng is not None and jitter else np.zeros(n))
    return [[cx + rx * ri * np.cos(a), cy + ry * ri * np.sin(a)] for a, ri in zip(angles, r)]


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# ----------------------------------------------------------------------------- textures

def _noise(rng, shape, sigma):
    return rng.normal(0.0, sigma, shape).astype(np.float32)


def _smooth_noise(rng, h, w, cell, sigma):
    """Low-frequency noise: random values on a coarse grid, upsampled."""
    small = rng.normal(0.0, sigma, (max(h // cell, 1) + 2, max(w // cell, 1) + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]


def _solid(color, jitter=0):
    def paint(rng, h, w, box):
        base = np.array(color, np.float32) + rng.uniform(-jitter, jitter, 3)
        return np.broadcast_to(base, (h, w, 3)) + _noise(rng, (h, w, 3), 6)
    return paint


def _road(rng, h, w, box):
    tex = 90 + rng.uniform(-15, 15) + _noise(rng, (h, w, 1), 10) + _smooth_noise(rng, h, w, 16, 6)
    return np.repeat(tex, 3, axis=2) + np.array([0, 2, 4], np.float32)


def _sidewalk(rng, h, w, box):
    base = np.array([175, 160, 165], np.float32) + rng.uniform(-15, 15)
    tex = np.broadcast_to(base, (h, w, 3)) + _noise(rng, (h, w, 1), 7)
    yy, xx = np.mgrid[box[1]:box[1] + h, box[0]:box[0] + w]
    grout = ((yy % 9) == 0) | ((xx % 14) == 0)
    return tex - 35 * grout[..., None]


def _building(rng, h, w, box):
    base = np.array(rng.choice([[120, 110, 100], [150, 130, 110], [100, 100, 110], [170, 150, 120]]), np.float32)
    tex = base + _noise(rng, (h, w, 1), 8) + _smooth_noise(rng, h, w, 24, 8)
    wy, wx = int(rng.integers(10, 18)), int(rng.integers(8, 16))
    yy, xx = np.mgrid[0:h, 0:w]
    windows = ((yy % wy) > wy * 0.45) & ((xx % wx) > wx * 0.4)
    glass = np.array([50, 60, 75], np.float32) + rng.uniform(-10, 30)
    return np.where(windows[..., None], glass, tex)


def _vegetation(rng, h, w, box):
    green = np.array([45, 110, 40], np.float32) + rng.uniform(-15, 15, 3)
    leaves = _smooth_noise(rng, h, w, 3, 30) + _smooth_noise(rng, h, w, 10, 15)
    return green + leaves * np.array([0.5, 1.0, 0.4], np.float32)


def _terrain(rng, h, w, box):
    base = np.array([150, 160, 80], np.float32) + rng.uniform(-15, 15, 3)
    return base + _noise(rng, (h, w, 1), 14) + _smooth_noise(rng, h, w, 6, 10)


def _sky(rng, h, w, box):
    top = np.array([200, 140, 70], np.float32) if rng.random() < 0.7 else np.array([190, 190, 195], np.float32)
    bottom = np.array([245, 230, 210], np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return top * (1 - t) + bottom * t + _noise(rng, (h, w, 3), 2) + np.zeros((1, w, 1), np.float32)


def _slats(color, period, vertical=True):
    def paint(rng, h, w, box):
        tex = _solid(color, 15)(rng, h, w, box)
        idx = np.arange(box[0], box[0] + w) if vertical else np.arange(box[1], box[1] + h)
        gaps = (idx % period) < period // 2
        gaps = gaps[None, :, None] if vertical else gaps[:, None, None]
        return tex - 40 * gaps
    return paint


def _vehicle(body, window_band=(0.05, 0.45)):
    def paint(rng, h, w, box):
        color = np.array(body if body is not None else rng.integers(20, 235, 3), np.float32)
        tex = color + _noise(rng, (h, w, 3), 5)
        y0, y1 = int(h * window_band[0]), int(h * window_band[1])
        tex[y0:y1, int(w * 0.12):int(w * 0.88)] = np.array([40, 45, 55], np.float32) + _noise(rng, (y1 - y0, int(w * 0.88) - int(w * 0.12), 3), 4)
        r = max(int(h * 0.16), 1)
        for cx in (int(w * 0.2), int(w * 0.8)):
            cv2.circle(tex, (cx, h - r), r, (15, 15, 15), -1)
        return tex
    return paint


def _person(rng, h, w, box):
    shirt = np.array(rng.integers(20, 235, 3), np.float32)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = np.array([40, 40, 60], np.float32)           # trousers
    tex[: int(h * 0.55)] = shirt                           # upper body
    tex[: int(h * 0.16)] = np.array([120, 150, 200], np.float32)  # head
    return tex + _noise(rng, (h, w, 3), 6)


def _sign(rng, h, w, box):
    outer = np.array(rng.choice([[40, 40, 200], [170, 80, 20], [30, 200, 230]]), np.float32)
    tex = np.broadcast_to(outer, (h, w, 3)).copy()
    tex[h // 4: h - h // 4, w // 4: w - w // 4] = 235
    return tex + _noise(rng, (h, w, 3), 5)


def _traffic_light(rng, h, w, box):
    tex = np.full((h, w, 3), 30, np.float32)
    lit = int(rng.integers(0, 3))
    for i, color in enumerate(([60, 60, 230], [40, 200, 240], [80, 220, 60])):
        cy = int(h * (0.2 + 0.3 * i))
        cv2.circle(tex, (w // 2, cy), max(w // 3, 1), color if i == lit else (60, 60, 60), -1)
    return tex + _noise(rng, (h, w, 3), 4)


PAINTERS = {
    'sky': _sky, 'building': _building, 'vegetation': _vegetation, 'terrain': _terrain,
    'sidewalk': _sidewalk, 'road': _road, 'wall': _solid([180, 185, 190], 15),
    'fence': _slats([120, 140, 150], 6), 'pole': _solid([70, 70, 70], 20),
    'traffic sign': _sign, 'traffic light': _traffic_light, 'person': _person, 'rider': _person,
    'car': _vehicle(None), 'truck': _vehicle(None, (0.05, 0.3)), 'bus': _vehicle([30, 160, 230], (0.15, 0.45)),
    'train': _slats([200, 200, 210], 24), 'motorcycle': _solid([30, 30, 140], 30),
    'bicycle': _slats([30, 30, 30], 4, vertical=False), 'ego vehicle': _solid([20, 25, 30], 10),
}


# ----------------------------------------------------------------------------- scene layout

def draw_scene(rng, width, height):
    """Labelled polygons (label, points) back to front, in image coordinates; labels are
    Cityscapes label names (keys of :data:`PAINTERS`)."""
    W, H = width, height
    horizon = H * rng.uniform(0.38, 0.5)
    vx = W * rng.uniform(0.4, 0.6)
    left_bottom, right_bottom = W * rng.uniform(-0.15, 0.12), W * rng.uniform(0.88, 1.15)
    walk = W * rng.uniform(0.12, 0.3)
    objs = [('sky', _rect(0, 0, W, H))]

    def road_x(y, side):  # x of the road edge at image row y
        t = (y - horizon) / (H - horizon)
        return vx + t * ((left_bottom if side < 0 else right_bottom) - vx)

    # Buildings along both sides, then trees in front of them.
    for side in (-1, 1):
        x = 0.0 if side < 0 else W
        limit = vx - W * 0.03 if side < 0 else vx + W * 0.03
        while (x < limit) if side < 0 else (x > limit):
            bw = W * rng.uniform(0.06, 0.18)
            x2 = min(x + bw, limit) if side < 0 else max(x - bw, limit)
            top = H * rng.uniform(0.02, 0.3) + (abs(x - vx) < W * 0.15) * H * 0.1
            # Facades reach the ground; sidewalks and terrain are drawn over their feet.
            bottom = H if abs(x - vx) > W * 0.12 else horizon + H * 0.05
            objs.append(('building', _rect(x, top, x2, bottom)))
            x = x2
    if rng.random() < 0.2:  # a rare wall segment in front of the buildings
        x0 = W * rng.uniform(0.0, 0.25)
        objs.append(('wall', _rect(x0, horizon - H * 0.08, x0 + W * rng.uniform(0.05, 0.15), horizon + H * 0.04)))
    for _ in range(int(rng.integers(1, 6))):
        side = rng.choice([-1, 1])
        tx = W * (rng.uniform(0.0, 0.3) if side < 0 else rng.uniform(0.7, 1.0))
        r = H * rng.uniform(0.06, 0.16)
        ty = horizon - r * rng.uniform(0.3, 1.2)
        objs.append(('vegetation', _rect(tx - r * 0.08, ty, tx + r * 0.08, horizon + H * 0.06)))
        objs.append(('vegetation', _ellipse(tx, ty, r, r * 0.9, 16, rng, 0.2)))

    # Ground: optional terrain strips, sidewalks, road with lane marks (painted as road).
    for side in (-1, 1):
        edge = left_bottom if side < 0 else right_bottom
        outer = edge + side * walk
        if rng.random() < 0.5:
            objs.append(('terrain', [[vx, horizon], [outer + side * W * 0.4, H], [outer, H]]))
        objs.append(('sidewalk', [[vx, horizon], [edge, H], [outer, H], [vx + side * W * 0.02, horizon]]))
    objs.append(('road', [[vx - 2, horizon], [vx + 2, horizon], [right_bottom, H], [left_bottom, H]]))
    if rng.random() < 0.35:  # fence along one sidewalk
        side = rng.choice([-1, 1])
        edge = (left_bottom if side < 0 else right_bottom) + side * walk
        fh = H * 0.12
        objs.append(('fence', [[vx + side * W * 0.02, horizon - 2], [edge, H - fh * 2.5], [edge, H - fh * 1.2],
                               [vx + side * W * 0.02, horizon + 1]]))

    # Poles with signs / lights on the sidewalks.
    for _ in range(int(rng.integers(1, 4))):
        side = rng.choice([-1, 1])
        t = rng.uniform(0.15, 0.8)
        y = horizon + t * (H - horizon)
        x = road_x(y, side) + side * walk * t * rng.uniform(0.3, 0.7)
        ph, pw = H * (0.12 + 0.5 * t), max(1.5, W * 0.006 * (0.5 + t))
        objs.append(('pole', _rect(x - pw, y - ph, x + pw, y)))
        s = max(H * 0.05 * (0.5 + t), 3)
        kind = rng.random()
        if kind < 0.45:
            objs.append(('traffic sign', _ellipse(x, y - ph, s, s, 8) if rng.random() < 0.5 else _rect(x - s, y - ph - s, x + s, y - ph + s)))
        elif kind < 0.8:
            objs.append(('traffic light', _rect(x - s * 0.45, y - ph - s * 1.5, x + s * 0.45, y - ph + s * 0.3)))

    # Vehicles and people, far to near.
    movers = []
    for _ in range(int(rng.integers(1, 6))):
        t = rng.uniform(0.1, 1.0)
        y = horizon + t * (H - horizon)
        lo, hi = road_x(y, -1), road_x(y, 1)
        kind = rng.choice(['car', 'car', 'car', 'truck', 'bus', 'motorcycle', 'train'], p=[0.3, 0.25, 0.2, 0.1, 0.08, 0.05, 0.02])
        size = {'car': (0.55, 0.3), 'truck': (0.6, 0.5), 'bus': (0.9, 0.5), 'motorcycle': (0.15, 0.2), 'train': (1.6, 0.55)}[kind]
        w, h = W * 0.32 * t * size[0], H * 0.55 * t * size[1]
        x = rng.uniform(lo, max(lo + 1, hi - w))
        if kind == 'car':
            poly = [[x, y], [x + w, y], [x + w, y - h * 0.55], [x + w * 0.8, y - h * 0.6], [x + w * 0.7, y - h],
                    [x + w * 0.25, y - h], [x + w * 0.12, y - h * 0.6], [x, y - h * 0.55]]
        else:
            poly = _rect(x, y - h, x + w, y)
        movers.append((y, [(kind, poly)]))
    for _ in range(int(rng.integers(0, 5))):
        t = rng.uniform(0.15, 1.0)
        y = horizon + t * (H - horizon)
        side = rng.choice([-1, 1])
        x = road_x(y, side) + side * walk * t * rng.uniform(0.1, 0.8)
        h = H * 0.35 * t
        w = h * 0.35
        person = [[x - w * 0.15, y - h], [x + w * 0.15, y - h], [x + w * 0.2, y - h * 0.84], [x + w * 0.5, y - h * 0.8],
                  [x + w * 0.45, y - h * 0.45], [x + w * 0.3, y], [x + w * 0.05, y], [x, y - h * 0.4], [x - w * 0.05, y],
                  [x - w * 0.3, y], [x - w * 0.45, y - h * 0.45], [x - w * 0.5, y - h * 0.8], [x - w * 0.2, y - h * 0.84]]
        if rng.random() < 0.25:  # a rider on a bicycle, on the road edge
            bike = _rect(x - w * 1.0, y - h * 0.3, x + w * 1.0, y)
            rider = [[px, py - h * 0.25] for px, py in person]
            movers.append((y, [('bicycle', bike), ('rider', rider)]))
        else:
            movers.append((y, [('person', person)]))
    for _, items in sorted(movers, key=lambda m: m[0]):
        objs.extend(items)
    if rng.random() < 0.3:  # the ego car's bonnet: 'ego vehicle', ignored in training
        objs.append(('ego vehicle', [[0, H], [W * 0.1, H * 0.92], [W * 0.9, H * 0.92], [W, H]]))
    return [(label, poly) for label, poly in ((l, _clip(p, W, H)) for l, p in objs) if poly]


def paint_scene(objs, width, height, rng, on_paint=None, painters=None):
    """Paint the photo from the polygons, back to front, with PIL's polygon rasteriser.

    ``on_paint(label, box, mask)``, when given, is called after each object is painted with
    its box ``(x0, y0, x1, y1)`` and the boolean mask of the pixels painted in that box, and
    with label ``'lane marking'`` for the road's lane marks: a caller renders its own label map
    from exactly the painted pixels. It draws no random numbers, so the image is the same.
    ``painters``: {label: painter} for labels of the caller's own (default :data:`PAINTERS`).
    """
    painters = PAINTERS if painters is None else painters
    image = np.zeros((height, width, 3), np.float32)
    for label, poly in objs:
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs) + 1, max(ys) + 1
        mask = Image.new('L', (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in poly], fill=1)
        mask = np.asarray(mask, bool)
        tex = painters[label](rng, y1 - y0, x1 - x0, (x0, y0))
        region = image[y0:y1, x0:x1]
        region[mask] = tex[mask]
        if on_paint is not None:
            on_paint(label, (x0, y0, x1, y1), mask)
        if label == 'road':  # dashed white lane marks along the road's centre line
            marks = _lane_marks(region, mask, rng)
            if on_paint is not None:
                on_paint('lane marking', (x0, y0, x1, y1), marks)
    # Lighting: exposure, contrast and colour temperature, then sensor noise.
    gain = rng.uniform(0.7, 1.25)
    tint = np.array([1 + rng.uniform(-0.08, 0.08), 1.0, 1 + rng.uniform(-0.08, 0.08)], np.float32)
    image = (image - 128) * rng.uniform(0.8, 1.15) + 128
    image = image * gain * tint + _noise(rng, image.shape, 4)
    return np.clip(image, 0, 255).astype(np.uint8)


def _lane_marks(region, mask, rng):
    """Paint the marks into ``region``; returns the boolean mask of the painted pixels."""
    h, w = mask.shape
    marks = np.zeros_like(mask)
    rows = np.nonzero(mask.any(axis=1))[0]
    period = int(rng.integers(8, 14))
    for r in rows:
        cols = np.nonzero(mask[r])[0]
        centre, width = (cols[0] + cols[-1]) // 2, max(1, (cols[-1] - cols[0]) // 60)
        if (r // period) % 2 == 0:
            region[r, max(centre - width, 0): centre + width + 1] = 235
            marks[r, max(centre - width, 0): centre + width + 1] = True
    return marks


# ----------------------------------------------------------------------------- dataset

def _render_labels(json_path, stem_path):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    json2labelImg(json_path, stem_path + '_gtFine_labelIds.png', 'ids')
    json2labelImg(json_path, stem_path + '_gtFine_color.png', 'color')
    # json2instanceImg saves a 32-bit PIL image, which Pillow >= 10 refuses to write as PNG;
    # the official files are 16-bit PNGs, so save cityscapesscripts' rendering with OpenCV.
    annotation = Annotation()
    annotation.fromJsonFile(json_path)
    instances = np.asarray(createInstanceImage(annotation, 'ids'), dtype=np.uint16)
    cv2.imwrite(stem_path + '_gtFine_instanceIds.png', instances)


def _write_sample(args):
    root, split, city, index, width, height, seed = args
    rng = np.random.default_rng([seed, list(SPLITS).index(split), index])
    objs = draw_scene(rng, width, height)
    image = paint_scene(objs, width, height, rng)
    stem = f'{city}_{index:06d}_000019'
    img_dir = os.path.join(root, 'leftImg8bit', split, city)
    gt_dir = os.path.join(root, 'gtFine', split, city)
    cv2.imwrite(os.path.join(img_dir, stem + '_leftImg8bit.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    json_path = os.path.join(gt_dir, stem + '_gtFine_polygons.json')
    annotation = {'imgHeight': height, 'imgWidth': width,
                  'objects': [{'label': label, 'polygon': poly} for label, poly in objs]}
    with open(json_path, 'w') as f:
        json.dump(annotation, f, indent=4)
    _render_labels(json_path, os.path.join(gt_dir, stem))


def _check_arguments(root, **counts):
    """Refuse sizes below 1 and a root that is not a folder before anything is written."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"--{name} must be a whole number of at least 1, got {value!r} "
                            "(defaults: --num_train 40 --num_val 10 --width 512 --height 256).")
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"--root '{root}' is a file, not a folder: give the folder to write the mini dataset "
                        "into (it is created if missing), e.g. --root data/mini_cityscapes.")


def generate_mini_cityscapes(root, num_train=40, num_val=10, width=512, height=256, seed=0,
                             convert=True, num_workers=1):
    """Write a mini Cityscapes under ``root`` (official layout, polygons + rendered labels).

    Idempotent: a complete dataset with the same parameters is left as it is.
    Returns {'root', 'train', 'val'}.
    """
    from .cityscapes_labels import convert_cityscapes
    _check_arguments(root, num_train=num_train, num_val=num_val, width=width, height=height)
    params = {'num_train': num_train, 'num_val': num_val, 'width': width, 'height': height, 'seed': seed,
              'converted': bool(convert), 'version': 1}
    root = os.path.abspath(root)
    marker = os.path.join(root, MARKER)
    summary = {'root': root, 'train': num_train, 'val': num_val}
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == params:
                return summary
    jobs = []
    for split, count in (('train', num_train), ('val', num_val)):
        cities = SPLITS[split]
        for city in cities:
            for sub in ('leftImg8bit', 'gtFine'):
                folder = os.path.join(root, sub, split, city)
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as e:
                    raise UserError(f"cannot create the folder '{folder}' for the mini dataset: "
                                    f"{e.strerror or e}. Give --root a folder path you can write to.") from None
        jobs += [(root, split, cities[i % len(cities)], i, width, height, seed) for i in range(count)]
    if num_workers > 1:
        from multiprocessing import Pool
        with Pool(num_workers) as pool:
            pool.map(_write_sample, jobs)
    else:
        for job in jobs:
            _write_sample(job)
    if convert:
        convert_cityscapes(root, splits=['train', 'val'], num_workers=num_workers, overwrite=True)
    with open(marker, 'w') as f:
        json.dump(params, f)
    return summary
