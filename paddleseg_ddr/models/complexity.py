"""Model size the way the DDRNet paper reports it."""


def count_parameters(model):
    """Number of trainable parameters of ``model``.

    Paddle lists BatchNorm's running mean and variance among ``parameters()`` (with
    ``stop_gradient=True``); PyTorch, where the published sizes come from, keeps them as
    buffers. Counting trainable tensors only matches the published figures.
    """
    return sum(int(p.numel()) for p in model.parameters() if not p.stop_gradient)


def count_macs(model, input_shape=(1, 3, 1024, 2048)):
    """Multiply-accumulates of the convolutions in one forward pass at ``input_shape``.

    The paper's "GFLOPs" are convolution MACs (36.3 / 143.1 / 281.1 G at 1024x2048 for
    23-slim / 23 / 39): per convolution, output elements x input channels per group x
    kernel area. Normalisation, activations, pooling and resizes are not counted. Runs a
    real forward (in eval mode, no gradients) with hooks on every ``Conv2D``.
    """
    import paddle

    macs = []

    def hook(layer, inputs, output):
        kh, kw = layer._kernel_size
        macs.append(int(output.numel()) * (layer._in_channels // layer._groups) * kh * kw)

    hooks = [m.register_forward_post_hook(hook) for m in model.sublayers() if isinstance(m, paddle.nn.Conv2D)]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros(list(input_shape), 'float32'))
    finally:
        for h in hooks:
            h.remove()
        if was_training:
            model.train()
    return sum(macs)
