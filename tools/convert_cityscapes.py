"""Make *_gtFine_labelTrainIds.png (19 classes, 255 = ignore) from the official
*_gtFine_polygons.json with cityscapesscripts.

    python tools/convert_cityscapes.py --dataset_root data/cityscapes [--num_workers 2] [--splits train val]
"""
import argparse
import os
import time

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets import convert_cityscapes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset_root', default='data/cityscapes')
    p.add_argument('--splits', nargs='+', default=None, help='Default: every split folder under gtFine/.')
    p.add_argument('--num_workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--overwrite', action='store_true', help='Re-render labels that are already up to date.')
    args = p.parse_args()
    start = time.time()
    n = convert_cityscapes(args.dataset_root, args.splits, args.num_workers, args.overwrite)
    print(f"wrote {n} *_gtFine_labelTrainIds.png under '{args.dataset_root}' ({time.time() - start:.1f}s)")


if __name__ == '__main__':
    run(main)
