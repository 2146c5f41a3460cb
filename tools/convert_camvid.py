"""Turn CamVid's 32-class colour labels into the 11-class index labels DDRNet, PIDNet and RDRNet
train on (exact colour match; the other 21 classes and unknown colours become 255 = ignore),
printing the pixel count of every colour found.

    <root>/images/<stem>.png, <root>/labels/<stem>_L.png, <root>/{train,val,test}.txt
        -> <root>/labels_11/<stem>.png

    python tools/convert_camvid.py --root data/camvid [--overwrite]
"""
import argparse

from paddleseg_ddr.cli import run
from paddleseg_ddr.datasets.camvid_labels import convert_camvid


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/camvid', help='folder holding images/, labels/ and the split lists')
    p.add_argument('--overwrite', action='store_true', help='replace labels_11/*.png written before')
    args = p.parse_args()
    convert_camvid(args.root, overwrite=args.overwrite)


if __name__ == '__main__':
    run(main)
