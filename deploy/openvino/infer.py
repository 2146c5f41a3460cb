"""OpenVINO deployment of an export (its model.onnx, an OpenVINO IR, or the Paddle graph converted on the fly):
python deploy/openvino/infer.py --model output/inference --image_path <image|folder|list> \
    --cpu_threads 2 --save_dir output/infer_openvino [--precision fp32|bf16|int8] [--benchmark True]"""

from paddleseg_ddr.cli import openvino_infer_main, run

if __name__ == '__main__':
    run(openvino_infer_main)
