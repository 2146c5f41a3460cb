"""Shared by the deploy tests: run an export with Paddle Inference, inputs to compare on."""
import glob
import os

import cv2
import numpy as np
from paddle import inference

from paddleseg_ddr.deploy.paddle_inference import apply_config_calls, config_calls

NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]


def predictor(model_dir, onednn=False):
    """A Paddle Inference predictor configured as the product configures it."""
    config = inference.Config(os.path.join(model_dir, 'model.json'), os.path.join(model_dir, 'model.pdiparams'))
    apply_config_calls(config, config_calls('cpu', enable_mkldnn=onednn))
    return inference.create_predictor(config)


def run(pred, x):
    handle = pred.get_input_handle(pred.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    pred.run()
    return pred.get_output_handle(pred.get_output_names()[0]).copy_to_cpu()


def inputs(mini_root):
    rng = np.random.default_rng(0)
    path = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    image = ((image - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
    yield 'random 128x256', rng.normal(size=(1, 3, 128, 256)).astype(np.float32)
    yield 'random 200x328', rng.normal(size=(1, 3, 200, 328)).astype(np.float32)   # not a multiple of 64
    yield 'mini image 256x512', image
    yield 'mini crop 200x328', np.ascontiguousarray(image[:, :, 20:220, 50:378])
