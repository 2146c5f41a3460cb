"""Plain (optionally class-weighted) pixel cross-entropy, PaddleSeg's ``CrossEntropyLoss`` rule.

PaddleSeg 2.8's ``CrossEntropyLoss`` fails on Paddle 3 whatever its arguments: its final
mean multiplies the float32 pixel mask by an int64 tensor (``mask * ones_like(label)``
without class weights, ``label * mask`` with them), which Paddle 3's type promotion refuses
("Type promotion only support calculations between floating-point numbers ..."). The
project owns this loss under its own name; PaddleSeg's stays untouched.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager


@manager.LOSSES.add_component
class DDRCrossEntropyLoss(nn.Layer):
    """Mean cross-entropy over the labelled pixels, as PaddleSeg's ``CrossEntropyLoss``
    with its defaults (``avg_non_ignore=True``, ``top_k_percent_pixels=1.0``).

    Without weights: the mean of -log p(true class) over the pixels whose label is not
    ``ignore_index``. With weights ``w``: sum(w[y] * nll) / sum(w[y]) over those pixels.

    With ``avg_non_ignore=False`` (PaddleSeg's option of that name, and PIDNet's P-head
    term) the weighted sum is divided by the number of all pixels, ignored ones included.

    Args:
        weight (list[float], optional): Per-class weights. Default: None.
        ignore_index (int, optional): Label value to ignore. Default: 255.
        avg_non_ignore (bool, optional): Average over the labelled pixels' weights (True) or
            over all pixels (False). Default: True.
    """

    def __init__(self, weight=None, ignore_index=255, avg_non_ignore=True):
        super().__init__()
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        self.weight = None if weight is None else paddle.to_tensor(weight, dtype='float32')

    def forward(self, logit, label):
        """logit: [N, C, H, W] float; label: [N, H, W] or [N, 1, H, W] integer."""
        if label.ndim == 4:
            label = label.squeeze(1)
        if self.weight is not None and self.weight.shape[0] != logit.shape[1]:
            raise ValueError(f'DDRCrossEntropyLoss: {self.weight.shape[0]} class weights '
                             f'for {logit.shape[1]} classes.')
        label = label.astype('int64')
        valid = (label != self.ignore_index).astype('float32')
        nll = F.cross_entropy(logit.astype('float32'), label.unsqueeze(1), reduction='none', axis=1,
                              ignore_index=self.ignore_index).squeeze(1)  # 0 where ignored
        if self.weight is None:
            pixel_weight = valid
        else:
            target = paddle.where(label == self.ignore_index, paddle.zeros_like(label), label)
            pixel_weight = paddle.gather(self.weight, target.flatten()).reshape(target.shape) * valid
        pixel_weight.stop_gradient = True
        if not self.avg_non_ignore:
            return (nll * pixel_weight).sum() / float(nll.numel())
        # nothing labelled: 0 (with a gradient path), not 0/0
        return (nll * pixel_weight).sum() / paddle.clip(pixel_weight.sum(), min=1e-8)
