"""Structural re-parameterisation for deployment: turn a trained network into an equivalent
one with fewer layers before it is exported.

Every block that can be fused knows how: it has a ``reparameterize()`` method that rewrites
its own sub-layers (DDRNet's residual blocks fold each conv+BN pair; RDRNet's blocks
merge their three training paths into one 3x3 convolution). :func:`reparameterize` walks the
network and calls them; ``nn.Sequential`` containers, which are not ours, get the generic
rule: a ``Conv2D`` directly followed by a ``BatchNorm2D`` is folded.

The result computes the same function in eval mode (to float rounding) and has no batch
norm to train: it is for export and inference only.
"""
import numpy as np
import paddle
import paddle.nn as nn

from ..errors import UserError


def bn_scale_shift(bn):
    """(scale, shift) float64 arrays with bn(x) = scale * x + shift per channel (eval mode)."""
    mean, var = bn._mean.numpy().astype(np.float64), bn._variance.numpy().astype(np.float64)
    gamma = bn.weight.numpy().astype(np.float64) if bn.weight is not None else np.ones_like(mean)
    beta = bn.bias.numpy().astype(np.float64) if bn.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn._epsilon)
    return scale, beta - mean * scale


def conv_bn_kernel_bias(conv, bn):
    """(kernel, bias) float64 arrays of the convolution equal to bn(conv(x)) in eval mode.

    bn(conv(x)) = gamma * (W x + b - mean) / sqrt(var + eps) + beta
                = (s * W) x + s * (b - mean) + beta,  s = gamma / sqrt(var + eps)
    """
    if not isinstance(conv, nn.Conv2D) or not isinstance(bn, nn.BatchNorm2D):
        raise TypeError(f'conv_bn_kernel_bias needs Conv2D + BatchNorm2D, got {type(conv).__name__} + {type(bn).__name__}')
    if conv._data_format != 'NCHW':
        raise ValueError('conv+BN folding supports NCHW convolutions only.')
    scale, shift = bn_scale_shift(bn)
    kernel = conv.weight.numpy().astype(np.float64) * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.numpy().astype(np.float64) if conv.bias is not None else np.zeros_like(scale)
    return kernel, bias * scale + shift


def conv_with(template, kernel, bias):
    """A new ``Conv2D`` with ``template``'s geometry (stride, padding, groups, dilation) and
    the given kernel and bias (NumPy arrays; the kernel's shape may differ from the template's)."""
    out_channels, in_per_group, kh, kw = kernel.shape
    conv = nn.Conv2D(in_per_group * template._groups, out_channels, (kh, kw), stride=template._stride,
                     padding=template._padding, dilation=template._dilation, groups=template._groups)
    conv.weight.set_value(kernel.astype(np.float32))
    conv.bias.set_value(bias.astype(np.float32))
    return conv


@paddle.no_grad()
def fold_conv_bn(conv, bn):
    """Fold ``bn`` (eval-mode statistics) into ``conv`` in place; returns the layer that
    replaces ``bn`` (an ``nn.Identity``). A convolution without bias gets one."""
    if isinstance(bn, nn.Identity):
        return bn
    kernel, bias = conv_bn_kernel_bias(conv, bn)
    conv.weight.set_value(kernel.astype(np.float32))
    if conv.bias is None:
        conv.bias = conv.create_parameter([conv._out_channels], dtype=conv.weight.dtype, is_bias=True)
    conv.bias.set_value(bias.astype(np.float32))
    return nn.Identity()


def _fold_sequential(seq):
    names = list(seq._sub_layers)
    for first, second in zip(names, names[1:]):
        conv, bn = seq._sub_layers[first], seq._sub_layers[second]
        if isinstance(conv, nn.Conv2D) and isinstance(bn, nn.BatchNorm2D):
            seq._sub_layers[second] = fold_conv_bn(conv, bn)


def _refuse_training(layer, inputs):
    if layer.training:
        raise UserError(f'this {type(layer).__name__} is re-parameterised for deployment (its training paths are '
                        'merged), so it cannot train: build the model from its config to train, and '
                        're-parameterise after training (export.py, val.py and predict.py do).')


def _walk(layer, only):
    if callable(getattr(layer, 'reparameterize', None)) and (only is None or isinstance(layer, only)):
        layer.reparameterize()  # the block rewrites its own parts first ...
    elif isinstance(layer, nn.Sequential) and only is None:
        _fold_sequential(layer)
    for child in list(layer.children()):  # ... then what it left (e.g. a shortcut's conv+BN)
        _walk(child, only)


def reparameterize(model, only=None):
    """Fuse what can be fused in ``model``, in place; returns ``model`` in eval mode.

    Walks the network from the top: a sub-layer that defines ``reparameterize()`` rewrites
    itself (a re-parameterisable block merges its training paths, which must not be folded
    piecemeal before), then its remaining children are visited; conv+BN pairs inside
    ``nn.Sequential`` containers are folded. ``only`` (layer classes) limits the fusion to
    those blocks, e.g. to rebuild a release's own deployed graph. Idempotent: a second call
    changes nothing. The model is marked ``reparameterized``: it refuses to run in training mode.
    """
    model.eval()
    _walk(model, only)
    if not getattr(model, 'reparameterized', False):
        model.register_forward_pre_hook(_refuse_training)
    model.reparameterized = True
    return model
