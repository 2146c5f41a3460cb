"""``*_gtFine_labelTrainIds.png`` from the official ``*_gtFine_polygons.json``, rendered by
the Cityscapes team's own ``cityscapesscripts`` (its label table, its rasteriser)."""
import difflib
import glob
import json
import math
import numbers
import os

from ..errors import UserError
from ..utils.fileio import atomic_path

LAYOUT = 'gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_polygons.json'
FORMAT = ('{"imgHeight": H, "imgWidth": W, "objects": [{"label": "<Cityscapes label name>", '
          '"polygon": [[x, y], ...]}, ...]}')
MAX_SIDE = 1 << 15


def _malformed(json_path, what):
    return UserError(
        f"malformed polygon file '{json_path}': {what}. An official *_gtFine_polygons.json reads {FORMAT}; "
        "replace the file with the original from gtFine_trainvaltest.zip (for the mini dataset, delete it and "
        "run `python tools/make_mini_cityscapes.py` again), or remove it with its image.")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_polygons(json_path):
    """Refuse a ``*_gtFine_polygons.json`` that cityscapesscripts would crash on (or exit on,
    for an unknown label) with a message naming the file, the object and the fix."""
    from cityscapesscripts.helpers.labels import name2label
    try:
        with open(json_path, encoding='utf-8') as f:
            annotation = json.load(f)
    except json.JSONDecodeError as e:
        raise _malformed(json_path, f'not valid JSON ({e.msg} at line {e.lineno} column {e.colno})') from None
    except UnicodeDecodeError:
        raise _malformed(json_path, 'not UTF-8 text') from None
    except OSError as e:
        raise UserError(f"cannot read '{json_path}': {e.strerror or e}.") from None
    if not isinstance(annotation, dict):
        raise _malformed(json_path, f'the top level is a {type(annotation).__name__}, not an object')
    for key in ('imgHeight', 'imgWidth'):
        value = annotation.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SIDE:
            raise _malformed(json_path, f'"{key}" is {json.dumps(value)}, not a whole number of pixels in '
                                        f'[1, {MAX_SIDE}]' if key in annotation else f'"{key}" is missing')
    objects = annotation.get('objects')
    if not isinstance(objects, list):
        raise _malformed(json_path, '"objects" is missing' if 'objects' not in annotation else
                         f'"objects" is a {type(objects).__name__}, not a list')
    for i, obj in enumerate(objects):
        where = f'object {i}'
        if not isinstance(obj, dict):
            raise _malformed(json_path, f'{where} is a {type(obj).__name__}, not an object')
        for key in ('label', 'polygon'):
            if key not in obj:
                raise _malformed(json_path, f'{where} has no "{key}"')
        polygon = obj['polygon']
        if not isinstance(polygon, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in polygon):
            raise _malformed(json_path, f'the "polygon" of {where} is not a list of [x, y] number pairs')
        if obj.get('deleted'):
            continue  # cityscapesscripts skips deleted objects
        label = obj['label']
        if not isinstance(label, str):
            raise _malformed(json_path, f'the "label" of {where} is {json.dumps(label)}, not a name')
        name = label[:-len('group')] if label not in name2label and label.endswith('group') else label
        if name not in name2label:
            close = difflib.get_close_matches(name, list(name2label), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ''
            raise _malformed(json_path, f"{where} has the label '{label}', which is not a Cityscapes label name"
                                        f"{hint}")
        if name2label[name].id >= 0 and len(polygon) < 2:
            raise _malformed(json_path, f'the "polygon" of {where} has {len(polygon)} point(s); it needs at '
                                        'least 2')


def _convert_one(json_path):
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    check_polygons(json_path)
    out = json_path.replace('_gtFine_polygons.json', '_gtFine_labelTrainIds.png')
    with atomic_path(out, suffix='.png') as tmp:  # never a half-written label file; the writer needs .png
        try:
            json2labelImg(json_path, tmp, 'trainIds')
        except (Exception, SystemExit) as e:  # cityscapesscripts exits on some errors
            raise _malformed(json_path, f'cityscapesscripts cannot render it ({type(e).__name__}: {e})') from None
    return out


def convert_cityscapes(dataset_root, splits=None, num_workers=1, overwrite=False):
    """Render trainId labels for every polygon file under ``dataset_root/gtFine/<split>/``.

    Files whose output exists and is newer than the JSON are skipped unless ``overwrite``.
    Returns the number of label files written.
    """
    from tqdm import tqdm
    gt = os.path.join(dataset_root, 'gtFine')
    if not os.path.isdir(gt):
        raise UserError(f"'{gt}' not found. dataset_root must hold the official gtFine folder "
                        f"({LAYOUT}): download gtFine_trainvaltest.zip from the Cityscapes website and unzip "
                        "it into dataset_root, or make the mini dataset with `python tools/make_mini_cityscapes.py`.")
    splits = splits or sorted(d for d in os.listdir(gt) if os.path.isdir(os.path.join(gt, d)))
    files = sorted(f for s in splits for f in glob.glob(os.path.join(gt, s, '*', '*_gtFine_polygons.json')))
    if not files:
        raise UserError(f"no *_gtFine_polygons.json under '{gt}' for split(s) {', '.join(splits)}; "
                        f"expected the official layout {LAYOUT}.")
    todo = [f for f in files if overwrite or not _up_to_date(f)]
    if num_workers > 1 and len(todo) > 1:
        from multiprocessing import Pool
        with Pool(num_workers) as pool:
            list(tqdm(pool.imap_unordered(_convert_one, todo, chunksize=8), total=len(todo), desc='labelTrainIds'))
    else:
        for f in tqdm(todo, desc='labelTrainIds', disable=len(todo) < 20):
            _convert_one(f)
    return len(todo)


def _up_to_date(json_path):
    out = json_path.replace('_gtFine_polygons.json', '_gtFine_labelTrainIds.png')
    return os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(json_path)
