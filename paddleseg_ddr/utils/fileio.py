"""Atomic file writes: every file the project writes appears complete under its final name
or not at all, and nothing else in its folder is touched.

A file is written under a temporary name in the same folder (``<name>.tmp-<pid>-<n>``, so the
final ``os.replace`` is a rename within one file system) and renamed over the final name when
complete; on any failure the temporary file is removed and the final name keeps its previous
content. Folders are never renamed or removed: they may hold files of the user's.
"""
import contextlib
import glob
import itertools
import os

TEMP_TAG = '.tmp-'
_counter = itertools.count()


def temp_name(path, suffix=''):
    """A temporary name beside ``path``, unique to this process (and call); ``suffix`` for
    writers that pick the format from the extension (e.g. ``'.png'``)."""
    return f'{path}{TEMP_TAG}{os.getpid()}-{next(_counter)}{suffix}'


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _fsync(path):
    """Flush a file written by someone else's writer to disk before it is renamed."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix=''):
    """Yield a temporary path to write ``path`` through; renamed to ``path`` on success.

    For writers that take a file name (``paddle.save``, image writers): ``with
    atomic_path(p) as tmp: writer(tmp)``. If the block raises, or writes nothing, the
    temporary file is removed and ``path`` is left as it was.
    """
    tmp = temp_name(path, suffix)
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise OSError(f"nothing was written for '{path}' (expected the temporary file '{tmp}')")
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path, mode='wb', encoding=None):
    """``open(path, mode)`` that only replaces ``path`` once the block completes."""
    if not mode.startswith('w'):
        raise ValueError(f"atomic_write writes a new file: mode must be 'w' or 'wb', got '{mode}'")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def save_paddle(obj, path):
    """``paddle.save(obj, path)``, atomically."""
    import paddle
    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)
    return path


def write_image(path, image):
    """Encode ``image`` in the format of ``path``'s extension and write it atomically
    (``cv2.imwrite`` writes in place and returns False instead of raising)."""
    import cv2
    ext = os.path.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise OSError(f"cannot encode an image of shape {getattr(image, 'shape', '?')} as '{ext}' for '{path}'")
    with atomic_write(path) as f:
        f.write(buf.tobytes())
    return path


def remove_own_files(folder, names):
    """Remove the files ``names`` from ``folder`` — and temporary files left beside them by an
    interrupted write — and nothing else. Returns what the folder still holds afterwards."""
    for name in names:
        path = os.path.join(folder, name)
        for tmp in glob.glob(glob.escape(path) + TEMP_TAG + '*'):
            _remove(tmp)
        _remove(path)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
