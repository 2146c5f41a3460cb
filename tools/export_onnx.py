"""Convert an existing export (model.json + model.pdiparams) to ONNX with paddle2onnx:
python tools/export_onnx.py --model_dir output/inference [--save_file output/inference/model.onnx]
The ONNX model is recorded in the export's deploy.yaml (onnx_model), so the folder is the same
as one written by `python export.py ... --format onnx` and deploy/onnx/infer.py runs on it."""
import argparse

from paddleseg_ddr.cli import run
from paddleseg_ddr.deploy.onnx_export import OPSET, convert_to_onnx


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model_dir', required=True, help='The --save_dir of export.py.')
    p.add_argument('--save_file', default=None,
                   help='Default: <model_dir>/model.onnx. A file outside model_dir is not recorded in deploy.yaml.')
    p.add_argument('--opset', type=int, default=OPSET)
    args = p.parse_args(argv)
    save_file = convert_to_onnx(args.model_dir, args.save_file, args.opset)
    print(f'Wrote {save_file}')
    return save_file


if __name__ == '__main__':
    run(main)
