"""Paddle Inference deployment of an export from export.py (CPU with oneDNN by default):
python deploy/python/infer.py --config output/inference/deploy.yaml --image_path <image|folder|list> \
    --device cpu --enable_mkldnn True --cpu_threads 2 --save_dir output/infer [--benchmark True]
python deploy/python/infer.py ... --device gpu --use_trt True --precision fp16"""

from paddleseg_ddr.cli import infer_main, run

if __name__ == '__main__':
    run(infer_main)
