"""Reading pickled weights without running code from them.

A pickle is a program: unpickling calls whatever callables the file names, so
``paddle.load`` (plain ``pickle.load``) of a file from a stranger runs the stranger's code.
The files this project reads only ever hold what ``paddle.save`` writes for a state dict or
an optimizer state — NumPy arrays, plain containers (dict, list, tuple), numbers, strings —
so they are read here by an unpickler that resolves exactly the globals NumPy needs to
rebuild an array and refuses every other one *before* it could be called, with a message
naming the file and the global.

``paddle.save`` of a state dict writes three globals (seen with ``pickletools.dis``):
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``
(``numpy._core...`` with NumPy 2). They are not handed out as such: ``numpy.ndarray`` becomes
an inert marker accepted only as the first argument of ``_reconstruct``, and ``numpy.dtype``
accepts only numeric and boolean types. After loading, every value is checked to be a plain
container, a number, a string, or a numeric array (no object arrays).
"""
import collections
import io
import os
import pickle
import struct

import numpy as np

from ..errors import UserError



class UnsafePickleError(UserError):
    """A pickle names a global that no weights file needs: refused before it could run."""


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: only ``_reconstruct`` accepts it; it cannot
    be called or otherwise used."""
    __slots__ = ()

    def __reduce__(self):  # pragma: no cover - never pickled
        raise TypeError('not picklable')


_ARRAY = _ArrayType()
_NUMERIC_KINDS = frozenset('biufc')  # bool, signed, unsigned, float, complex


def _check_dtype(dtype):
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f'array type {dtype!r} is not a plain numeric type')
    return dtype


def _dtype(spec, align=False, copy=False):
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f'unexpected dtype specification {type(spec).__name__}')
    return _check_dtype(np.dtype(spec.decode('latin1') if isinstance(spec, bytes) else spec))


def _reconstruct(cls, shape, dtype):
    """NumPy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array that BUILD then fills
    (``ndarray.__setstate__`` checks the data length against shape and type)."""
    if cls is not _ARRAY:
        raise pickle.UnpicklingError('_reconstruct of something other than numpy.ndarray')
    if shape != (0,):
        raise pickle.UnpicklingError(f'unexpected _reconstruct shape {shape!r}')
    return np.empty(0, dtype=np.uint8)


def _scalar(dtype, data):
    """``numpy.core.multiarray.scalar``: a NumPy number from its bytes."""
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes):
        raise pickle.UnpicklingError('unexpected arguments to numpy scalar')
    _check_dtype(dtype)
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f'numpy scalar of {len(data)} bytes for {dtype}')
    return np.frombuffer(data, dtype=dtype)[0].copy()


def _codecs_encode(text, encoding='utf-8'):
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError('_codecs.encode is only expected with latin1 text')
    return text.encode('latin1')


# The whole list of globals a Paddle weights/optimizer pickle may name.
PADDLE_GLOBALS = {}
for _core in ('numpy.core.multiarray', 'numpy._core.multiarray'):
    PADDLE_GLOBALS[(_core, '_reconstruct')] = _reconstruct
    PADDLE_GLOBALS[(_core, 'scalar')] = _scalar
PADDLE_GLOBALS.update({
    ('numpy', 'ndarray'): _ARRAY,
    ('numpy', 'dtype'): _dtype,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('_codecs', 'encode'): _codecs_encode,
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed`` ((module, name) -> object)
    and has no persistent ids; anything else raises :class:`UnsafePickleError` naming
    ``source`` and the global, before the global is imported or called."""

    def __init__(self, file, source, allowed=None, what='file'):
        super().__init__(file, encoding='latin1')
        self.source, self.what = source, what
        self.allowed = PADDLE_GLOBALS if allowed is None else allowed

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(refusal(self.source, f'{module}.{name}', self.what)) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(refusal(self.source, f'persistent id {str(pid)[:60]!r}', self.what))


def refusal(source, offending, what='file'):
    return (f"refusing to load {what} '{source}': it pickles '{offending}', which no weights or checkpoint file "
            'needs (they hold only arrays, numbers, strings and plain containers). Loading it could run code '
            'hidden in the file, so it was refused before anything in it ran. Only load pickled files (.pdparams, '
            '.pdopt, .pth) from sources you trust; ask for the weights as .safetensors, which hold data only '
            '(README, "Loading files from others").')


# Errors a truncated or malformed pickle raises inside the unpickler.
READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
               struct.error, OverflowError, RecursionError, UnicodeDecodeError, MemoryError)


def check_plain(obj, source, what='file', allowed_types=()):
    """Every value in ``obj`` is a plain container, number, string or numeric array."""
    stack, seen = [obj], set()
    while stack:
        value = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())
            else:
                stack.extend(value)
        elif isinstance(value, np.ndarray):
            try:
                _check_dtype(value.dtype)
            except pickle.UnpicklingError as e:
                raise UserError(f"cannot use {what} '{source}': {e}.") from None
        elif value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.number, np.bool_,
                                                 np.dtype) + tuple(allowed_types)):
            continue
        else:
            raise UnsafePickleError(refusal(source, type(value).__name__, what))
    return obj


def restricted_load(file, source, what='file', allowed=None, allowed_types=()):
    """Unpickle one object from the open binary ``file`` through :class:`RestrictedUnpickler`."""
    try:
        obj = RestrictedUnpickler(file, source, allowed, what).load()
    except UserError:
        raise
    except READ_ERRORS as e:
        raise UserError(f"cannot read {what} '{source}': {type(e).__name__}: {e}. The file is truncated, "
                        'damaged or not in the expected format: copy it again from its source or use another '
                        'checkpoint.') from None
    return check_plain(obj, source, what, allowed_types)


def _unpack_big_params(obj):
    """``paddle.save`` splits arrays over 4 GB (``UnpackBigParamInfor@@``); join them."""
    info = obj.pop('UnpackBigParamInfor@@', None)  # (sic: Paddle's spelling)
    if isinstance(info, dict):
        for key, value in info.items():
            parts = [obj.pop(part) for part in value['slices']]
            obj[key] = np.concatenate(parts).reshape(value['OriginShape'])
    return obj


def _to_tensors(obj):
    import paddle
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return paddle.to_tensor(obj[1])  # a Tensor as saved by Paddle 2.1: (name, array)
    if isinstance(obj, dict):
        return type(obj)((k, _to_tensors(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tensors(v) for v in obj)
    return obj


def load_paddle(path, what='file', return_numpy=False):
    """``paddle.load(path)`` of a pickled Paddle file, without running code from it.

    Dicts come back like ``paddle.load`` returns them: arrays as ``paddle.Tensor`` (or NumPy
    with ``return_numpy``), the ``StructuredToParameterName@@`` name table removed.
    """
    with open(path, 'rb') as f:
        obj = restricted_load(f, path, what)
    if isinstance(obj, dict):
        try:
            obj = _unpack_big_params(obj)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"cannot read {what} '{path}': malformed split parameter table ({e}).") from None
        obj.pop('StructuredToParameterName@@', None)
    return obj if return_numpy else _to_tensors(obj)


def loads_restricted(data, source, what='file', allowed=None):
    """:func:`restricted_load` of bytes."""
    return restricted_load(io.BytesIO(data), source, what, allowed)


def is_safetensors(path):
    return os.path.splitext(str(path))[1].lower() == '.safetensors'
