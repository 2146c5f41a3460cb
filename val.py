"""Evaluate a model: python val.py --config <config.yml> --model_path output/best_model/model.pdparams"""
from paddleseg_ddr.cli import run, val_main

if __name__ == '__main__':
    run(val_main)
