"""The main job on the bundled mini dataset: generate a mini Cityscapes, train DDRNet-23-slim
on it, evaluate the best checkpoint and print the per-class table.

    python tools/quickstart.py [--iters 300] [--save_dir output/quickstart]
"""
import argparse
import os
import time

from paddleseg_ddr.cli import run, train_main, val_main
from paddleseg_ddr.datasets import generate_mini_cityscapes

CONFIG = os.path.join(os.path.dirname(__file__), '..', 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', default='data/mini_cityscapes', help='Where the mini dataset is (made if absent).')
    p.add_argument('--save_dir', default='output/quickstart')
    p.add_argument('--iters', type=int, default=None, help='Training iterations (config default: 300).')
    p.add_argument('--device', default=None)
    p.add_argument('--num_workers', type=int, default=2)
    args = p.parse_args()

    start = time.time()
    info = generate_mini_cityscapes(args.root)
    print(f"mini Cityscapes in '{info['root']}': {info['train']} train / {info['val']} val images")
    data_opts = [f'train_dataset.dataset_root={args.root}', f'val_dataset.dataset_root={args.root}']
    common = ['--config', CONFIG, '--num_workers', str(args.num_workers), '--opts', *data_opts]
    if args.device:
        common = ['--device', args.device, *common]
    train_args = ['--do_eval', '--save_dir', args.save_dir, '--log_iters', '20', '--save_interval', '100', *common]
    if args.iters:
        train_args = ['--iters', str(args.iters), *train_args]
    summary = train_main(train_args)
    metrics = val_main(['--model_path', os.path.join(args.save_dir, 'best_model', 'model.pdparams'), *common])
    print(f"Quickstart done in {time.time() - start:.0f}s: best val mIoU {metrics['miou']:.4f} "
          f"(iteration {summary['best_iter']}), weights in {os.path.join(args.save_dir, 'best_model')}")


if __name__ == '__main__':
    run(main)
