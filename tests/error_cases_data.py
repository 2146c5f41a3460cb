"""Error cases of data: images and labels read by train and val (with and without loader
workers), the polygon converter and the mini dataset generator (see tests/error_cases.py).

Each training or evaluation case builds a tiny Cityscapes tree (two 32x64 images per split)
in ctx.tmp and damages one file of it.
"""
import functools
import json
import os
import shutil
import tempfile
import atexit

import cv2
import numpy as np

from error_cases import ErrorCase

H, W = 32, 64
NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]
STEM = 'ulm_000001_000019'


def tiny_tree(root, n=2):
    """A few HxW images with 8-bit trainId labels in the official layout (2 per split)."""
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for d in ('leftImg8bit', 'gtFine'):
            os.makedirs(os.path.join(root, d, split, 'ulm'), exist_ok=True)
        for i in range(n):
            stem = os.path.join(split, 'ulm', f'ulm_{i:06d}_000019')
            cv2.imwrite(os.path.join(root, 'leftImg8bit', stem + '_leftImg8bit.png'),
                        rng.integers(0, 255, (H, W, 3)).astype(np.uint8))
            cv2.imwrite(os.path.join(root, 'gtFine', stem + '_gtFine_labelTrainIds.png'),
                        rng.integers(0, 19, (H, W)).astype(np.uint8))
    return root


def image_path(ctx, split):
    return ctx.path('cs', 'leftImg8bit', split, 'ulm', STEM + '_leftImg8bit.png')


def label_path(ctx, split):
    return ctx.path('cs', 'gtFine', split, 'ulm', STEM + '_gtFine_labelTrainIds.png')


def empty(path):
    open(path, 'wb').close()


def truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def smaller_label(path):
    cv2.imwrite(path, np.zeros((H // 2, W // 2), np.uint8))


def colour_label(path):
    cv2.imwrite(path, np.zeros((H, W, 3), np.uint8))


def label_16bit_with(value):
    def damage(path):
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.uint16)
        label[3, 4] = value
        cv2.imwrite(path, label)
    return damage


def broken(split, damage, which):
    """setup(ctx): the tiny tree in ctx.tmp/cs with ``damage`` applied to the image or label of
    STEM in ``split``; for 'val' also a weights file ctx.tmp/model.pdparams."""
    def setup(ctx):
        tiny_tree(ctx.path('cs'))
        damage(image_path(ctx, split) if which == 'image' else label_path(ctx, split))
        if split == 'val':
            os.symlink(_weights(), ctx.path('model.pdparams'))
    return setup


@functools.lru_cache(maxsize=None)
def _weights():
    import paddle

    from paddleseg_ddr.models import DDRNet23Slim
    root = tempfile.mkdtemp(prefix='error_cases_data-')
    atexit.register(shutil.rmtree, root, True)
    paddle.seed(3)
    path = os.path.join(root, 'model.pdparams')
    paddle.save(DDRNet23Slim(num_classes=19).state_dict(), path)
    return path


def _config(ctx):
    root = ctx.path('cs')
    return ctx.config(batch_size=2, iters=2, train_dataset={'dataset_root': root, 'transforms': NORMALIZE},
                      val_dataset={'dataset_root': root})


def train_argv(*extra):
    return lambda ctx: ['--config', _config(ctx), '--save_dir', ctx.path('out'), *extra]


def val_argv(*extra):
    return lambda ctx: ['--config', _config(ctx), '--model_path', ctx.path('model.pdparams'), *extra]


def no_checkpoint(ctx):
    return [ctx.path('out', 'iter_2'), ctx.path('out', 'best_model')]


IMAGE_FIX = 'leftImg8bit_trainvaltest.zip'
LABEL_FIX = 'tools/convert_cityscapes.py --dataset_root'
IMAGE = '{tmp}/cs/leftImg8bit/%s/ulm/' + STEM + '_leftImg8bit.png'
LABEL = '{tmp}/cs/gtFine/%s/ulm/' + STEM + '_gtFine_labelTrainIds.png'


# ----------------------------------------------------------------------------- polygons

POLYGONS = {'imgHeight': 8, 'imgWidth': 16, 'objects': [{'label': 'road', 'polygon': [[0, 4], [15, 4], [15, 7]]}]}
JSON = '{tmp}/cs/gtFine/train/ulm/ulm_000001_000019_gtFine_polygons.json'


def polygons(bad_text):
    """setup(ctx): two polygon files under ctx.tmp/cs, the second one holding ``bad_text``."""
    def setup(ctx):
        folder = ctx.path('cs', 'gtFine', 'train', 'ulm')
        os.makedirs(folder)
        for i, text in enumerate((json.dumps(POLYGONS), bad_text)):
            with open(os.path.join(folder, f'ulm_{i:06d}_000019_gtFine_polygons.json'), 'w') as f:
                f.write(text)
    return setup


def no_bad_label(ctx):
    out = JSON.format(tmp=ctx.tmp).replace('_polygons.json', '_labelTrainIds.png')
    return [out]


def convert_argv(*extra):
    return lambda ctx: ['--dataset_root', ctx.path('cs'), *extra]


POLYGON_FIX = ('malformed polygon file', 'gtFine_trainvaltest.zip')


CASES = [
    # ---- train: images and labels read in-process and by loader workers
    ErrorCase('data-train-image-empty', 'train', train_argv(),
              setup=broken('train', empty, 'image'), absent=no_checkpoint,
              expect=(IMAGE % 'train', 'is empty (0 bytes)', IMAGE_FIX)),
    ErrorCase('data-train-image-truncated', 'train', train_argv(),
              setup=broken('train', truncate, 'image'), absent=no_checkpoint,
              expect=(IMAGE % 'train', 'truncated PNG', IMAGE_FIX)),
    ErrorCase('data-train-label-empty', 'train', train_argv(),
              setup=broken('train', empty, 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'is empty (0 bytes)', LABEL_FIX)),
    ErrorCase('data-train-label-truncated', 'train', train_argv(),
              setup=broken('train', truncate, 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'truncated PNG', LABEL_FIX)),
    ErrorCase('data-train-label-other-size', 'train', train_argv(),
              setup=broken('train', smaller_label, 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'is 32x16 pixels', IMAGE % 'train', 'is 64x32', LABEL_FIX)),
    ErrorCase('data-train-label-3-channels', 'train', train_argv(),
              setup=broken('train', colour_label, 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'has 3 channels', 'single-channel', LABEL_FIX)),
    # 16 bits: Paddle took the uint16 label for bfloat16, 33 became 0 and the run went on.
    ErrorCase('data-train-label-16bit-out-of-range', 'train', train_argv(),
              setup=broken('train', label_16bit_with(33), 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'holds values [33] outside [0, 19)', 'labelTrainIds')),
    ErrorCase('data-train-workers-image-truncated', 'train', train_argv('--num_workers', '1'),
              setup=broken('train', truncate, 'image'), absent=no_checkpoint,
              expect=(IMAGE % 'train', 'truncated PNG', IMAGE_FIX)),
    ErrorCase('data-train-workers-label-16bit-out-of-range', 'train', train_argv('--num_workers', '2'),
              setup=broken('train', label_16bit_with(1000), 'label'), absent=no_checkpoint,
              expect=(LABEL % 'train', 'holds values [1000] outside [0, 19)')),
    # ---- val
    ErrorCase('data-val-image-empty', 'val', val_argv(), setup=broken('val', empty, 'image'),
              expect=(IMAGE % 'val', 'is empty (0 bytes)', IMAGE_FIX)),
    ErrorCase('data-val-label-truncated', 'val', val_argv(), setup=broken('val', truncate, 'label'),
              expect=(LABEL % 'val', 'truncated PNG', LABEL_FIX)),
    ErrorCase('data-val-label-other-size', 'val', val_argv(), setup=broken('val', smaller_label, 'label'),
              expect=(LABEL % 'val', 'is 32x16 pixels', LABEL_FIX)),
    ErrorCase('data-val-workers-label-3-channels', 'val', val_argv('--num_workers', '1'),
              setup=broken('val', colour_label, 'label'),
              expect=(LABEL % 'val', 'has 3 channels', LABEL_FIX)),
    ErrorCase('data-val-label-16bit-out-of-range', 'val', val_argv(),
              setup=broken('val', label_16bit_with(19), 'label'),
              expect=(LABEL % 'val', 'holds values [19] outside [0, 19)')),
    # ---- the converter (2 workers: the message crosses the process pool)
    ErrorCase('data-convert-polygons-truncated', 'script:tools/convert_cityscapes.py',
              convert_argv('--num_workers', '2'), setup=polygons(json.dumps(POLYGONS)[:40]), absent=no_bad_label,
              expect=(JSON, 'not valid JSON', *POLYGON_FIX)),
    ErrorCase('data-convert-polygons-empty', 'script:tools/convert_cityscapes.py', convert_argv('--num_workers', '1'),
              setup=polygons(''), absent=no_bad_label, expect=(JSON, 'not valid JSON', *POLYGON_FIX)),
    ErrorCase('data-convert-polygons-missing-size', 'script:tools/convert_cityscapes.py',
              convert_argv('--num_workers', '2'), absent=no_bad_label,
              setup=polygons(json.dumps({k: v for k, v in POLYGONS.items() if k != 'imgWidth'})),
              expect=(JSON, '"imgWidth" is missing', *POLYGON_FIX)),
    ErrorCase('data-convert-polygons-bad-point', 'script:tools/convert_cityscapes.py',
              convert_argv('--num_workers', '1'), absent=no_bad_label,
              setup=polygons(json.dumps({**POLYGONS, 'objects': [{'label': 'car', 'polygon': [[1, 2], [3]]}]})),
              expect=(JSON, 'object 0 is not a list of [x, y] number pairs', *POLYGON_FIX)),
    ErrorCase('data-convert-polygons-unknown-label', 'script:tools/convert_cityscapes.py',
              convert_argv('--num_workers', '2'), absent=no_bad_label,
              setup=polygons(json.dumps({**POLYGONS, 'objects': [{'label': 'raod', 'polygon': [[1, 2], [3, 4]]}]})),
              expect=(JSON, "label 'raod'", "did you mean 'road'", *POLYGON_FIX)),
    # ---- the mini dataset generator
    ErrorCase('data-mini-width-zero', 'script:tools/make_mini_cityscapes.py',
              lambda ctx: ['--root', ctx.path('mini'), '--width', '0'], absent=lambda ctx: [ctx.path('mini')],
              expect=('--width must be a whole number of at least 1, got 0', '--width 512')),
    ErrorCase('data-mini-height-negative', 'script:tools/make_mini_cityscapes.py',
              lambda ctx: ['--root', ctx.path('mini'), '--height', '-8'], absent=lambda ctx: [ctx.path('mini')],
              expect=('--height must be a whole number of at least 1, got -8', '--height 256')),
    ErrorCase('data-mini-num-val-zero', 'script:tools/make_mini_cityscapes.py',
              lambda ctx: ['--root', ctx.path('mini'), '--num_val', '0'], absent=lambda ctx: [ctx.path('mini')],
              expect=('--num_val must be a whole number of at least 1, got 0',)),
    ErrorCase('data-mini-root-is-a-file', 'script:tools/make_mini_cityscapes.py',
              lambda ctx: ['--root', ctx.path('afile'), '--num_train', '1', '--num_val', '1', '--width', '8',
                           '--height', '4'],
              setup=lambda ctx: open(ctx.path('afile'), 'w').close(),
              absent=lambda ctx: [ctx.path('afile', 'leftImg8bit')],
              expect=("--root '{tmp}/afile' is a file, not a folder", 'e.g. --root data/mini_cityscapes')),
]
