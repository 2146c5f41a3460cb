"""``*_gtFine_labelTrainIds.png`` from the official ``*_gtFine_polygons.json``, rendered by
the Cityscapes team's own ``cityscapesscripts`` (its label table, its rasteriser)."""
import glob
import os

from ..errors import UserError
from ..utils.fileio import atomic_path

LAYOUT = 'gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_polygons.json'


def _convert_one(json_path):
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    out = json_path.replace('_gtFine_polygons.json', '_gtFine_labelTrainIds.png')
    with atomic_path(out, suffix='.png') as tmp:  # never a half-written label file; the writer needs .png
        json2labelImg(json_path, tmp, 'trainIds')
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
