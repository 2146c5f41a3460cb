"""Evaluate a model on its config's val_dataset:
python val.py --config <config.yml> --model_path output/best_model/model.pdparams          # a checkpoint (dygraph)
python val.py --config <config.yml> --model_dir output/inference \
    [--engine paddle|onnxruntime|openvino] [--precision fp32|bf16|int8]                    # an export, as deployed"""
from paddleseg_ddr.cli import run, val_main

if __name__ == '__main__':
    run(val_main)
