"""Error cases of Pascal VOC 2012: the dataset (trainaug not prepared, a missing label, a colour
label), and the SBD converter's command line (see tests/error_cases.py).

Each case builds a small miniature of its own (6 trainaug / 2 val images of 48x40) in ctx.tmp
and damages it.
"""
import os

import yaml
from PIL import Image

from error_cases import ROOT, ErrorCase

QUICKSTART = os.path.join(ROOT, 'configs', 'quickstart', 'rdrnet_s_simple_mini_voc.yml')


def _mini(ctx, convert=True):
    from paddleseg_ddr.datasets.mini_voc import generate_mini_voc
    from paddleseg_ddr.datasets.voc_aug import convert_voc_aug
    info = generate_mini_voc(ctx.path('mini'), num_trainaug=6, num_val=2, width=48, height=40)
    if convert:
        convert_voc_aug(info['voc_root'], info['sbd_root'])
    return info


def _voc(ctx, *parts):
    return ctx.path('mini', 'VOCdevkit', 'VOC2012', *parts)


def _names(ctx, split):
    with open(_voc(ctx, 'ImageSets', 'Segmentation', split + '.txt')) as f:
        return f.read().split()


def _config(ctx):
    path = ctx.path('voc.yml')
    root = ctx.path('mini', 'VOCdevkit')
    with open(path, 'w') as f:
        yaml.safe_dump({'_base_': QUICKSTART, 'iters': 2, 'batch_size': 2,
                        'model': {'type': 'DDRNet23Slim', 'num_classes': 21, 'pretrained': None},
                        'train_dataset': {'dataset_root': root}, 'val_dataset': {'dataset_root': root}}, f)
    return path


def train_argv(*extra):
    return lambda ctx: ['--config', _config(ctx), '--save_dir', ctx.path('out'), *extra]


def no_checkpoint(ctx):
    return [ctx.path('out', 'iter_2'), ctx.path('out', 'best_model')]


def not_converted(ctx):
    _mini(ctx, convert=False)


def val_label_removed(ctx):
    _mini(ctx)
    os.remove(_voc(ctx, 'SegmentationClass', _names(ctx, 'val')[1] + '.png'))


def colour_label(ctx):
    _mini(ctx)
    for name in _names(ctx, 'trainaug'):
        path = _voc(ctx, 'SegmentationClassAug', name + '.png')
        Image.open(path).convert('RGB').save(path)


def corrupt_mat(ctx):
    _mini(ctx, convert=False)
    sbd = ctx.path('mini', 'benchmark_RELEASE', 'dataset', 'cls')
    path = os.path.join(sbd, sorted(os.listdir(sbd))[-1])
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def no_trainaug_list(ctx):
    return [_voc(ctx, 'ImageSets', 'Segmentation', 'trainaug.txt')]


CASES = [
    ErrorCase('voc-train-trainaug-not-prepared', 'train', train_argv(), setup=not_converted, absent=no_checkpoint,
              expect=("mode 'trainaug' needs the augmented set, which is not prepared", 'trainaug.txt',
                      'tools/convert_voc_aug.py', 'benchmark.tgz', 'train_dataset.mode: train')),
    ErrorCase('voc-train-val-label-missing', 'train', train_argv('--do_eval'), setup=val_label_removed,
              absent=no_checkpoint,
              expect=("1 of the 2 names in '{tmp}/mini/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt' have no label",
                      'SegmentationClass', 'VOCtrainval_11-May-2012.tar')),
    ErrorCase('voc-train-colour-label', 'train', train_argv(), setup=colour_label, absent=no_checkpoint,
              expect=("{tmp}/mini/VOCdevkit/VOC2012/SegmentationClassAug/", 'has 3 channels', 'convert_voc_aug.py',
                      '--overwrite')),
    # 2 workers: the message crosses the process pool
    ErrorCase('voc-convert-mat-truncated', 'script:tools/convert_voc_aug.py',
              lambda ctx: ['--voc_root', ctx.path('mini', 'VOCdevkit'), '--sbd_root', ctx.path('mini', 'benchmark_RELEASE'),
                           '--num_workers', '2'],
              setup=corrupt_mat, absent=no_trainaug_list,
              expect=("SBD annotation '{tmp}/mini/benchmark_RELEASE/dataset/cls/", 'cannot be read as a MATLAB file',
                      'benchmark.tgz')),
]
