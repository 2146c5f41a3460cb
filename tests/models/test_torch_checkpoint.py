"""The torch-free .pth reader runs no code from the file (every pickle of the legacy format is
restricted) and refuses tensors that reach outside their storage."""
import os

import numpy as np
import pytest

import crafted_files as C
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.models.torch_checkpoint import read_torch_checkpoint

torch = pytest.importorskip('torch')


def test_genuine_zip_and_legacy_files_read_exactly(tmp_path):
    state = {'a': torch.randn(3, 4), 'b': torch.arange(6, dtype=torch.int64), 'c': torch.randn(4, 3).t(),
             'd': torch.tensor(2.5, dtype=torch.float64), 'e': torch.randn(5)[1:4]}
    for name, zipped in (('zip.pth', True), ('legacy.pth', False)):
        path = str(tmp_path / name)
        torch.save(state, path, _use_new_zipfile_serialization=zipped)
        got = read_torch_checkpoint(path)
        for k, v in state.items():
            assert got[k].dtype == v.numpy().dtype and (got[k] == v.numpy()).all(), (name, k)


@pytest.mark.parametrize('part', C.LEGACY_PARTS)
def test_a_payload_in_any_pickle_of_the_legacy_format_is_refused(tmp_path, part):
    marker = str(tmp_path / 'pwned')
    path = C.pth_legacy(str(tmp_path / 'evil.pth'), payload_in=part, marker=marker)
    with pytest.raises(UserError) as e:
        read_torch_checkpoint(path)
    assert f"'{path}'" in str(e.value) and C.PAYLOAD_GLOBAL in str(e.value)
    assert not os.path.exists(marker)


def test_a_payload_in_a_zip_checkpoint_is_refused(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = C.pth_zip_payload(str(tmp_path / 'evil.pth'), marker)
    with pytest.raises(UserError, match=C.PAYLOAD_GLOBAL):
        read_torch_checkpoint(path)
    assert not os.path.exists(marker)


STORAGE = np.arange(8, dtype=np.float32)


@pytest.mark.parametrize('tensor, message', [
    (dict(offset=0, size=(4, 4), stride=(4, 1)), 'reaches element 15 of a storage of 8'),   # size
    (dict(offset=0, size=(2, 2), stride=(8, 1)), 'stride [8, 1]'),                           # stride
    (dict(offset=7, size=(2,), stride=(1,)), 'at offset 7'),                                  # offset
    (dict(offset=0, size=(8,), stride=(1,), storage_type='DoubleStorage'), 'not 8 x float64'),  # dtype
    (dict(offset=0, size=(8,), stride=(1,), numel=9), 'not 9 x float32'),                     # numel
    (dict(offset=-1, size=(2,), stride=(1,)), 'storage offset'),
    (dict(offset=0, size=(2,), stride=(-1,)), 'stride'),
    (dict(offset=0, size=(2, 2), stride=(1,)), 'do not match'),
    (dict(offset=8, size=(), stride=()), 'scalar at offset 8'),
], ids=['size', 'stride', 'offset', 'dtype', 'numel', 'negative-offset', 'negative-stride', 'rank', 'scalar'])
def test_tensors_outside_their_storage_are_refused(tmp_path, tensor, message):
    path = C.pth_zip_tensor(str(tmp_path / 'oob.pth'), 'w', STORAGE, **tensor)
    with pytest.raises(UserError, match='refusing to read') as e:
        read_torch_checkpoint(path)
    assert message in str(e.value)


def test_tensors_inside_their_storage_read_as_torch_views(tmp_path):
    path = C.pth_zip_tensor(str(tmp_path / 'ok.pth'), 'w', STORAGE, offset=1, size=(2, 3), stride=(1, 2))
    expected = torch.from_numpy(STORAGE.copy()).as_strided((2, 3), (1, 2), 1).numpy()
    assert (read_torch_checkpoint(path)['w'] == expected).all()
