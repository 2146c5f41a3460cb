"""Train a model: python train.py --config configs/ddrnet/ddrnet23_slim_cityscapes_1024x1024_120k.yml --do_eval"""
from paddleseg_ddr.cli import run, train_main

if __name__ == '__main__':
    run(train_main)
