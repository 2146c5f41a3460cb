"""Class-balanced binary cross-entropy for boundary heads (PIDNet's D head). PaddleSeg 2.8's
``BCELoss`` expects edge maps from its own pipeline and is not exercised on Paddle 3 here;
this is the release's formula in a few lines."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager


@manager.LOSSES.add_component
class BoundaryBCELoss(nn.Layer):
    """Binary cross-entropy of one-channel boundary logits against an edge map, each pixel
    weighted by the other class's share (edge pixels by neg/(pos+neg), the rest by
    pos/(pos+neg)), averaged over all pixels: the PIDNet release's ``weighted_bce``.

    forward(logit [N, 1, H, W], edge [N, H, W] with 1 on boundaries, anything else 0).

    Args:
        ignore_index (int, optional): Accepted because PaddleSeg's config gives every loss the
            dataset's ignore index; the edge map has no ignored pixels. Default: 255.
    """

    def __init__(self, ignore_index=255):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logit, edge):
        target = (edge == 1).astype('float32').reshape(logit.shape)
        pos = target.sum()
        total = float(target.numel())
        weight = paddle.where(target == 1, (total - pos) / total, pos / total)
        weight.stop_gradient = True
        return F.binary_cross_entropy_with_logits(logit.astype('float32'), target, weight=weight, reduction='mean')
