"""Compare the label maps of a TIPC run with the expected ones kept in test_tipc/results/.

    python test_tipc/compare_results.py --gt_dir test_tipc/results/ddrnet23_slim/lite_train_lite_infer \
        --log_dir test_tipc/output/ddrnet23_slim/lite_train_lite_infer [--min_agreement 0.99]
    python test_tipc/compare_results.py ... --update      # make the expected results from this run

Every inference run of the mode (each ``*_results`` folder: oneDNN on/off, batch sizes) must
give, for every expected image, the same class on at least ``--min_agreement`` of the pixels
(float rounding across thread counts and oneDNN can flip a few boundary pixels). Prints one
line per run; exits 1 if a run is missing an image or disagrees.
"""
import argparse
import glob
import os
import shutil
import sys

import cv2
import numpy as np


def label_maps(folder):
    root = os.path.join(folder, 'label')
    return {os.path.relpath(f, root): f for f in sorted(glob.glob(os.path.join(root, '**', '*.png'), recursive=True))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--gt_dir', required=True, help='Expected results: <gt_dir>/label/**.png')
    p.add_argument('--log_dir', required=True, help='A mode folder of test_tipc/output/<model>/')
    p.add_argument('--min_agreement', type=float, default=0.99)
    p.add_argument('--update', action='store_true', help="Copy the first run's label maps to --gt_dir.")
    args = p.parse_args(argv)
    runs = sorted(d for d in glob.glob(os.path.join(args.log_dir, '*_results')) if os.path.isdir(d))
    if not runs:
        print(f"no inference results (*_results folders) in '{args.log_dir}': run the TIPC mode first")
        return 1
    if args.update:
        shutil.rmtree(args.gt_dir, ignore_errors=True)
        shutil.copytree(os.path.join(runs[0], 'label'), os.path.join(args.gt_dir, 'label'))
        print(f"expected results written to '{args.gt_dir}' from '{runs[0]}'")
        return 0
    expected = label_maps(args.gt_dir)
    if not expected:
        print(f"no expected label maps in '{args.gt_dir}/label'")
        return 1
    failures = 0
    for run in runs:
        found = label_maps(run)
        missing = sorted(set(expected) - set(found))
        agreement = [float((cv2.imread(found[k], cv2.IMREAD_UNCHANGED) == cv2.imread(f, cv2.IMREAD_UNCHANGED)).mean())
                     if k in found else 0.0 for k, f in expected.items()]
        ok = not missing and min(agreement) >= args.min_agreement
        failures += not ok
        detail = f'missing {missing}' if missing else f'pixel agreement min {min(agreement):.4f} mean {np.mean(agreement):.4f}'
        print(f"{'PASS' if ok else 'FAIL'} {os.path.basename(run)}: {len(expected)} images, {detail}")
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
