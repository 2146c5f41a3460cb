"""Error cases of CamVid data (see tests/error_cases.py): the look-alikes a user may point
train.py at, which would otherwise train on the wrong classes, and the converter's refusals."""
import os

import cv2
import numpy as np

from error_cases import ErrorCase

NORMALIZE = {'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}
STEM = '0001TP_006690'


def camvid_config(ctx):
    root = ctx.path('camvid')
    dataset = {'type': 'DDRCamVid', 'dataset_root': root, 'transforms': [NORMALIZE]}
    return ctx.config(train_dataset={**dataset, 'mode': 'trainval'}, val_dataset={**dataset, 'mode': 'test'},
                      model={'type': 'DDRNet23Slim', 'num_classes': 11, 'pretrained': None})


def train_argv(ctx):
    return ['--config', camvid_config(ctx), '--iters', '1', '--save_dir', ctx.path('out')]


def no_checkpoint(ctx):
    return [ctx.path('out', 'iter_1')]


def paddleseg_camvid_tar(ctx):
    root = ctx.path('camvid')
    for d in ('annot', 'images'):
        os.makedirs(os.path.join(root, d))
    for split in ('train', 'val', 'test'):
        with open(os.path.join(root, split + '.txt'), 'w') as f:
            f.write(f'images/{STEM}.png annot/{STEM}.png\n')


def release(ctx, converted=False, colour_in_rdrnet_layout=False):
    """A 32x24 CamVid: the release (images/, labels/*_L.png, split lists) or RDRNet's layout."""
    root = ctx.path('camvid')
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)
    colour = np.zeros((24, 32, 3), np.uint8)
    colour[:12] = (128, 128, 128)   # Sky (RGB)
    colour[12:] = (128, 64, 128)    # Road
    if colour_in_rdrnet_layout:
        for split in ('train', 'val', 'test'):
            os.makedirs(os.path.join(root, split)), os.makedirs(os.path.join(root, split + '_labels'))
            cv2.imwrite(os.path.join(root, split, STEM + '.png'), image)
            cv2.imwrite(os.path.join(root, split + '_labels', STEM + '_L.png'), colour[..., ::-1])
        return
    os.makedirs(os.path.join(root, 'images')), os.makedirs(os.path.join(root, 'labels'))
    cv2.imwrite(os.path.join(root, 'images', STEM + '.png'), image)
    cv2.imwrite(os.path.join(root, 'labels', STEM + '_L.png'), colour[..., ::-1])
    for split in ('train', 'val', 'test'):
        with open(os.path.join(root, split + '.txt'), 'w') as f:
            f.write(STEM + '\n')


CASES = [
    ErrorCase('camvid-train-paddleseg-camvid-tar', 'train', train_argv, setup=paddleseg_camvid_tar,
              absent=no_checkpoint,
              expect=("PaddleSeg's camvid.tar", 'another order', 'Sky, Building, Pole', '0 Bicyclist',
                      'tools/convert_camvid.py')),
    ErrorCase('camvid-train-release-not-converted', 'train', train_argv, setup=release, absent=no_checkpoint,
              expect=("colour labels (labels/*_L.png)", 'labels_11', 'python tools/convert_camvid.py --root')),
    ErrorCase('camvid-train-colour-labels-in-rdrnet-layout', 'train', train_argv,
              setup=lambda ctx: release(ctx, colour_in_rdrnet_layout=True), absent=no_checkpoint,
              expect=(f'{STEM}_L.png', 'is a colour image (R+G+B)', 'python tools/convert_camvid.py')),
]
