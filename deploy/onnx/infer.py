"""ONNX Runtime deployment of an export written with export.py --format onnx:
python deploy/onnx/infer.py --model output/inference/model.onnx --image_path <image|folder|list> \
    --cpu_threads 2 --save_dir output/infer_onnx [--benchmark True]"""

from paddleseg_ddr.cli import onnx_infer_main, run

if __name__ == '__main__':
    run(onnx_infer_main)
