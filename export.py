"""Export a static inference graph:
python export.py --config <config.yml> --model_path output/best_model/model.pdparams --save_dir output/inference"""
from paddleseg_ddr.cli import export_main, run

if __name__ == '__main__':
    run(export_main)
