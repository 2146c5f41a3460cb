"""Batches (paddleseg_ddr/engine/data.py): integer widths Paddle can take, the label check,
and errors of loader workers reaching the user."""
import numpy as np
import paddle
import pytest

from paddleseg_ddr.engine.data import check_labels, collate, iterate_batches
from paddleseg_ddr.errors import UserError


class Samples(paddle.io.Dataset):
    """Sample i: a 4x6 image and a uint16 label of value i; sample ``bad`` raises UserError."""
    num_classes, ignore_index = 19, 255

    def __init__(self, n=4, bad=None, label_dtype=np.uint16):
        self.n, self.bad, self.label_dtype = n, bad, label_dtype
        self.file_list = [[f'img{i}.png', f'label{i}.png'] for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise UserError(f"label file 'label{i}.png' is broken. Fix it.")
        return {'img': np.full((3, 4, 6), i, np.float32), 'label': np.full((1, 4, 6), i, self.label_dtype)}


@pytest.mark.parametrize('workers', [0, 1])
def test_uint16_labels_keep_their_values(workers):
    """Paddle takes uint16 for bfloat16: a label of 5 became 0 (and 255 became 0, not ignored)."""
    ds = Samples(n=4)
    ds_255 = [dict(s, label=np.full((1, 4, 6), 255, np.uint16)) for s in (ds[0],)]
    assert collate(ds_255)['label'].dtype == np.int32
    seen = []
    for indices, batch in iterate_batches(ds, [[0, 1], [2, 3]], num_workers=workers):
        label = batch['label']
        assert label.dtype == paddle.int32
        seen.append(label.numpy()[:, 0, 0, 0].tolist())
        check_labels(label.astype('int64'), indices, ds)
    assert seen == [[0, 1], [2, 3]]


def test_check_labels_refuses_negative_and_large_values_naming_the_file():
    ds = Samples()
    label = paddle.to_tensor(np.array([[[0, 255]], [[-3, 40]]], np.int64))
    with pytest.raises(UserError, match=r"'label1.png' holds values \[-3, 40\] outside \[0, 19\)"):
        check_labels(label, [0, 1], ds)


@pytest.mark.parametrize('workers', [0, 2])
def test_a_user_error_in_a_worker_reaches_the_caller_with_its_message(workers, capfd):
    ds = Samples(n=6, bad=3)
    got = []
    with pytest.raises(UserError) as e:
        for indices, _ in iterate_batches(ds, [[0, 1], [2, 3], [4, 5]], num_workers=workers):
            got.append(indices)
    assert str(e.value) == "label file 'label3.png' is broken. Fix it."
    assert got == [[0, 1]]
    assert 'Traceback' not in capfd.readouterr().err


class Crashes(Samples):
    def __getitem__(self, i):
        raise ZeroDivisionError('a bug, not bad data')


def test_other_errors_in_a_worker_still_stop_the_run():
    with pytest.raises(UserError, match='a data-loading worker failed'):
        list(iterate_batches(Crashes(n=2), [[0, 1]], num_workers=1))


class Sizes(Samples):
    def __getitem__(self, i):
        return {'img': np.zeros((3, 4, 6 + i), np.float32), 'label': np.zeros((1, 4, 6 + i), np.uint8)}


@pytest.mark.parametrize('workers', [0, 1])
def test_samples_of_different_sizes_in_a_batch_say_how_to_fix_it(workers, capfd):
    assert list(iterate_batches(Sizes(n=2), [[0], [1]], num_workers=workers))  # one per batch: fine
    with pytest.raises(UserError, match=r"different 'img' sizes \[\[3, 4, 6\], \[3, 4, 7\]\].*RandomPaddingCrop"):
        list(iterate_batches(Sizes(n=2), [[0, 1]], num_workers=workers))
    assert 'Traceback' not in capfd.readouterr().err
