"""Test modules run in a process of their own (by tests/test_isolated.py), not in the main
pytest process: after the dataset trainings, tests/deploy/test_engines.py (OpenVINO, Paddle
oneDNN bf16 and ONNX Runtime int8 sessions in one process) leaves the process in a state in
which a later export + subprocess segfaults inside CPython (os.waitpid's argument parsing;
reproduced with tests/datasets + test_engines.py + tests/deploy/test_infer.py, never with two
of the three). The product runs one engine per process; the tests keep that shape here."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
ISOLATED = ('deploy/test_engines.py',)
ISOLATED_ENV = 'PADDLESEG_DDR_ISOLATED_RUN'


def deselect_isolated(config, items):
    if os.environ.get(ISOLATED_ENV):
        return
    isolated = {os.path.join(ROOT, 'tests', p) for p in ISOLATED}
    kept = [i for i in items if str(i.fspath) not in isolated]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if str(i.fspath) in isolated])
        items[:] = kept
