"""The harness of the table-driven error tests (tests/test_errors_*.py): every case runs an
entry point the way its script does and must end with one clear paragraph on stderr, exit
code 2, no traceback, and no partial output.

A case is ``ErrorCase(id, entry, argv, expect, setup=None, absent=())``:
- ``entry``: 'train', 'val', 'export', 'predict', 'infer', 'onnx_infer' (``paddleseg_ddr.cli``
  mains, run in-process through ``cli.run`` exactly as the scripts do), or 'script:<path>'
  for a script run as a subprocess (e.g. 'script:tools/make_mini_cityscapes.py');
- ``argv(ctx)`` and ``setup(ctx)`` get a :class:`Ctx` (``ctx.tmp`` a fresh folder,
  ``ctx.mini_root`` the shared mini Cityscapes, ``ctx.config(**overrides)`` a small training
  config written into ``ctx.tmp``);
- ``expect``: substrings the message must contain (the file or value, and the fix);
- ``absent(ctx)``: paths that must not exist afterwards (no half-written output).
"""
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))


@dataclass
class ErrorCase:
    id: str
    entry: str
    argv: Callable
    expect: tuple
    setup: Optional[Callable] = None
    absent: Callable = field(default=lambda ctx: ())


@dataclass
class Ctx:
    tmp: str
    mini_root: str
    make_config: Callable

    def config(self, **overrides):
        return self.make_config(self.tmp, **overrides)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)


def run_case(case, ctx, capsys):
    """Run ``case``; returns the message printed. Fails the test on anything but a clean exit 2."""
    if case.setup:
        case.setup(ctx)
    argv = [str(a) for a in case.argv(ctx)]
    if case.entry.startswith('script:'):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, case.entry[len('script:'):]), *argv],
                              capture_output=True, text=True, cwd=ctx.tmp, timeout=600)
        code, err = proc.returncode, proc.stderr
    else:
        from paddleseg_ddr import cli
        main = getattr(cli, f'{case.entry}_main')
        capsys.readouterr()
        try:
            cli.run(lambda: main(argv))
            code = 0
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
    assert code == 2, f'{case.id}: exit code {code}, expected 2; stderr:\n{err[-3000:]}'
    assert 'Traceback' not in err, f'{case.id}: traceback on stderr:\n{err[-3000:]}'
    message = err[err.rfind('error: '):] if 'error: ' in err else err
    for text in case.expect:
        assert text.format(tmp=ctx.tmp) in message, f'{case.id}: {text!r} not in the message:\n{message}'
    for path in case.absent(ctx):
        assert not os.path.exists(path), f'{case.id}: partial output left at {path}'
    return message
