"""Test modules run in a process of their own (by tests/test_isolated.py), not in the main
pytest process. With the CamVid/VOC trainings, exports and predictions, then the deploy tests
(OpenVINO, Paddle oneDNN bf16, ONNX Runtime sessions) in one process, the process's malloc heap
ends up corrupted: a later export + subprocess segfaults in CPython (os.waitpid's argument
parsing) or inside glibc's malloc, where Paddle's signal handler then deadlocks. Reproduced with
tests/datasets + tests/deploy (also with test_engines.py and the CamVid/VOC trainings in processes
of their own), and with tests/deploy then tests/engine (the 2-process launch test crashed);
tests/deploy alone, and tests/datasets + test_infer.py, pass. The product runs one job and one engine per process;
each test folder (and test_engines.py) gets a process of its own here. Cause not found (a third-party library: the crash is
in glibc's allocator, far from the code that corrupted it)."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
ISOLATED = ('datasets', 'deploy/test_engines.py', 'deploy', 'engine', 'losses', 'models', 'tools', 'utils')  # under tests/
ISOLATED_ENV = 'PADDLESEG_DDR_ISOLATED_RUN'


def deselect_isolated(config, items):
    if os.environ.get(ISOLATED_ENV):
        return
    isolated = tuple(os.path.join(ROOT, 'tests', p) for p in ISOLATED)

    def inside(item):
        path = str(item.fspath)
        return any(path == p or path.startswith(p + os.sep) for p in isolated)
    kept = [i for i in items if not inside(i)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if inside(i)])
        items[:] = kept
