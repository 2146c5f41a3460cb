"""Make Pascal VOC 2012's augmented training set from SBD: VOC2012/SegmentationClassAug/*.png
(palette PNGs, classes 0-20, 255 = ignore) and ImageSets/Segmentation/trainaug.txt
((SBD train + SBD val + VOC train) minus VOC val: 10,582 images on the real data).

    python tools/convert_voc_aug.py --voc_root data/VOCdevkit --sbd_root data/benchmark_RELEASE [--num_workers 2] [--overwrite]
"""
import argparse
import os
import time

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets.voc_aug import OFFICIAL_TRAINAUG, convert_voc_aug


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--voc_root', default='data/VOCdevkit', help='VOCdevkit (holding VOC2012/) of VOCtrainval_11-May-2012.tar.')
    p.add_argument('--sbd_root', default='data/benchmark_RELEASE', help="SBD's benchmark_RELEASE (holding dataset/cls/).")
    p.add_argument('--num_workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--overwrite', action='store_true', help='Write the labels and the list again if they exist.')
    args = p.parse_args()
    start = time.time()
    c = convert_voc_aug(args.voc_root, args.sbd_root, overwrite=args.overwrite, num_workers=args.num_workers)
    print(f"inputs: VOC train {c['voc_train']}, VOC val {c['voc_val']}, SBD train {c['sbd_train']}, SBD val {c['sbd_val']} "
          f"({c['sbd_in_voc_val']} SBD images are VOC val images: left out)")
    print(f"trainaug: {c['trainaug']} images -> '{c['list']}'")
    print(f"labels: {c['from_voc']} copied from SegmentationClass (VOC train), {c['from_sbd']} converted from SBD "
          f"-> '{c['label_dir']}' ({time.time() - start:.1f}s)")
    if c['official'] and c['trainaug'] != OFFICIAL_TRAINAUG:
        print(f"warning: the releases' lists give {OFFICIAL_TRAINAUG} images, these gave {c['trainaug']}: check the lists.")


if __name__ == '__main__':
    run(main)
