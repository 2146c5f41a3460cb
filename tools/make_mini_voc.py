"""Generate the miniature Pascal VOC 2012 + SBD (the releases' layouts, drawn scenes), then
make its augmented set with the same converter as for the real data.

    python tools/make_mini_voc.py --root data/mini_voc [--num_trainaug 24 --num_val 8 --width 160 --height 120]
"""
import argparse
import os
import time

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets.mini_voc import generate_mini_voc
from paddleseg_ddr.datasets.voc_aug import convert_voc_aug


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/mini_voc')
    p.add_argument('--num_trainaug', type=int, default=24)
    p.add_argument('--num_val', type=int, default=8)
    p.add_argument('--width', type=int, default=160)
    p.add_argument('--height', type=int, default=120)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no_convert', action='store_true',
                   help='Leave out SegmentationClassAug/ and trainaug.txt (make them with tools/convert_voc_aug.py).')
    args = p.parse_args()
    start = time.time()
    info = generate_mini_voc(args.root, args.num_trainaug, args.num_val, args.width, args.height, args.seed)
    print(f"VOC train {info['voc_train']} / val {info['voc_val']}, SBD train {info['sbd_train']} / val "
          f"{info['sbd_val']} in '{info['root']}'")
    if not args.no_convert:
        voc = os.path.join(info['voc_root'], 'VOC2012')
        done = os.path.isfile(os.path.join(voc, 'ImageSets', 'Segmentation', 'trainaug.txt'))
        counts = convert_voc_aug(info['voc_root'], info['sbd_root'], overwrite=done)
        print(f"trainaug: {counts['trainaug']} images ({counts['from_voc']} VOC labels, {counts['from_sbd']} SBD labels)")
    print(f"dataset_root: {info['voc_root']} ({time.time() - start:.1f}s)")


if __name__ == '__main__':
    run(main)
