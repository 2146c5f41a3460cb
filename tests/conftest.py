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


def pytest_collection_modifyitems(config, items):
    """Leave the modules of isolation.ISOLATED to tests/test_isolated.py (own process)."""
    from isolation import deselect_isolated
    deselect_isolated(config, items)
