"""Compare the label maps of every inference run of a TIPC mode with reference label maps.

The reference is the trained checkpoint's own prediction in dygraph, made with predict.py on
the images the chain inferred, so the check is independent of the export and of Paddle
Inference (the exported model must give the checkpoint's label maps):

    python predict.py --config test_tipc/configs/ddrnet23_slim/ddrnet23_slim_mini_cityscapes.yml \\
        --model_path test_tipc/output/ddrnet23_slim/lite_train_lite_infer/norm_train_gpus_-1_autocast_null/best_model/model.pdparams \\
        --image_path test_tipc/data/mini_cityscapes/infer.list --save_dir test_tipc/output/ddrnet23_slim/dygraph
    python test_tipc/compare_results.py --gt_dir test_tipc/output/ddrnet23_slim/dygraph \\
        --log_dir test_tipc/output/ddrnet23_slim/lite_train_lite_infer

Every ``*_results`` folder of ``--log_dir`` (oneDNN on/off, batch sizes, ...) must give, on
every reference image, the reference class on at least ``--min_agreement`` of the pixels
(default 0.999: measured 1.0; kernels summing in another order can flip a pixel whose two
best classes tie). Prints one line per run; exits 1 if a run misses an image or disagrees.
"""
import argparse
import glob
import os
import sys

import cv2
import numpy as np


def label_maps(folder):
    """{path relative to folder/label: file} of every PNG under folder/label."""
    root = os.path.join(folder, 'label')
    return {os.path.relpath(f, root): f for f in sorted(glob.glob(os.path.join(root, '**', '*.png'), recursive=True))}


def pixel_agreement(found, expected):
    a, b = cv2.imread(found, cv2.IMREAD_UNCHANGED), cv2.imread(expected, cv2.IMREAD_UNCHANGED)
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float((a == b).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--gt_dir', required=True, help='Reference results: <gt_dir>/label/**.png (predict.py --save_dir).')
    p.add_argument('--log_dir', required=True, help='A mode folder of test_tipc/output/<model>/.')
    p.add_argument('--min_agreement', type=float, default=0.999)
    args = p.parse_args(argv)
    runs = sorted(d for d in glob.glob(os.path.join(args.log_dir, '*_results')) if os.path.isdir(d))
    if not runs:
        print(f"no inference results (*_results folders) in '{args.log_dir}': run the TIPC mode first")
        return 1
    expected = label_maps(args.gt_dir)
    if not expected:
        print(f"no reference label maps in '{args.gt_dir}/label': make them with predict.py (see --help)")
        return 1
    failures = 0
    for run in runs:
        found = label_maps(run)
        missing = sorted(set(expected) - set(found))
        agreement = [pixel_agreement(found[k], f) if k in found else 0.0 for k, f in expected.items()]
        ok = not missing and min(agreement) >= args.min_agreement
        failures += not ok
        detail = f'missing {missing}' if missing else f'pixel agreement min {min(agreement):.6f} mean {np.mean(agreement):.6f}'
        print(f"{'PASS' if ok else 'FAIL'} {os.path.basename(run)}: {len(expected)} images, {detail}")
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
