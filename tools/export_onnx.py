"""Convert an existing export (model.json + model.pdiparams) to ONNX with paddle2onnx:
python tools/export_onnx.py --model_dir output/inference [--save_file output/inference/model.onnx]
For ONNX Runtime prefer `python export.py ... --format onnx`, which keeps the native resize op
(this converts whatever resize the export has, e.g. the oneDNN-friendly gathers)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

from paddleseg_ddr.cli import run  # noqa: E402
from paddleseg_ddr.deploy.onnx_export import OPSET, convert_to_onnx  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model_dir', required=True, help='The --save_dir of export.py.')
    p.add_argument('--save_file', default=None, help='Default: <model_dir>/model.onnx.')
    p.add_argument('--opset', type=int, default=OPSET)
    args = p.parse_args()
    print(f'Wrote {convert_to_onnx(args.model_dir, args.save_file, args.opset)}')


if __name__ == '__main__':
    run(main)
