"""Batches for the engine, and the label check.

Paddle 3.3's ``DataLoader`` with ``num_workers=0`` reads in a background thread and hangs
for good when a sample raises (a bad file stalls training silently). With no workers the
engine therefore reads in the calling thread, where errors surface with their message;
with workers it uses ``DataLoader`` and points at the worker's report when one fails.
"""
import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from ..datasets.metainfo import dataset_meta
from ..errors import UserError


def _to_tensors(batch):
    return {k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}


def collate(samples):
    """``default_collate_fn``, except for PaddleSeg's ``trans_info``, which stays per sample.

    ``batch['trans_info'][i]`` is sample i's list of ``[mode, [h, w]]`` with Python ints:
    what ``paddleseg.core.infer.reverse_transform`` takes for that sample. (The default
    collate turns a sample's ``('resize', (h, w))`` into ``[('resize',), [array([h]), ...]]``,
    which ``reverse_transform`` rejects, and a DataLoader's into yet another form.) The same
    function collates with and without workers, so both give the same batches.
    """
    batch = default_collate_fn([{k: v for k, v in s.items() if k != 'trans_info'} for s in samples])
    if any('trans_info' in s for s in samples):
        batch['trans_info'] = [[[str(mode), [int(v) for v in shape]] for mode, shape in s.get('trans_info', [])]
                               for s in samples]
    return batch


def iterate_batches(dataset, batch_indices, num_workers=0, worker_init_fn=None):
    """Yield (indices, batch) for the given lists of sample indices; a batch is a dict of tensors."""
    if num_workers == 0:
        for indices in batch_indices:
            yield indices, _to_tensors(collate([dataset[i] for i in indices]))
        return
    loader = paddle.io.DataLoader(dataset, batch_sampler=batch_indices, num_workers=num_workers,
                                  return_list=True, worker_init_fn=worker_init_fn, collate_fn=collate)
    try:
        # The loader comes first in zip so that it runs to its end and stops its workers.
        for data, indices in zip(loader, batch_indices):
            yield indices, data
    except SystemError as e:
        if 'data reader raises an exception' not in str(e):
            raise
        raise UserError('a data-loading worker failed; its error is printed above '
                        '(run with --num_workers 0 to see it here).') from None


def check_labels(label, indices, dataset):
    """Reject label values outside [0, num_classes) other than the ignore index, naming the file."""
    num_classes, ignore = dataset.num_classes, getattr(dataset, 'ignore_index', 255)
    bad = paddle.logical_and(label >= num_classes, label != ignore)
    if not bool(bad.any()):
        return
    bad, label = bad.numpy(), label.numpy()
    files = getattr(dataset, 'file_list', None)
    for row, index in enumerate(indices):
        if bad[row].any():
            values = np.unique(label[row][bad[row]])[:10].tolist()
            where = f"'{files[index][1]}'" if files else f'sample {index}'
            raise UserError(
                f'label file {where} holds values {values} outside [0, {num_classes}) that are not '
                f'the ignore index {ignore}. {dataset_meta(dataset).label_hint}'.rstrip())
