"""Reading and writing an export directory's ``deploy.yaml`` and the files it names.

deploy.yaml is checked against its schema when read (:func:`validate_deploy`): a misspelt
key, an unknown output op or transform, a transform argument its class does not take or a
malformed input shape is refused with the file named, instead of running with the entry
silently ignored (a misspelt ``transforms`` would skip normalisation).
"""
import difflib
import inspect
import numbers
import os

import numpy as np
import yaml
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_write

DEPLOY_FILE = 'deploy.yaml'
OUTPUT_OPS = ('argmax', 'softmax', 'none')
OUTPUT_DTYPES = ('int32', 'int64', 'float32', 'float16')
FILE_KEYS = ('model', 'params', 'onnx_model')
# Every key of the Deploy section: PaddleSeg 2.8's export writes model, params, transforms,
# input_shape, output_op, output_dtype; export.py adds onnx_model and the dataset metadata.
DEPLOY_KEYS = (*FILE_KEYS, 'transforms', 'input_shape', 'output_op', 'output_dtype',
               'class_names', 'palette', 'label_ids')


def deploy_paths(path):
    """(export directory, its deploy.yaml) for ``path``: the directory or its deploy.yaml."""
    model_dir = os.path.dirname(os.path.abspath(path)) if path.endswith(('.yaml', '.yml')) else path
    return model_dir, os.path.join(model_dir, DEPLOY_FILE)


def load_deploy_yaml(deploy_file):
    """The whole document of ``deploy_file``, checked to hold a ``Deploy`` section."""
    if not os.path.isfile(deploy_file):
        raise UserError(f"'{os.path.dirname(deploy_file)}' has no deploy.yaml: pass the --save_dir of export.py.")
    with open(deploy_file) as f:
        try:
            doc = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UserError(f"'{deploy_file}' is not valid YAML ({e}): export again with export.py.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get('Deploy'), dict):
        near = _closest(list(doc) if isinstance(doc, dict) else [], ['Deploy'])
        raise UserError(f"'{deploy_file}' has no 'Deploy' section{near}: it was not written by export.py.")
    return doc


def _closest(found, known):
    """" (did you mean 'x'?)" for the first of ``found`` close to one of ``known``, or ''."""
    for name in found:
        match = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        if match:
            return f" ('{name}': did you mean '{match[0]}'?)"
    return ''


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_transforms(deploy_file, transforms):
    from paddleseg.cvlibs import manager
    import paddleseg.transforms  # noqa: F401  (registers PaddleSeg's transforms)
    fix = 'correct it, or export again with export.py'
    if not isinstance(transforms, list):
        raise UserError(f"'{deploy_file}': 'transforms' must be a list of {{type: ..., argument: value}} "
                        f"entries (e.g. [{{type: Normalize}}]), got {transforms!r}: {fix}.")
    known = sorted(manager.TRANSFORMS.components_dict)
    for i, entry in enumerate(transforms, 1):
        where = f"'{deploy_file}': transform {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get('type'), str):
            raise UserError(f"{where} must be a mapping with a 'type' (e.g. {{type: Normalize}}), got {entry!r}: "
                            f"{fix}.")
        args = {k: v for k, v in entry.items() if k != 'type'}
        name = entry['type']
        if name not in manager.TRANSFORMS.components_dict:
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ''
            raise UserError(f"{where} has the unknown type '{name}': {hint}PaddleSeg's transforms are "
                            f"{', '.join(known)}; {fix}.")
        cls = manager.TRANSFORMS[name]
        params = inspect.signature(cls).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in args:
            if not takes_any and key not in names:
                near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
                hint = f"did you mean '{near[0]}'? " if near else ''
                raise UserError(f"{where} ({name}) has no argument '{key}': {hint}{name} takes "
                                f"{', '.join(names) or 'no arguments'}; {fix}.")
        missing = [n for n in names if params[n].default is inspect.Parameter.empty and n not in args]
        if missing:
            raise UserError(f"{where} ({name}) lacks its argument(s) {', '.join(missing)}: {fix}.")
        try:
            op = cls(**args)
        except Exception as e:  # the transform's own check of its values (ValueError, TypeError, ...)
            raise UserError(f"{where} ({name}) refuses its arguments {args}: {e}; {fix}.") from None
        try:  # values the constructor does not check (e.g. a mean that is not numbers) fail on an image
            op({'img': np.full((32, 48, 3), 128, np.float32), 'trans_info': [], 'gt_fields': []})
        except Exception as e:
            raise UserError(f"{where} ({name}) refuses its arguments {args}: it fails on an image "
                            f"({type(e).__name__}: {str(e).strip()[:200]}); {fix}.") from None


def _check_input_shape(deploy_file, shape):
    ok = (isinstance(shape, list) and len(shape) == 4
          and all(d is None or (_is_int(d) and (d == -1 or d > 0)) for d in shape) and shape[1] in (3, -1, None))
    if not ok:
        raise UserError(f"'{deploy_file}': 'input_shape' must be [N, 3, H, W] with each entry a positive size or "
                        f"-1 (or null) for a dynamic one, got {shape!r}: correct it, or export again with "
                        "export.py (--input_shape N 3 H W fixes the shape).")


def _check_meta(deploy_file, deploy):
    fix = 'correct them, or export again with export.py'
    names, palette, ids = deploy.get('class_names'), deploy.get('palette'), deploy.get('label_ids')
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise UserError(f"'{deploy_file}': 'class_names' must be a list of names, got {names!r}: {fix}.")
    if palette is not None and not (isinstance(palette, list) and all(
            isinstance(c, list) and len(c) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in c) for c in palette)):
        raise UserError(f"'{deploy_file}': 'palette' must be a list of [R, G, B] colours (0-255), got "
                        f"{palette!r}: {fix}.")
    if ids is not None and not (isinstance(ids, list) and all(_is_int(v) and 0 <= v <= 255 for v in ids)):
        raise UserError(f"'{deploy_file}': 'label_ids' must be a list of label ids (0-255), got {ids!r}: {fix}.")
    lengths = {k: len(v) for k, v in (('class_names', names), ('palette', palette), ('label_ids', ids)) if v}
    if len(set(lengths.values())) > 1:
        raise UserError(f"'{deploy_file}': class_names, palette and label_ids differ in length "
                        f"({', '.join(f'{k} {n}' for k, n in lengths.items())}): {fix}.")


def validate_deploy(deploy, deploy_file):
    """Check a ``Deploy`` section against its schema; a :class:`UserError` naming
    ``deploy_file`` and the entry otherwise. Returns the section with defaults filled in
    (``output_op`` argmax, null ``input_shape`` entries as -1)."""
    unknown = [k for k in deploy if k not in DEPLOY_KEYS]
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(str(key), DEPLOY_KEYS, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ''
        raise UserError(f"'{deploy_file}' has the unknown key '{key}' in its Deploy section: {hint}The known keys "
                        f"are {', '.join(DEPLOY_KEYS)}. Correct the key, or export again with export.py.")
    for key in FILE_KEYS:
        if key in deploy and not (isinstance(deploy[key], str) and deploy[key].strip()):
            raise UserError(f"'{deploy_file}': '{key}' must name a file of the export (e.g. model.json), got "
                            f"{deploy[key]!r}: correct it, or export again with export.py.")
    if 'transforms' not in deploy:
        raise UserError(f"'{deploy_file}' has no 'transforms' (the preprocessing, e.g. [{{type: Normalize}}]): "
                        "without it images would be fed unnormalised. Export again with export.py.")
    _check_transforms(deploy_file, deploy['transforms'])
    op = deploy.setdefault('output_op', 'argmax')
    if op not in OUTPUT_OPS:
        near = difflib.get_close_matches(str(op), OUTPUT_OPS, n=1, cutoff=0.5)
        hint = f"did you mean '{near[0]}'? " if near else ''
        raise UserError(f"'{deploy_file}': output_op '{op}' is not one of {', '.join(OUTPUT_OPS)}: {hint}It must be "
                        "the op the graph was exported with (export.py --output_op); correct it or export again.")
    dtype = deploy.get('output_dtype')
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        raise UserError(f"'{deploy_file}': output_dtype '{dtype}' is not one of {', '.join(OUTPUT_DTYPES)}: "
                        "correct it, or export again with export.py.")
    if deploy.get('input_shape') is not None:
        _check_input_shape(deploy_file, deploy['input_shape'])
        deploy['input_shape'] = [-1 if d is None else d for d in deploy['input_shape']]
    _check_meta(deploy_file, deploy)
    return deploy


def write_deploy_yaml(deploy_file, doc):
    """Write (or replace) ``deploy_file`` atomically; the one formatter of deploy.yaml."""
    with atomic_write(deploy_file, 'w', encoding='utf-8') as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def _resolve(model_dir, deploy_file, key, name):
    path = os.path.join(model_dir, name)
    if os.path.isfile(path):
        return path
    beside = os.path.join(os.path.dirname(path), 'model.json')
    if key == 'model' and beside != path and os.path.isfile(beside):
        # PaddleSeg 2.8's export on Paddle 3 names model.pdmodel but writes model.json.
        logger.warning(f"'{deploy_file}' names the model file '{name}', which does not exist; using "
                       f"'{beside}' beside it instead (PaddleSeg 2.8 exports made with Paddle 3 name "
                       "model.pdmodel but write model.json).")
        return beside
    also = ", and there is no model.json beside it" if key == 'model' else ''
    raise UserError(f"'{model_dir}' lacks {name}, named as '{key}' in deploy.yaml{also}: the export is "
                    "incomplete. Copy the whole export folder, or export again with export.py --save_dir "
                    f"{model_dir}.")


def deploy_meta(deploy):
    """The dataset metadata recorded by export.py (class names, palette, label ids), or None
    for exports without it (older ones, PaddleSeg's)."""
    from ..datasets.metainfo import DatasetMeta
    if not deploy.get('class_names') or not deploy.get('palette'):
        return None
    try:
        return DatasetMeta(classes=tuple(deploy['class_names']), palette=tuple(tuple(c) for c in deploy['palette']),
                           label_ids=tuple(deploy['label_ids']) if deploy.get('label_ids') else None)
    except (TypeError, ValueError) as e:
        raise UserError(f"deploy.yaml: inconsistent class_names / palette / label_ids ({e}): export again.") from None


def read_deploy_config(path, required=('model', 'params')):
    """The ``Deploy`` section of ``path`` (an export directory or its deploy.yaml), with the
    named files resolved to absolute paths and checked to exist."""
    model_dir, deploy_file = deploy_paths(path)
    doc = load_deploy_yaml(deploy_file)
    extra = [k for k in doc if k != 'Deploy']
    if extra:
        raise UserError(f"'{deploy_file}' has the unknown top-level key '{extra[0]}': deploy.yaml holds only its "
                        "'Deploy' section. Move the entry into Deploy if it belongs there, or remove it.")
    deploy = validate_deploy(dict(doc['Deploy']), deploy_file)
    for key in required:
        if not deploy.get(key):
            hint = ' (export with --format onnx)' if key == 'onnx_model' else ''
            raise UserError(f"'{deploy_file}' names no '{key}' file{hint}.")
        deploy[key] = _resolve(model_dir, deploy_file, key, deploy[key])
    return deploy
