"""What the models built on PaddleSeg's own classes share (BiSeNet, the PaddleSeg comparison
models): weights named by a file or by a URL as PaddleSeg's configs do, and folding PaddleSeg's
conv+BN layers for export."""
import os
from urllib.parse import urlparse

import paddle.nn as nn

from ..errors import UserError
from .reparameterize import fold_conv_bn


def resolve_pretrained(path, what, option):
    """A local file for ``path`` (a file or a URL, as in PaddleSeg's configs), or a
    ``UserError`` saying how to get one. ``option`` is the config key, for the message."""
    if urlparse(str(path)).netloc:
        from paddleseg.utils import seg_env
        from paddleseg.utils.utils import download_pretrained_model
        archive = path.rstrip('/').split('/')[-1]
        cached = (os.path.join(seg_env.PRETRAINED_MODEL_HOME, archive.split('.')[0], 'model.pdparams')
                  if archive.endswith(('tgz', 'tar.gz', 'tar', 'zip')) else None)
        try:
            local = download_pretrained_model(path)  # PaddleSeg's cache first, then the network
        except Exception as e:  # offline: requests' ConnectionError, a truncated archive ...
            reason = str(e).splitlines()[0][:160] if str(e) else ''
            cache_hint = f" (or put it at '{cached}', PaddleSeg's cache)" if cached else ''
            raise UserError(
                f"cannot download the {what} '{path}' ({type(e).__name__}: {reason}). On a machine with "
                f"internet access, download it, extract model.pdparams and pass its path with "
                f"`--opts {option}=<path>/model.pdparams`{cache_hint}, or train from scratch with "
                f"`--opts {option}=None`.") from None
        path = local
    if not os.path.isfile(path):
        raise UserError(f"{what} not found: '{path}'. Pass the path of a .pdparams or .safetensors file with "
                        f"`--opts {option}=<file>`, or train from scratch with `--opts {option}=None`.")
    return path


def fold_paddleseg_conv_bn(model):
    """Fold every PaddleSeg ``ConvBN``/``ConvBNReLU``/ResNet ``ConvBNLayer`` (a ``_conv`` then a
    ``_batch_norm``) in ``model``; a norm that is not a plain ``BatchNorm2D`` (SyncBatchNorm
    of a multi-card run) is left as it is. Returns the number folded."""
    folded = 0
    for layer in model.sublayers(include_self=True):
        conv, bn = getattr(layer, '_conv', None), getattr(layer, '_batch_norm', None)
        if (isinstance(conv, nn.Conv2D) and type(bn) is nn.BatchNorm2D
                and conv._data_format == 'NCHW' and bn._data_format == 'NCHW'):
            layer._batch_norm = fold_conv_bn(conv, bn)
            folded += 1
    return folded
