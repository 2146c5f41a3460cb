"""Evaluation over a dataset: whole image, sliding window or multi-scale + flip, of a dygraph
model or of an exported model run by a deployment engine (a *runner*, see
paddleseg_ddr/deploy/engines.py: any object with ``run(batch) -> outputs`` and ``output_op``;
the engine does not import deploy)."""
import time

import numpy as np
import paddle
import paddle.distributed as dist
from paddleseg.core.infer import reverse_transform
from paddleseg.utils import logger
from tqdm import tqdm

from ..datasets.metainfo import dataset_meta
from ..errors import UserError
from .data import check_labels, iterate_batches
from .inference import aug_predict, predict_logits
from .metrics import compute_metrics, confusion_matrix, format_metrics


def _undo_transforms(logit, trans_info):
    """Label map [N, 1, H, W] at each image's size before its val transforms (resize, padding).

    ``trans_info`` is :func:`data.collate`'s: one list of ``[mode, [h, w]]`` per image.
    """
    preds = []
    for row, info in enumerate(trans_info or [[]] * logit.shape[0]):
        row_logit = logit[row:row + 1]
        if info:
            row_logit = reverse_transform(row_logit, info, mode='bilinear')
        preds.append(paddle.argmax(row_logit, axis=1, keepdim=True))
    return preds[0] if len(preds) == 1 else paddle.concat(preds)


def is_runner(model):
    """Whether ``model`` is an exported model's runner rather than a dygraph model."""
    return not isinstance(model, paddle.nn.Layer) and callable(getattr(model, 'run', None)) \
        and hasattr(model, 'output_op')


def _runner_labels(runner, image, trans_info):
    """Label map [N, 1, H, W] of an exported model at each image's size before its val
    transforms: the graph's own argmax labels (resized back nearest-neighbour, as deployed
    predictions are), or its scores resized back bilinearly then argmax, like dygraph."""
    out = runner.run(np.ascontiguousarray(image.numpy(), dtype=np.float32))
    if runner.output_op != 'argmax':
        return _undo_transforms(paddle.to_tensor(out.astype(np.float32)), trans_info)
    labels = paddle.to_tensor(out.astype(np.int64))[:, None]
    preds = []
    for row, info in enumerate(trans_info or [[]] * labels.shape[0]):
        row_label = labels[row:row + 1]
        preds.append(reverse_transform(row_label, info, mode='nearest') if info else row_label)
    return preds[0] if len(preds) == 1 else paddle.concat(preds)


def evaluate(model, dataset, aug_eval=False, scales=1.0, flip_horizontal=False,
             flip_vertical=False, is_slide=False, crop_size=None, stride=None,
             num_workers=0, print_detail=True, class_names=None):
    """Evaluate ``model`` on a PaddleSeg-style ``dataset`` (mode 'val').

    ``model`` is a dygraph model, or a runner of an exported model (:func:`is_runner`), which
    is evaluated as it is deployed: whole images, one at a time, its output op's labels.
    Returns the dict of :func:`metrics.compute_metrics` plus ``confusion`` and ``images``.
    Under ``paddle.distributed.launch`` each rank evaluates its share and the confusion
    matrices are summed.
    """
    runner = is_runner(model)
    if runner and (aug_eval or is_slide):
        raise UserError('an exported model is evaluated on whole images, as it is deployed: leave out --aug_eval '
                        'and --is_slide (and test_config entries asking for them), or evaluate the checkpoint '
                        '(--model_path) with them.')
    scales = [scales] if isinstance(scales, (int, float)) else list(scales)
    nranks, rank = dist.get_world_size(), dist.get_rank()
    # Each rank takes every nranks-th image, so no image is counted twice (a
    # DistributedBatchSampler would pad the last round with repeats).
    batches = [[i] for i in range(rank, len(dataset), nranks)]
    loader = iterate_batches(dataset, batches, num_workers)
    num_classes = dataset.num_classes
    ignore_index = getattr(dataset, 'ignore_index', 255)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)

    was_training = not runner and model.training
    if not runner:
        model.eval()
    start = time.time()
    with paddle.no_grad():
        for indices, data in tqdm(loader, desc='Evaluate', total=len(batches),
                                  disable=rank != 0 or not print_detail, leave=False):
            image, label = data['img'], data['label'].astype('int64')
            check_labels(label, indices, dataset)
            if runner:
                pred = _runner_labels(model, image, data.get('trans_info'))
            else:
                if aug_eval:
                    logit = aug_predict(model, image, scales, flip_horizontal, flip_vertical,
                                        is_slide, crop_size, stride)
                else:
                    logit = predict_logits(model, image, is_slide, crop_size, stride)
                pred = _undo_transforms(logit, data.get('trans_info'))
            if pred.shape[2:] != label.shape[2:]:
                raise UserError(f'prediction {pred.shape[2:]} and label {label.shape[2:]} differ in size; '
                                'val transforms must not crop (resizing and padding are undone automatically).')
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
        names = class_names or list(dataset_meta(dataset).classes)
        # PaddleSeg's summary line (paddleseg/core/val.py), which log parsers expect, then the table.
        if runner:
            logger.info(f"[EVAL] exported model: {getattr(model, 'describe', lambda: type(model).__name__)()}")
        logger.info(f"[EVAL] #Images: {len(dataset)} mIoU: {metrics['miou']:.4f} Acc: {metrics['acc']:.4f} "
                    f"Kappa: {metrics['kappa']:.4f} Dice: {metrics['mdice']:.4f}")
        logger.info(f'[EVAL] {len(dataset)} images in {time.time() - start:.1f}s\n' + format_metrics(metrics, names))
    return metrics
