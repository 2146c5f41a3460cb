"""Read PyTorch ``.pth`` checkpoints into NumPy without PyTorch.

A ``.pth`` is a pickle whose tensors point at raw storages: in a zip archive
(``<name>/data.pkl`` + ``<name>/data/<key>``, PyTorch >= 1.6) or, in the legacy format,
appended after the pickles. Every pickle in the file — the main one and, in the legacy
format, the magic number, protocol version, system info and storage-key list — is read by a
restricted unpickler: only the globals a state dict needs (tensors, storages, ordered dicts,
NumPy scalars) resolve, to this module's own functions, so reading a checkpoint runs no code
from it. Every tensor is checked against its storage (offset, sizes, strides, dtype, the
storage's byte length) before a byte is read.
"""
import collections
import io
import struct
import zipfile

import numpy as np

from ..errors import UserError
from ..utils.safe_pickle import PADDLE_GLOBALS, READ_ERRORS, RestrictedUnpickler, UnsafePickleError, refusal

_DTYPES = {'DoubleStorage': np.float64, 'FloatStorage': np.float32, 'HalfStorage': np.float16,
           'BFloat16Storage': None, 'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
           'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _StorageType:
    def __init__(self, name):
        if _DTYPES.get(name) is None:
            raise UserError(f'unsupported tensor storage {name} in the checkpoint.')
        self.dtype = np.dtype(_DTYPES[name])


class _BadTensor(ValueError):
    pass


def _nonneg_ints(values, what):
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                        for v in values):
        raise _BadTensor(f'{what} {str(values)[:60]} is not a list of non-negative integers')
    return tuple(values)


def _rebuild_tensor(storage, offset, size, stride, *_):
    """The tensor (offset, size, stride) of ``storage``, checked to lie inside it."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1 or storage.dtype.kind not in 'biuf':
        raise _BadTensor('a tensor does not point at a storage')
    (offset,) = _nonneg_ints((offset,), 'storage offset')
    size, stride = _nonneg_ints(size, 'size'), _nonneg_ints(stride, 'stride')
    if len(size) != len(stride) or len(size) > 32:
        raise _BadTensor(f'size {size} and stride {stride} do not match')
    if not size:
        if offset >= storage.size:
            raise _BadTensor(f'scalar at offset {offset} outside its storage of {storage.size} elements')
        return storage[offset:offset + 1].reshape(()).copy()
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # the farthest element read
    if last >= storage.size:
        raise _BadTensor(f'tensor of size {list(size)}, stride {list(stride)} at offset {offset} reaches element '
                         f'{last} of a storage of {storage.size} elements')
    item = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * item for s in stride)).copy()


def _rebuild_parameter(data, *_):
    return data


# The main pickle's globals: the torch ones map to this module's functions; NumPy scalars and
# dtypes go through the checked constructors of safe_pickle.
_ALLOWED = {('collections', 'OrderedDict'): collections.OrderedDict,
            ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
            ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
            ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
            **{k: v for k, v in PADDLE_GLOBALS.items() if k[0].startswith('numpy') and k[1] in ('scalar', 'dtype')}}


class _Unpickler(RestrictedUnpickler):
    def __init__(self, file, source, load_storage):
        super().__init__(file, source, _ALLOWED, 'checkpoint')
        self.load_storage = load_storage
        self.cache = {}

    def find_class(self, module, name):
        if module == 'torch' and name.endswith('Storage') and name in _DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != 'storage' or \
                not isinstance(pid[1], _StorageType):
            raise UnsafePickleError(refusal(self.source, f'persistent id {str(pid)[:60]!r}', 'checkpoint'))
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        (numel,) = _nonneg_ints((numel,), 'storage size')
        if key not in self.cache:
            self.cache[key] = self.load_storage(key, storage_type.dtype, numel)
        storage = self.cache[key]
        if storage.dtype != storage_type.dtype or storage.size != numel:
            raise _BadTensor(f'storage {key} is used as {numel} x {storage_type.dtype} and as '
                             f'{storage.size} x {storage.dtype}')
        view = pid[5] if len(pid) > 5 else None  # legacy format: (view key, offset, size)
        if view is not None:
            if not isinstance(view, tuple) or len(view) != 3:
                raise _BadTensor(f'malformed storage view {str(view)[:60]}')
            v_offset, v_size = _nonneg_ints(view[1:], 'storage view')
            if v_offset + v_size > storage.size:
                raise _BadTensor(f'storage view [{v_offset}, {v_offset + v_size}) outside storage {key} of '
                                 f'{storage.size} elements')
            return storage[v_offset:v_offset + v_size]
        return storage


def _storage_from_bytes(data, key, dtype, numel):
    if len(data) != numel * dtype.itemsize:
        raise _BadTensor(f'storage {key} holds {len(data)} bytes, not {numel} x {dtype} = '
                         f'{numel * dtype.itemsize} bytes')
    return np.frombuffer(data, dtype=dtype)


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith('data.pkl')]
        if not pkl:
            raise UserError(f"'{path}' is a zip file without data.pkl: not a PyTorch checkpoint.")
        prefix = pkl[0][:-len('data.pkl')]
        names = set(zf.namelist())

        def load(key, dtype, numel):
            name = f'{prefix}data/{key}'
            if name not in names:
                raise _BadTensor(f'storage {key} is missing from the archive')
            if zf.getinfo(name).file_size != numel * dtype.itemsize:  # before reading (and inflating) it
                raise _BadTensor(f'storage {key} holds {zf.getinfo(name).file_size} bytes, not {numel} x {dtype} '
                                 f'= {numel * dtype.itemsize} bytes')
            return _storage_from_bytes(zf.read(name), key, dtype, numel)
        return _Unpickler(io.BytesIO(zf.read(pkl[0])), path, load).load()


def _plain(stream, path):
    """One of the legacy format's small pickles (magic number, protocol version, system info,
    storage keys): plain data only, no global at all."""
    return RestrictedUnpickler(stream, path, {}, 'checkpoint').load()


def _read_legacy(path):
    with open(path, 'rb') as f:
        data = f.read()
    stream = io.BytesIO(data)
    try:
        magic = _plain(stream, path)
    except UnsafePickleError:
        raise
    except READ_ERRORS:
        magic = None
    if magic != _LEGACY_MAGIC:
        raise UserError(f"'{path}' is not a PyTorch checkpoint (neither a zip archive nor the legacy format).")
    _plain(stream, path)  # protocol version
    info = _plain(stream, path)  # system info
    if isinstance(info, dict) and info.get('little_endian') is False:
        raise UserError(f"'{path}' was saved on a big-endian machine: re-save it on a little-endian one.")
    # The storages' bytes follow the main pickle and the list of their keys: a first pass
    # with zero-filled storages finds where that list starts, a second fills in the data.
    result_pos = stream.tell()
    dtypes, sizes = {}, {}

    def placeholder(key, dtype, numel):
        if numel * dtype.itemsize > len(data):
            raise _BadTensor(f'storage {key} of {numel} x {dtype} is larger than the file')
        dtypes[key], sizes[key] = dtype, numel
        return np.zeros(numel, dtype)
    _Unpickler(stream, path, placeholder).load()
    keys = _plain(stream, path)
    if not isinstance(keys, (list, tuple)):
        raise _BadTensor('the storage-key list is not a list')
    storages = {}
    for key in keys:
        key = str(key)
        if key not in dtypes:
            raise _BadTensor(f'storage {key} is listed but no tensor uses it')
        (count,) = struct.unpack('<q', stream.read(8))
        if count != sizes[key]:
            raise _BadTensor(f'storage {key} holds {count} elements, the tensors say {sizes[key]}')
        storages[key] = _storage_from_bytes(stream.read(count * dtypes[key].itemsize), key, dtypes[key], count)
    missing = sorted(set(dtypes) - set(storages))
    if missing:
        raise _BadTensor(f'storage {missing[0]} is used but not in the file')
    stream.seek(result_pos)
    return _Unpickler(stream, path, lambda key, dtype, numel: storages[key]).load()


def read_torch_checkpoint(path):
    """The object saved in a ``.pth`` file, with tensors as NumPy arrays."""
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except _BadTensor as e:
        raise UserError(f"refusing to read '{path}': {e}. The checkpoint is damaged or crafted; get it again "
                        'from its source.') from None
    except UserError:
        raise
    except (zipfile.BadZipFile, *READ_ERRORS) as e:
        raise UserError(f"cannot read '{path}' as a PyTorch checkpoint: {type(e).__name__}: {e}. The file is "
                        'truncated or damaged: download it again.') from None
