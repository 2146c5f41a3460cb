"""Config loading and component building on top of PaddleSeg's ``Config``/``SegBuilder``.

PaddleSeg ignores unknown top-level keys and reports an unknown ``type`` without naming
the choices; both are checked here first so that a typo gets a precise message.
"""
import difflib
import inspect
import os
import re
import sys

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


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _yaml_number_hint(value):
    """PyYAML reads ``1e-3`` (no dot) as text: say how to write it as a number."""
    if not isinstance(value, str):
        return ''
    try:
        number = float(value)
    except ValueError:
        return ''
    return f' (YAML reads {value} as text: write the number with a dot, e.g. {number:.1e})'


def _check_values(dic, path):
    """Values PaddleSeg would take without complaint, or fail on with a traceback later."""
    for key, flag, example in (('iters', '--iters', 1000), ('batch_size', '--batch_size', 2)):
        if key in dic and not (_is_int(dic[key]) and dic[key] > 0):
            raise UserError(f"{key}: {dic[key]!r} in config '{path}' is not a positive whole number: write e.g. "
                            f"'{key}: {example}' in the config (or pass {flag} N).")
    scheduler = dic.get('lr_scheduler')
    if isinstance(scheduler, dict):
        for key, low in (('learning_rate', 'positive'), ('end_lr', 'non-negative'), ('warmup_start_lr', 'non-negative')):
            if key not in scheduler:
                continue
            value = scheduler[key]
            if not (_is_number(value) and (value > 0 if low == 'positive' else value >= 0)):
                fix = ' (or pass --learning_rate X)' if key == 'learning_rate' else ''
                raise UserError(f"lr_scheduler.{key}: {value!r} in config '{path}' is not a {low} number"
                                f"{_yaml_number_hint(value)}: write e.g. '{key}: 0.01'{fix}.")
    model = dic.get('model') or {}
    num_classes = model.get('num_classes')
    if num_classes is None:
        return
    if not (_is_int(num_classes) and num_classes > 0):
        raise UserError(f"model.num_classes: {num_classes!r} in config '{path}' is not a positive whole number.")
    for section in ('train_dataset', 'val_dataset'):
        node = dic.get(section) or {}
        cls = manager.DATASETS.components_dict.get(node.get('type'))
        expected = node.get('num_classes', getattr(cls, 'NUM_CLASSES', None))
        if _is_int(expected) and expected != num_classes:
            raise UserError(f"model.num_classes is {num_classes} in config '{path}' but {section} "
                            f"({node.get('type')}) has {expected} classes: the model predicts one score per class "
                            f"of its dataset. Remove model.num_classes or set it to {expected} "
                            f"(e.g. --opts model.num_classes={expected}).")


def _argument_names(component):
    """The keyword arguments ``component`` (class or function) takes, and whether it also
    takes any (``**kwargs``)."""
    target = component.__init__ if inspect.isclass(component) else component
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self'}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _unknown_argument(where, type_name, key, known):
    known = sorted(known)
    return UserError(f"{where}: unknown argument '{key}' for {type_name}.{_suggest(key, known)} "
                     f"{type_name} takes: {', '.join(known)}.")


def _check_model_arguments(node, where):
    """Every argument written for a model component (the model, its backbone...) must be one
    its class takes; components taking ``**kwargs`` are checked when built (see Builder)."""
    if isinstance(node, dict):
        component = node.get('type')
        for registry in REGISTRIES['model']:
            if component in registry.components_dict:
                names, open_ended = _argument_names(registry.components_dict[component])
                if not open_ended:
                    for key in node:
                        if key != 'type' and key not in names:
                            raise _unknown_argument(where, component, key, names)
                break
        for key, value in node.items():
            _check_model_arguments(value, f'{where}.{key}')
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_model_arguments(item, f'{where}[{i}]')


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
    _check_values(cfg.dic, path)
    _check_model_arguments(cfg.dic.get('model'), 'model')
    return cfg


def _misspelt_argument(cfg, error):
    """A ``UserError`` with the closest known argument for a component that took ``**kwargs``
    and passed a misspelt one on (``DDRNet23Slim(aux_hed=...)`` -> ``DualResNet``), else None."""
    match = re.search(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'", str(error or ''))
    type_name = cfg.get('type') if isinstance(cfg, dict) else None
    if not (isinstance(error, TypeError) and match and isinstance(type_name, str)):
        return None
    callee_name, key = match.groups()
    if key not in cfg:  # not the user's argument: a fault inside the component
        return None
    component = next((r.components_dict[type_name] for regs in [*REGISTRIES.values(), [TRANSFORM_REGISTRY]]
                      for r in regs if type_name in r.components_dict), None)
    if component is None:
        return None
    known, _ = _argument_names(component)
    callee = getattr(sys.modules.get(component.__module__), callee_name.split('.')[0], None)
    if callee is not None and callable(callee):
        known |= _argument_names(callee)[0]
    model_types = {n for r in REGISTRIES['model'] for n in r.components_dict}
    return _unknown_argument('model' if type_name in model_types else type_name, type_name, key, known)


class Builder(SegBuilder):
    """PaddleSeg's builder, with SyncBN conversion when several GPUs train, and
    construction errors turned into ``UserError``."""

    def build_component(self, cfg):
        try:
            return super().build_component(cfg)
        except RuntimeError as e:
            cause = e.__context__ if isinstance(e.__context__, UserError) else None
            cause = cause or _misspelt_argument(cfg, e.__context__)
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
