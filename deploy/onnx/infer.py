"""ONNX Runtime deployment of an export written with export.py --format onnx:
python deploy/onnx/infer.py --model output/inference/model.onnx --image_path <image|folder|list> \
    --cpu_threads 2 --save_dir output/infer_onnx [--benchmark True]"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

from paddleseg_ddr.cli import onnx_infer_main, run  # noqa: E402

if __name__ == '__main__':
    run(onnx_infer_main)
