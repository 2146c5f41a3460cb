"""Read PyTorch ``.pth`` checkpoints into NumPy without PyTorch.

A ``.pth`` is a pickle whose tensors point at raw storages: in a zip archive
(``<name>/data.pkl`` + ``<name>/data/<key>``, PyTorch >= 1.6) or, in the legacy format,
appended after the pickles. Only the classes a state dict needs are allowed in the
pickle (tensors, storages, ordered dicts), so reading a checkpoint runs no foreign code.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from ..errors import UserError

_DTYPES = {'DoubleStorage': np.float64, 'FloatStorage': np.float32, 'HalfStorage': np.float16,
           'BFloat16Storage': None, 'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
           'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _StorageType:
    def __init__(self, name):
        if _DTYPES.get(name) is None:
            raise UserError(f'unsupported tensor storage {name} in the checkpoint.')
        self.dtype = np.dtype(_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    item = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride)).copy()


def _rebuild_parameter(data, *_):
    return data


class _Unpickler(pickle.Unpickler):
    ALLOWED = {('collections', 'OrderedDict'): collections.OrderedDict,
               ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
               ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
               ('torch._utils', '_rebuild_parameter'): _rebuild_parameter}

    def __init__(self, file, load_storage):
        super().__init__(file)
        self.load_storage = load_storage
        self.cache = {}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == 'torch' and name.endswith('Storage'):
            return _StorageType(name)
        if module == 'numpy.core.multiarray' and name == 'scalar' or module == 'numpy' and name == 'dtype':
            return super().find_class(module, name)
        raise UserError(f"the checkpoint pickles '{module}.{name}', which a weights file does not need; "
                        'refusing to load it (re-save the state dict alone).')

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], str(pid[2])
        if kind != 'storage':
            raise UserError(f'unsupported persistent id {kind!r} in the checkpoint.')
        if key not in self.cache:
            self.cache[key] = self.load_storage(key, storage_type.dtype, pid[4])
        view = pid[5] if len(pid) > 5 else None  # legacy format: (view key, offset, size)
        if view is not None:
            return self.cache[key][view[1]:view[1] + view[2]]
        return self.cache[key]


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith('data.pkl')]
        if not pkl:
            raise UserError(f"'{path}' is a zip file without data.pkl: not a PyTorch checkpoint.")
        prefix = pkl[0][:-len('data.pkl')]
        load = lambda key, dtype, numel: np.frombuffer(zf.read(f'{prefix}data/{key}'), dtype=dtype)
        return _Unpickler(io.BytesIO(zf.read(pkl[0])), load).load()


def _read_legacy(path):
    with open(path, 'rb') as f:
        data = f.read()
    stream = io.BytesIO(data)
    if pickle.load(stream) != _LEGACY_MAGIC:
        raise UserError(f"'{path}' is not a PyTorch checkpoint (neither a zip archive nor the legacy format).")
    pickle.load(stream)  # protocol version
    pickle.load(stream)  # system info
    # The storages' bytes follow the main pickle and the list of their keys: a first pass
    # with zero-filled storages finds where that list starts, a second fills in the data.
    result_pos = stream.tell()
    dtypes = {}

    def placeholder(key, dtype, numel):
        dtypes[key] = dtype
        return np.zeros(numel, dtype)
    _Unpickler(stream, placeholder).load()
    storages = {}
    for key in pickle.load(stream):
        (count,) = struct.unpack('<q', stream.read(8))
        dtype = dtypes[str(key)]
        storages[str(key)] = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype)
    stream.seek(result_pos)
    return _Unpickler(stream, lambda key, dtype, numel: storages[key]).load()


def read_torch_checkpoint(path):
    """The object saved in a ``.pth`` file, with tensors as NumPy arrays."""
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, ValueError) as e:
        raise UserError(f"cannot read '{path}' as a PyTorch checkpoint: {e}") from None
