"""Tiny components for engine tests, registered with PaddleSeg's managers on import
(imported by the tests and by dist_train_step.py under paddle.distributed.launch).

- ``TinySeg``: a 1x1 convolution, no BN, whose ``compute_loss`` is the mean cross-entropy
  over ALL pixels of the batch (ignored pixels count as 0). With equal per-rank batches,
  the all-reduced mean of the per-rank gradients is then exactly the gradient of the same
  loss on the concatenated batch. It keeps the last batch it saw (``last_batch``).
- ``TinyEdgeSeg``: its ``compute_loss`` needs ``batch['edge']`` (as PIDNet's boundary term).
- ``RecordDraws``: a transform that records one NumPy and one `random` draw per sample in
  ``DRAWS``, so a test sees which augmentation streams the samples got.
"""
import random

import numpy as np
import paddle
import paddle.nn.functional as F
from paddleseg.cvlibs import manager

DRAWS = []


def _register(registry, cls):
    if cls.__name__ not in registry.components_dict:
        registry.add_component(cls)
    return registry.components_dict[cls.__name__]


def pixel_mean_cross_entropy(logit, label, ignore_index=255):
    """Cross-entropy summed over labelled pixels, divided by ALL pixels of the batch."""
    per_pixel = F.cross_entropy(logit, label, axis=1, ignore_index=ignore_index, reduction='none')
    return per_pixel.sum() / label.numel().astype('float32')


class TinySeg(paddle.nn.Layer):
    def __init__(self, num_classes=19, **unused):
        super().__init__()
        self.num_classes = num_classes
        self.conv = paddle.nn.Conv2D(3, num_classes, 1)
        self.last_batch = None

    def forward(self, x):
        return [self.conv(x)]

    def compute_loss(self, logits, batch, losses):
        self.last_batch = {k: v.numpy() for k, v in batch.items() if k in ('img', 'label')}
        loss = pixel_mean_cross_entropy(logits[0], batch['label'])
        return loss, [loss]


class TinyEdgeSeg(TinySeg):
    calls = []

    def compute_loss(self, logits, batch, losses):
        edge = batch['edge'].astype('float32')
        seg = pixel_mean_cross_entropy(logits[0], batch['label'])
        boundary = (logits[0].mean(axis=1, keepdim=True) * edge).mean() * 0.0 + 0.5 * edge.mean()
        total = seg + boundary
        TinyEdgeSeg.calls.append({'keys': sorted(batch), 'loss': float(total), 'edge_mean': float(edge.mean())})
        return total, [seg, boundary]


class RecordDraws:
    def __call__(self, data):
        DRAWS.append((int(np.random.randint(2**31)), random.random()))
        return data


TinySeg = _register(manager.MODELS, TinySeg)
TinyEdgeSeg = _register(manager.MODELS, TinyEdgeSeg)
RecordDraws = _register(manager.TRANSFORMS, RecordDraws)
