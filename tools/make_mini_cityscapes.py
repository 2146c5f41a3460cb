"""Generate the mini Cityscapes (official layout, procedurally drawn road scenes).

    python tools/make_mini_cityscapes.py --root data/mini_cityscapes [--num_train 40 --num_val 10 --width 512 --height 256]
"""
import argparse
import time

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets import generate_mini_cityscapes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/mini_cityscapes')
    p.add_argument('--num_train', type=int, default=40)
    p.add_argument('--num_val', type=int, default=10)
    p.add_argument('--width', type=int, default=512)
    p.add_argument('--height', type=int, default=256)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num_workers', type=int, default=1)
    p.add_argument('--no_convert', action='store_true', help='Skip making *_gtFine_labelTrainIds.png.')
    args = p.parse_args()
    start = time.time()
    info = generate_mini_cityscapes(args.root, args.num_train, args.num_val, args.width, args.height, args.seed,
                                    convert=not args.no_convert, num_workers=args.num_workers)
    print(f"{info['train']} train / {info['val']} val images in '{info['root']}' ({time.time() - start:.1f}s)")


if __name__ == '__main__':
    run(main)
