"""Crafted weights and checkpoint files for the loading tests: pickles that would run code
(``os.mkdir`` of a marker folder: the side effect a test checks is absent) and ``.pth`` files
whose tensors point outside their storage."""
import collections
import io
import os
import pickle
import zipfile

import numpy as np

PAYLOAD_GLOBAL = f'{os.mkdir.__module__}.mkdir'  # 'posix.mkdir': what the message must name


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def paddle_pickle(path, marker, state=None):
    """A ``.pdparams``/``.pdopt`` as paddle.save writes it (protocol 4, arrays), plus a payload."""
    obj = {k: np.asarray(v) for k, v in (state or {'weight': np.zeros((2, 3), np.float32)}).items()}
    obj['zz_payload'] = Payload(marker)
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=4)
    return str(path)


def paddle_state_of(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def pth_zip_payload(path, marker):
    """A zip-format .pth whose data.pkl runs the payload."""
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('archive/data.pkl', pickle.dumps(collections.OrderedDict(weight=Payload(marker)), protocol=2))
        zf.writestr('archive/version', '3\n')
    return str(path)


def _legacy_segments(data):
    """Byte ranges of the legacy format's pickles: magic, protocol, sys_info, main, keys; then the data."""
    stream, bounds = io.BytesIO(data), []

    class Anything(dict):
        pass

    class Skip(pickle.Unpickler):
        def find_class(self, module, name):
            return lambda *a, **k: Anything()

        def persistent_load(self, pid):
            return None
    for _ in range(5):
        start = stream.tell()
        Skip(stream).load()
        bounds.append((start, stream.tell()))
    return bounds


LEGACY_PARTS = ('magic', 'protocol', 'sys_info', 'main', 'keys')


def pth_legacy(path, state=None, payload_in=None, marker=None):
    """A legacy-format (non-zip) .pth of ``state`` ({name: np.ndarray}) written by torch; with
    ``payload_in`` one of LEGACY_PARTS, that pickle is replaced by the payload."""
    import torch
    state = state or {'final_layer.conv2.bias': np.arange(19, dtype=np.float32)}
    torch.save(collections.OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in state.items()),
               str(path), _use_new_zipfile_serialization=False)
    if payload_in:
        data = open(path, 'rb').read()
        start, end = _legacy_segments(data)[LEGACY_PARTS.index(payload_in)]
        data = data[:start] + pickle.dumps(Payload(marker), protocol=2) + data[end:]
        with open(path, 'wb') as f:
            f.write(data)
    return str(path)


def pth_zip_tensor(path, key, storage, offset, size, stride, storage_type=None, numel=None):
    """A zip-format .pth holding one tensor ``key`` = (storage, offset, size, stride), as
    torch writes it; ``storage_type``/``numel`` may contradict the storage's bytes."""
    import torch
    import torch._utils
    storage = np.ascontiguousarray(storage)
    storage_type = storage_type or {np.float32: 'FloatStorage', np.int64: 'LongStorage',
                                    np.float64: 'DoubleStorage'}[storage.dtype.type]

    class Storage:
        pass
    marker = Storage()

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (marker, offset, tuple(size), tuple(stride), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is marker:
                return ('storage', getattr(torch, storage_type), '0', 'cpu',
                        storage.size if numel is None else numel)
            return None
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(collections.OrderedDict([(key, Tensor())]))
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('archive/data.pkl', buf.getvalue())
        zf.writestr('archive/data/0', storage.tobytes())
        zf.writestr('archive/version', '3\n')
    return str(path)
