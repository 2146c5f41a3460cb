"""Batches for the engine, and the label check.

Paddle 3.3's ``DataLoader`` with ``num_workers=0`` reads in a background thread and hangs
for good when a sample raises (a bad file stalls training silently). With no workers the
engine therefore reads in the calling thread, where errors surface with their message.
With workers it uses ``DataLoader``; a :class:`UserError` raised in a worker (a corrupt
image, a bad label) is carried back as data and raised here with its message, since Paddle
would print the worker's traceback from a thread and stop with a bare ``SystemError``.
"""
import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from ..datasets.metainfo import dataset_meta
from ..datasets.reading import bad_label_values, label_values_message
from ..errors import UserError

USER_ERROR = '__user_error__'  # key of a batch that carries a worker's UserError message


def _integers_paddle_can_take(value):
    """Paddle takes a ``uint16`` array for bfloat16 (a 16-bit label of 5 became 0):
    widen it to int32, which holds every uint16 value."""
    if isinstance(value, np.ndarray) and value.dtype == np.uint16:
        return value.astype(np.int32)
    return value


def _to_tensors(batch):
    return {k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}


def _size_errors(samples):
    """Samples of different sizes cannot be stacked into a batch: say which and how to fix it."""
    for key in ('img', 'label'):
        shapes = [tuple(s[key].shape) for s in samples if isinstance(s.get(key), np.ndarray)]
        if len(set(shapes)) > 1:
            return [f"the samples of a batch have different '{key}' sizes {[list(x) for x in shapes]}: a "
                    "training batch needs one size. Give train_dataset.transforms a RandomPaddingCrop (or a "
                    "fixed Resize), or use batch_size 1."]
    return []


def collate(samples):
    """``default_collate_fn``, except for PaddleSeg's ``trans_info``, which stays per sample.

    ``batch['trans_info'][i]`` is sample i's list of ``[mode, [h, w]]`` with Python ints:
    what ``paddleseg.core.infer.reverse_transform`` takes for that sample. (The default
    collate turns a sample's ``('resize', (h, w))`` into ``[('resize',), [array([h]), ...]]``,
    which ``reverse_transform`` rejects, and a DataLoader's into yet another form.) The same
    function collates with and without workers, so both give the same batches.
    """
    errors = [s[USER_ERROR] for s in samples if USER_ERROR in s] + _size_errors(samples)
    if errors:
        # A UserError travels as the batch, so that it leaves a worker as data; the batch keeps
        # one array (a DataLoader batch of none never arrives).
        return {USER_ERROR: errors[0], 'img': np.zeros(1, np.float32)}
    batch = default_collate_fn([{k: _integers_paddle_can_take(v) for k, v in s.items() if k != 'trans_info'}
                                for s in samples])
    if any('trans_info' in s for s in samples):
        batch['trans_info'] = [[[str(mode), [int(v) for v in shape]] for mode, shape in s.get('trans_info', [])]
                               for s in samples]
    return batch


class _ReportUserErrors(paddle.io.Dataset):
    """``dataset`` in a worker process: a sample that raises :class:`UserError` becomes
    ``{USER_ERROR: message}``, which :func:`collate` passes on as the batch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except UserError as e:
            return {USER_ERROR: str(e)}


def iterate_batches(dataset, batch_indices, num_workers=0, worker_init_fn=None):
    """Yield (indices, batch) for the given lists of sample indices; a batch is a dict of tensors."""
    if num_workers == 0:
        for indices in batch_indices:
            batch = collate([dataset[i] for i in indices])
            if USER_ERROR in batch:
                raise UserError(batch[USER_ERROR])
            yield indices, _to_tensors(batch)
        return
    loader = paddle.io.DataLoader(_ReportUserErrors(dataset), batch_sampler=batch_indices,
                                  num_workers=num_workers, return_list=True, worker_init_fn=worker_init_fn,
                                  collate_fn=collate)
    try:
        # The loader comes first in zip so that it runs to its end and stops its workers.
        for data, indices in zip(loader, batch_indices):
            if USER_ERROR in data:
                raise UserError(data[USER_ERROR])
            yield indices, data
    except SystemError as e:
        if 'data reader raises an exception' not in str(e):
            raise
        raise UserError('a data-loading worker failed; its error is printed above '
                        '(run with --num_workers 0 to see it here).') from None


def check_labels(label, indices, dataset):
    """Reject label values outside [0, num_classes) other than the ignore index, naming the file.

    (``DDRCityscapes`` already refuses them when it reads the file; this covers any dataset.)"""
    num_classes, ignore = dataset.num_classes, getattr(dataset, 'ignore_index', 255)
    bad = paddle.logical_and(paddle.logical_or(label < 0, label >= num_classes), label != ignore)
    if not bool(bad.any()):
        return
    label = label.numpy()
    files = getattr(dataset, 'file_list', None)
    for row, index in enumerate(indices):
        values = bad_label_values(label[row], num_classes, ignore)
        if values.size:
            where = f"'{files[index][1]}'" if files else f'sample {index}'
            raise UserError(label_values_message(where, values, num_classes, ignore,
                                                 dataset_meta(dataset).label_hint))
