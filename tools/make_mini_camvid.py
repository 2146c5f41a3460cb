"""Generate the mini CamVid: the 32-class colour-label release layout (images/, labels/*_L.png,
train/val/test.txt in SegNet's format) with procedurally drawn road scenes.

    python tools/make_mini_camvid.py --root data/mini_camvid [--num_train 24 --num_val 8 --num_test 8 --width 240 --height 180]
    python tools/convert_camvid.py --root data/mini_camvid      # then, as for the real release
"""
import argparse
import time

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets.mini_camvid import generate_mini_camvid


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/mini_camvid')
    p.add_argument('--num_train', type=int, default=24)
    p.add_argument('--num_val', type=int, default=8)
    p.add_argument('--num_test', type=int, default=8)
    p.add_argument('--width', type=int, default=240)
    p.add_argument('--height', type=int, default=180)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    start = time.time()
    info = generate_mini_camvid(args.root, args.num_train, args.num_val, args.num_test, args.width, args.height,
                                args.seed)
    print(f"{info['train']} train / {info['val']} val / {info['test']} test images in '{info['root']}' "
          f"({time.time() - start:.1f}s)")


if __name__ == '__main__':
    run(main)
