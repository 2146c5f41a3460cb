"""One training per run folder.

Two trainings writing checkpoints into one ``--save_dir`` would interleave their files (and
one would die when the other prunes a folder it is writing). A training therefore holds an
exclusive lock on ``<save_dir>/.train.lock`` for as long as it runs:

- the lock is ``flock`` on an open file descriptor, so the kernel releases it when the
  process ends in any way (exit, exception, SIGKILL): a killed run never blocks a resume;
- the file holds the holder's pid, host, start time and command line, so the refusal
  message says which run holds the folder;
- it is removed (while still locked) when the run ends normally; one left by a killed run is
  simply locked again and rewritten.

Under ``paddle.distributed.launch`` the caller takes the lock on rank 0 only (the rank that
writes the folder); a second job is refused by its rank 0, and the launcher stops its other
ranks.
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from paddleseg.utils import logger

from ..errors import UserError

LOCK_FILE = '.train.lock'


def check_run_dir(save_dir):
    """Refuse a ``--save_dir`` that is a file, or that cannot be created because a part of
    its path is a file (checked at start, before anything is built or written)."""
    if os.path.exists(save_dir) and not os.path.isdir(save_dir):
        raise UserError(f"--save_dir '{save_dir}' is a file, not a folder: give another --save_dir "
                        "(checkpoints go to <save_dir>/iter_N/).")
    parent = os.path.normpath(save_dir)
    while True:
        up = os.path.dirname(parent)
        if up in ('', parent):
            return
        parent = up
        if os.path.exists(parent):
            if not os.path.isdir(parent):
                raise UserError(f"--save_dir '{save_dir}' cannot be created: '{parent}' is a file. "
                                "Give another --save_dir.")
            return


def _read_holder(fd):
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode('utf-8')) if data.strip() else None
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def _describe(holder):
    if not holder:
        return 'another process'
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
            + (f": {holder['command']}" if holder.get('command') else ''))


@contextlib.contextmanager
def run_dir_lock(save_dir):
    """Hold the exclusive lock of ``save_dir`` (created if needed) for the ``with`` block;
    a ``UserError`` naming the holder if another run holds it."""
    check_run_dir(save_dir)
    try:
        os.makedirs(save_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --save_dir '{save_dir}': {e.strerror}. Give another --save_dir.") from None
    path = os.path.join(save_dir, LOCK_FILE)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write in --save_dir '{save_dir}' ({path}: {e.strerror}): "
                            "give a folder you can write to.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"--save_dir '{save_dir}' is in use by another training ({_describe(holder)}): "
                                "two runs in one folder would mix their checkpoints. Wait for that run to end "
                                "(it releases the folder when it stops, killed or not), or give another "
                                "--save_dir.") from None
            logger.warning(f"cannot lock '{path}' ({e.strerror}; a file system without locks?): "
                           "make sure no other training uses this --save_dir.")
            yield
            return
        # A run that ended between our open and our lock removed the file we opened: lock
        # the file now at the path instead (else two runs could hold two different files).
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        stale = _read_holder(fd)
        if stale:
            logger.info(f"'{save_dir}' was last used by a run that did not end cleanly ({_describe(stale)}); "
                        "its lock is released: taking the folder over.")
        info = {'pid': os.getpid(), 'host': socket.gethostname(),
                'started': datetime.datetime.now().isoformat(timespec='seconds'),
                'command': ' '.join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode('utf-8'), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)  # still locked: a run waiting on this file re-opens the path
        os.close(fd)
