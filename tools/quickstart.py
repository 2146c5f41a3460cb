"""The main job on the bundled mini dataset, ending the way a user's own work would: generate a
mini Cityscapes, train DDRNet-23-slim on it, evaluate the best checkpoint (per-class table),
export it, run the fastest CPU path on the val images (its mIoU next to the dygraph one, and
its latency), and write pictures: per val image image | prediction | ground truth, and the
training curves.

    python tools/quickstart.py [--iters 300] [--save_dir output/quickstart]
        [--engine auto|onnxruntime|openvino] [--precision auto|fp32|bf16]

The fastest CPU path (``auto``), as measured by tools/benchmark.py: OpenVINO computing in bf16
where the CPU has bf16 (AVX-512 BF16 / AMX), else ONNX Runtime in fp32; both with the exact
fast head (paddleseg_ddr/deploy/fast_head.py) doing the final upsample + argmax.
"""
import argparse
import os
import time

from paddleseg_ddr.cli import export_main, run, train_main, val_main
from paddleseg_ddr.datasets import generate_mini_cityscapes

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')


def fastest_cpu_path(engine='auto', precision='auto'):
    """(engine, precision) of the fastest CPU path here (see the module docstring)."""
    if engine == 'auto' or precision == 'auto':
        bf16 = False
        try:
            import openvino

            from paddleseg_ddr.deploy.openvino_runtime import bf16_supported
            bf16 = bf16_supported(openvino.Core())
        except ImportError:
            pass
        if engine == 'auto':
            engine = 'openvino' if bf16 and precision in ('auto', 'bf16') else 'onnxruntime'
        if precision == 'auto':
            precision = 'bf16' if bf16 and engine == 'openvino' else 'fp32'
    return engine, precision


def deployed_run(export_dir, config, data_opts, engine, precision, pictures_dir, cpu_threads=None):
    """Evaluate the export on the val set with the fast-head runner (val.py's metrics), and
    write one side-by-side picture per val image; returns (metrics, latency dict, pictures)."""
    import cv2
    import numpy as np

    from paddleseg_ddr.deploy.fast_head import FastHeadRunner
    from paddleseg_ddr.deploy.predict import read_image
    from paddleseg_ddr.deploy.report import write_side_by_side
    from paddleseg_ddr.engine import Builder, evaluate, load_config
    from paddleseg_ddr.errors import UserError

    runner = FastHeadRunner(export_dir, engine, precision, cpu_threads)
    try:
        cfg = load_config(config, opts=data_opts)
        cfg.dic['val_dataset']['transforms'] = runner.transforms_cfg
        dataset = Builder(cfg).val_dataset
        metrics = evaluate(runner, dataset, class_names=list(runner.meta.classes) if runner.meta else None)
        times, pictures = [], []
        name = f"{engine} {precision}"
        for image_path, label_path in dataset.file_list:
            bgr, why = read_image(image_path)
            if bgr is None:
                raise UserError(f"val image '{image_path}' {why}.")
            start = time.perf_counter()
            label = runner(bgr)
            times.append(time.perf_counter() - start)
            truth = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)  # training ids, 255 ignored
            stem = os.path.splitext(os.path.basename(image_path))[0]
            pictures.append(write_side_by_side(os.path.join(pictures_dir, stem + '.png'), bgr, label, truth,
                                               runner.meta, prediction_title=f'prediction ({name})'))
        n = max(runner.images, 1)
        latency = {'median_ms': 1000 * float(np.median(times)), 'size': f'{bgr.shape[1]}x{bgr.shape[0]}',
                   **{k: 1000 * v / n for k, v in runner.times.items()}}
    finally:
        runner.close()
    return metrics, latency, pictures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/mini_cityscapes', help='Where the mini dataset is (made if absent).')
    p.add_argument('--save_dir', default='output/quickstart')
    p.add_argument('--iters', type=int, default=None, help='Training iterations (config default: 300).')
    p.add_argument('--device', default=None)
    p.add_argument('--num_workers', type=int, default=2)
    p.add_argument('--engine', default='auto', choices=['auto', 'onnxruntime', 'openvino'],
                   help='CPU engine of the deployed run (auto: the fastest here).')
    p.add_argument('--precision', default='auto', choices=['auto', 'fp32', 'bf16'],
                   help='Precision of the deployed run (auto: bf16 where the CPU has it, with OpenVINO).')
    args = p.parse_args()

    start = time.time()
    info = generate_mini_cityscapes(args.root)
    print(f"mini Cityscapes in '{info['root']}': {info['train']} train / {info['val']} val images")
    data_opts = [f'train_dataset.dataset_root={args.root}', f'val_dataset.dataset_root={args.root}']
    common = ['--config', CONFIG, '--num_workers', str(args.num_workers), '--opts', *data_opts]
    if args.device:
        common = ['--device', args.device, *common]
    train_args = ['--do_eval', '--use_vdl', '--save_dir', args.save_dir, '--log_iters', '20', '--save_interval', '100',
                  *common]
    if args.iters:
        train_args = ['--iters', str(args.iters), *train_args]
    summary = train_main(train_args)
    best = os.path.join(args.save_dir, 'best_model', 'model.pdparams')
    metrics = val_main(['--model_path', best, *common])

    # deploy it: export, run the fastest CPU path on the val images, pictures
    export_dir = os.path.join(args.save_dir, 'inference')
    export_main(['--config', CONFIG, '--model_path', best, '--save_dir', export_dir, '--format', 'onnx',
                 '--opts', *data_opts])
    engine, precision = fastest_cpu_path(args.engine, args.precision)
    pictures_dir = os.path.join(args.save_dir, 'pictures')
    deployed, latency, pictures = deployed_run(export_dir, CONFIG, data_opts, engine, precision, pictures_dir)
    from paddleseg_ddr.deploy.report import plot_training_curves, read_training_curves
    curves = plot_training_curves(read_training_curves(args.save_dir), os.path.join(pictures_dir, 'training_curves.png'),
                                  title=f"DDRNet-23-slim on the mini Cityscapes (best val mIoU {metrics['miou']:.4f})")

    print(f"\nQuickstart done in {time.time() - start:.0f}s: best val mIoU {metrics['miou']:.4f} "
          f"(iteration {summary['best_iter']}), weights in {os.path.join(args.save_dir, 'best_model')}")
    print(f"Deployed ({engine} {precision}, exact fast head; export in {export_dir}): val mIoU {deployed['miou']:.4f} "
          f"(dygraph {metrics['miou']:.4f}); {latency['median_ms']:.1f} ms per {latency['size']} image "
          f"(preprocess {latency['preprocess']:.1f} ms, network + upsample/argmax {latency['inference']:.1f} ms, "
          f"postprocess {latency['postprocess']:.1f} ms)")
    print(f"Pictures: {len(pictures)} side-by-side PNGs (image | prediction | ground truth) in {pictures_dir}; "
          f"training curves (loss, lr, val mIoU) in {curves}")


if __name__ == '__main__':
    run(main)
