"""int8 post-training quantization of an export, calibrated on training images.

    # an existing export (made with --format onnx, or converted by tools/export_onnx.py)
    python tools/quantize.py --config <training config> --model_dir output/inference --calib_images 16
    # or straight from a trained checkpoint: export (fp32 + ONNX) into --model_dir, then quantize
    python tools/quantize.py --config <training config> --model_path output/best_model/model.pdparams \\
        --model_dir output/inference --calib_images 16

Writes <model_dir>/model.int8.onnx (ONNX Runtime QDQ: int8 convolutions but the first and the
classifier, the rest float) and
records it in deploy.yaml (precisions.int8). Evaluate and run it with --precision int8:
    python val.py --config <training config> --model_dir output/inference --engine onnxruntime --precision int8
"""
import argparse
import os

from paddleseg_ddr.cli import run
from paddleseg_ddr.deploy.quantize import DEFAULT_OPS, KEEP_FLOAT, METHODS
from paddleseg_ddr.errors import UserError


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', required=True, help='The training config: calibration images come from its '
                   'train_dataset.')
    p.add_argument('--model_dir', required=True, help='The export folder (written by export.py, or by this tool '
                   'with --model_path); other files in it are kept.')
    p.add_argument('--model_path', default=None, help='A trained checkpoint: export it (fp32 + ONNX) into '
                   '--model_dir first.')
    p.add_argument('--calib_images', type=int, default=16, help='Training images to calibrate on (default 16; '
                   'their activations are held in memory during calibration), '
                   'drawn deterministically with --seed.')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--method', default='percentile', choices=METHODS,
                   help='Calibration of the activation ranges (default percentile, 99.999%%).')
    p.add_argument('--keep_float', nargs='+', default=list(KEEP_FLOAT), metavar='CONV',
                   help="Convolutions left in float: first_conv, last_conv (the classifier; default both), or none.")
    p.add_argument('--quantize_ops', nargs='+', default=list(DEFAULT_OPS), metavar='OP',
                   help="ONNX op types to quantize (default: Conv; 'all': every op ONNX Runtime can).")
    p.add_argument('--opts', nargs='+', default=None, metavar='KEY=VALUE', help='Override config entries.')
    return p


def main(argv=None):
    from paddleseg_ddr.cli import export_main
    from paddleseg_ddr.deploy.quantize import quantize_from_config
    from paddleseg_ddr.engine import load_config

    args = parser().parse_args(argv)
    if args.calib_images < 1:
        raise UserError(f'--calib_images must be a positive number of images, got {args.calib_images}.')
    cfg = load_config(args.config, opts=args.opts)
    if args.model_path:
        if not os.path.isfile(args.model_path):
            raise UserError(f"--model_path '{args.model_path}' does not exist: give a trained checkpoint "
                            '(e.g. output/best_model/model.pdparams).')
        export_main(['--config', args.config, '--model_path', args.model_path, '--save_dir', args.model_dir,
                     '--format', 'onnx'] + (['--opts', *args.opts] if args.opts else []))
    ops = None if args.quantize_ops == ['all'] else args.quantize_ops
    keep = [] if args.keep_float == ['none'] else args.keep_float
    entry = quantize_from_config(cfg, args.model_dir, args.calib_images, args.method, ops, keep, args.seed,
                                 config_path=args.config)
    print(f"Wrote {os.path.join(args.model_dir, entry['onnx_model'])} (precisions.int8 in deploy.yaml)")
    return entry


if __name__ == '__main__':
    run(main)
