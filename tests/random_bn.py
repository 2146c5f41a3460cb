"""Shared by model tests: batch norms far from identity, so that a missed or wrong fold shows."""
import numpy as np
import paddle


def randomize_bn(model, seed=0):
    """BN statistics and affine terms far from identity, so a missed or wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            n = layer.weight.shape[0]
            for p, lo, hi in ((layer.weight, 0.5, 1.5), (layer.bias, -0.3, 0.3),
                              (layer._mean, -0.3, 0.3), (layer._variance, 0.5, 2.0)):
                p.set_value(rng.uniform(lo, hi, n).astype('float32'))
