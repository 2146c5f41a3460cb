import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
QUICKSTART = os.path.join(ROOT, 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than ~20 s (training, multi-process)')


@pytest.fixture(scope='session')
def mini_root(tmp_path_factory):
    """The mini Cityscapes at the quickstart's default size, made once per test session."""
    from paddleseg_ddr.datasets import generate_mini_cityscapes
    root = tmp_path_factory.mktemp('data') / 'mini_cityscapes'
    generate_mini_cityscapes(str(root))
    return str(root)


@pytest.fixture
def mini_config(mini_root):
    """Factory: write a config derived from the quickstart config into a folder."""
    def make(folder, batch_size=2, crop=128, iters=4, **overrides):
        dic = {
            '_base_': QUICKSTART, 'batch_size': batch_size, 'iters': iters,
            'train_dataset': {'dataset_root': mini_root, 'transforms': [
                {'type': 'RandomPaddingCrop', 'crop_size': [crop, crop]},
                {'type': 'RandomHorizontalFlip'},
                {'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]},
            'val_dataset': {'dataset_root': mini_root},
            'loss': {'types': [{'type': 'DDROhemCrossEntropyLoss', 'min_kept': batch_size * crop * crop // 8,
                                'weight': None}], 'coef': [1, 0.4]},
        }
        dic.update(overrides)
        path = os.path.join(str(folder), 'config.yml')
        with open(path, 'w') as f:
            yaml.safe_dump(dic, f)
        return path
    return make


# Test modules run in a process of their own (by tests/test_isolated.py), not in the main
# pytest process: after the dataset trainings, tests/deploy/test_engines.py (OpenVINO, Paddle
# oneDNN bf16 and ONNX Runtime int8 sessions in one process) leaves the process in a state in
# which a later export + subprocess segfaults inside CPython (os.waitpid's argument parsing;
# reproduced with tests/datasets + test_engines.py + tests/deploy/test_infer.py, never with two
# of the three). The product runs one engine per process; the tests keep that shape here.
ISOLATED = ('deploy/test_engines.py',)
ISOLATED_ENV = 'PADDLESEG_DDR_ISOLATED_RUN'


def pytest_collection_modifyitems(config, items):
    if os.environ.get(ISOLATED_ENV):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    isolated = {os.path.join(here, p) for p in ISOLATED}
    kept = [i for i in items if str(i.fspath) not in isolated]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if str(i.fspath) in isolated])
        items[:] = kept
