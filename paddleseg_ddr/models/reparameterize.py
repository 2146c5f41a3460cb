"""Structural re-parameterisation for deployment: turn a trained network into an equivalent
one with fewer layers before it is exported.

Every block that can be fused knows how: it has a ``reparameterize()`` method that rewrites
its own sub-layers (DDRNet's residual blocks fold each conv+BN pair; RDRNet's blocks will
merge their three training paths into one 3x3 convolution). :func:`reparameterize` walks the
network and calls them; ``nn.Sequential`` containers, which are not ours, get the generic
rule: a ``Conv2D`` directly followed by a ``BatchNorm2D`` is folded.

The result computes the same function in eval mode (to float rounding) and has no batch
norm to train: it is for export and inference only.
"""
import paddle
import paddle.nn as nn


@paddle.no_grad()
def fold_conv_bn(conv, bn):
    """Fold ``bn`` (eval-mode statistics) into ``conv`` in place; returns the layer that
    replaces ``bn`` (an ``nn.Identity``).

    bn(conv(x)) = gamma * (W x + b - mean) / sqrt(var + eps) + beta
                = (s * W) x + s * (b - mean) + beta,  s = gamma / sqrt(var + eps)
    A convolution without bias gets one.
    """
    if isinstance(bn, nn.Identity):
        return bn
    if not isinstance(conv, nn.Conv2D) or not isinstance(bn, nn.BatchNorm2D):
        raise TypeError(f'fold_conv_bn needs Conv2D + BatchNorm2D, got {type(conv).__name__} + {type(bn).__name__}')
    if conv._data_format != 'NCHW':
        raise ValueError('fold_conv_bn supports NCHW convolutions only.')
    mean, var = bn._mean.astype('float64'), bn._variance.astype('float64')
    gamma = bn.weight.astype('float64') if bn.weight is not None else paddle.ones_like(mean)
    beta = bn.bias.astype('float64') if bn.bias is not None else paddle.zeros_like(mean)
    scale = gamma / paddle.sqrt(var + bn._epsilon)
    weight = conv.weight.astype('float64') * scale.reshape([-1, 1, 1, 1])
    bias = conv.bias.astype('float64') if conv.bias is not None else paddle.zeros_like(mean)
    bias = (bias - mean) * scale + beta
    conv.weight.set_value(weight.astype(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = conv.create_parameter([conv._out_channels], dtype=conv.weight.dtype, is_bias=True)
    conv.bias.set_value(bias.astype(conv.bias.dtype))
    return nn.Identity()


def _fold_sequential(seq):
    names = list(seq._sub_layers)
    for first, second in zip(names, names[1:]):
        conv, bn = seq._sub_layers[first], seq._sub_layers[second]
        if isinstance(conv, nn.Conv2D) and isinstance(bn, nn.BatchNorm2D):
            seq._sub_layers[second] = fold_conv_bn(conv, bn)


def reparameterize(model):
    """Fuse what can be fused in ``model``, in place; returns ``model`` in eval mode.

    Calls ``reparameterize()`` on every sub-layer that defines it (children first, so a
    block sees its already-fused parts) and folds conv+BN pairs inside ``nn.Sequential``.
    Idempotent: a second call changes nothing.
    """
    model.eval()
    layers = model.sublayers(include_self=True)
    for layer in reversed(layers):  # sublayers() lists parents before children
        if isinstance(layer, nn.Sequential):
            _fold_sequential(layer)
        elif callable(getattr(layer, 'reparameterize', None)) and layer is not model:
            layer.reparameterize()
    if callable(getattr(model, 'reparameterize', None)):
        model.reparameterize()
    model.eval()
    return model
