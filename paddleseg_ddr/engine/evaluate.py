"""Evaluation over a dataset: whole image, sliding window or multi-scale + flip."""
import time

import numpy as np
import paddle
import paddle.distributed as dist
from paddleseg.core.infer import reverse_transform
from paddleseg.utils import logger
from tqdm import tqdm

from .data import check_labels, iterate_batches
from .inference import aug_predict, predict_logits
from .metrics import compute_metrics, confusion_matrix, format_metrics


def evaluate(model, dataset, aug_eval=False, scales=1.0, flip_horizontal=False,
             flip_vertical=False, is_slide=False, crop_size=None, stride=None,
             num_workers=0, print_detail=True, class_names=None):
    """Evaluate ``model`` on a PaddleSeg-style ``dataset`` (mode 'val').

    Returns the dict of :func:`metrics.compute_metrics` plus ``confusion`` and ``images``.
    Under ``paddle.distributed.launch`` each rank evaluates its share and the confusion
    matrices are summed.
    """
    scales = [scales] if isinstance(scales, (int, float)) else list(scales)
    nranks, rank = dist.get_world_size(), dist.get_rank()
    # Each rank takes every nranks-th image, so no image is counted twice (a
    # DistributedBatchSampler would pad the last round with repeats).
    batches = [[i] for i in range(rank, len(dataset), nranks)]
    loader = iterate_batches(dataset, batches, num_workers)
    num_classes = dataset.num_classes
    ignore_index = getattr(dataset, 'ignore_index', 255)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)

    was_training = model.training
    model.eval()
    start = time.time()
    with paddle.no_grad():
        for indices, data in tqdm(loader, desc='Evaluate', total=len(batches),
                                  disable=rank != 0 or not print_detail, leave=False):
            image, label = data['img'], data['label'].astype('int64')
            check_labels(label, indices, dataset)
            if aug_eval:
                logit = aug_predict(model, image, scales, flip_horizontal, flip_vertical,
                                    is_slide, crop_size, stride)
            else:
                logit = predict_logits(model, image, is_slide, crop_size, stride)
            if data.get('trans_info'):
                logit = reverse_transform(logit, data['trans_info'], mode='bilinear')
            pred = paddle.argmax(logit, axis=1, keepdim=True)
            if pred.shape[2:] != label.shape[2:]:
                raise ValueError(f'prediction {pred.shape[2:]} and label {label.shape[2:]} differ in size; '
                                 'val transforms must not crop (resizing is undone automatically).')
            conf += confusion_matrix(pred, label, num_classes, ignore_index)
    if was_training:
        model.train()

    if nranks > 1:
        total = paddle.to_tensor(conf)
        dist.all_reduce(total)
        conf = total.numpy()
    metrics = compute_metrics(conf)
    metrics.update(confusion=conf, images=len(dataset))
    if print_detail and rank == 0:
        names = class_names or getattr(dataset, 'CLASS_NAMES', None)
        logger.info(f'[EVAL] {len(dataset)} images in {time.time() - start:.1f}s\n' + format_metrics(metrics, names))
    return metrics
