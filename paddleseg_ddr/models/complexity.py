"""Model size the way the DDRNet paper reports it."""


def count_parameters(model):
    """Number of trainable parameters of ``model``.

    Paddle lists BatchNorm's running mean and variance among ``parameters()`` (with
    ``stop_gradient=True``); PyTorch, where the published sizes come from, keeps them as
    buffers. Counting trainable tensors only matches the published figures.
    """
    return sum(int(p.numel()) for p in model.parameters() if not p.stop_gradient)
