"""Config loading and component building on top of PaddleSeg's ``Config``/``SegBuilder``.

PaddleSeg ignores unknown top-level keys and reports an unknown ``type`` without naming
the choices; both are checked here first so that a typo gets a precise message.
"""
import difflib
import os

import yaml
from paddleseg.cvlibs import Config, SegBuilder, manager
from paddleseg.utils.utils import CachedProperty as cached_property

from ..datasets.metainfo import dataset_meta
from ..errors import UserError
from .train import use_sync_bn

TOP_LEVEL_KEYS = ('batch_size', 'iters', 'model', 'train_dataset', 'val_dataset', 'loss', 'optimizer',
                  'lr_scheduler', 'test_config', 'export', 'distill_loss', 'to_static_training')
TEST_CONFIG_KEYS = ('aug_eval', 'scales', 'flip_horizontal', 'flip_vertical', 'is_slide', 'crop_size', 'stride')
REGISTRIES = {'model': [manager.MODELS, manager.BACKBONES], 'train_dataset': [manager.DATASETS],
              'val_dataset': [manager.DATASETS], 'loss': [manager.LOSSES],
              'optimizer': [manager.OPTIMIZERS]}
TRANSFORM_REGISTRY = manager.TRANSFORMS


def _suggest(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ''


def _check_unknown_keys(dic, known, where):
    for key in dic:
        if key not in known:
            raise UserError(f"unknown key '{key}' in {where}.{_suggest(key, known)} "
                            f"Known keys: {', '.join(known)}.")


def _check_types(node, registries, where):
    """Every ``type:`` under ``node`` must be registered in one of ``registries``."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_types(item, registries, f'{where}[{i}]')
    elif isinstance(node, dict):
        if 'type' in node:
            names = sorted({n for r in registries for n in r.components_dict})
            if node['type'] not in names:
                raise UserError(f"{where}: type '{node['type']}' is not registered.{_suggest(str(node['type']), names)} "
                                f"Registered: {', '.join(names)}."
                                + (" (The project's models are registered by `import paddleseg_ddr`.)" if where == 'model' else ''))
        for key, value in node.items():
            regs = [TRANSFORM_REGISTRY] if key == 'transforms' else registries
            _check_types(value, regs, f'{where}.{key}')


def load_config(path, learning_rate=None, batch_size=None, iters=None, opts=None):
    """Parse a YAML config (with ``_base_`` inheritance) and check its keys and types."""
    if not path or not os.path.isfile(path):
        raise UserError(f"config file not found: '{path}'. Configs live under configs/, e.g. "
                        "configs/ddrnet/ddrnet23_slim_cityscapes_1024x1024_120k.yml.")
    for item in opts or []:
        if '=' not in item:
            raise UserError(f"--opts expects key=value pairs (e.g. batch_size=2 model.num_classes=19), got '{item}'.")
    try:
        cfg = Config(path, learning_rate=learning_rate, batch_size=batch_size, iters=iters, opts=opts)
    except (AssertionError, ValueError, RuntimeError, KeyError, FileNotFoundError, yaml.YAMLError) as e:
        raise UserError(f"invalid config '{path}': {e}") from None
    _check_unknown_keys(cfg.dic, TOP_LEVEL_KEYS, f"config '{path}'")
    _check_unknown_keys(cfg.dic.get('test_config') or {}, TEST_CONFIG_KEYS, 'test_config')
    for section, registries in REGISTRIES.items():
        node = cfg.dic.get(section)
        if section == 'loss' and node:
            node = node.get('types')
        _check_types(node, registries, section)
    return cfg


class Builder(SegBuilder):
    """PaddleSeg's builder, with SyncBN conversion when several GPUs train, and
    construction errors turned into ``UserError``."""

    def build_component(self, cfg):
        try:
            return super().build_component(cfg)
        except RuntimeError as e:
            cause = e.__context__ if isinstance(e.__context__, UserError) else None
            raise (cause or UserError(str(e))) from None

    @cached_property
    def model(self):
        return use_sync_bn(super().model)

    def dataset_meta(self):
        """The :class:`DatasetMeta` of the config's dataset (val, else train), read from the
        dataset class without building it (export and prediction need no data on disk)."""
        section = self.config.dic.get('val_dataset') or self.config.dic.get('train_dataset') or {}
        num_classes = (self.config.dic.get('model') or {}).get('num_classes')
        if section.get('type') in manager.DATASETS.components_dict:
            return dataset_meta(section['type'], num_classes)
        if not num_classes:
            raise UserError('the config names no registered dataset type and no model.num_classes: '
                            'cannot tell the classes of this model.')
        return dataset_meta(type('Unnamed', (), {'NUM_CLASSES': num_classes}))

    def eval_options(self, **overrides):
        """``test_config`` of the YAML, overridden by explicit (non-None) arguments."""
        options = dict(self.config.test_config)
        options.update({k: v for k, v in overrides.items() if v is not None})
        return options
