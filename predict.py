"""Predict label maps, pseudo-colour maps and overlays:
python predict.py --config <config.yml> --model_path <weights> --image_path <image|folder|list> --save_dir output/result
python predict.py --model_dir output/inference --image_path ...      # an export from export.py"""
from paddleseg_ddr.cli import predict_main, run

if __name__ == '__main__':
    run(predict_main)
