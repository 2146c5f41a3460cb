"""Reading and writing an export directory's ``deploy.yaml`` and the files it names.

Schema of the ``Deploy`` section (PaddleSeg 2.8's, extended)::

    Deploy:
      model: model.json              # the main model's files, made for `precision`
      params: model.pdiparams
      onnx_model: model.onnx         # optional (export.py --format onnx, tools/export_onnx.py)
      openvino_model: model.xml      # optional OpenVINO IR (its model.bin beside it)
      precision: fp32                # what the files above were made for: fp32 | int8 (default fp32)
      precisions:                    # optional: the same network made for other precisions
        int8:                        # any of MODEL_PRECISIONS other than `precision`
          onnx_model: model.int8.onnx          # at least one file key (FILE_KEYS)
          openvino_model: model.int8.xml       # optional
          info: {tool: ..., calibration_images: 8, kept_float: [...]}   # free mapping, optional
      transforms: [...]              # preprocessing, PaddleSeg transforms
      input_shape: [-1, 3, -1, -1]
      output_op: argmax              # argmax | softmax | none
      output_dtype: int32
      class_names: [...]; palette: [...]; label_ids: [...]   # the dataset's METAINFO

File names are relative to the export folder. Runtime precisions (RUN_PRECISIONS) map onto
model precisions: fp32 and int8 run the files made for them, bf16 runs the fp32 files with
the engine's bf16 arithmetic (see engines.py). :func:`read_deploy_config` with ``precision=``
returns the chosen model's files at the top level; a precision the export lacks is refused
with the command that makes it. Writers of a `precisions` entry (tools/quantize.py) write
their files atomically, then call :func:`record_precision`, which rewrites deploy.yaml
atomically; export.py removes the recorded files of every precision when it replaces the
graph they were made from.

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
# The files of one model: Paddle graph + weights, ONNX model, OpenVINO IR (.xml, its .bin beside it).
FILE_KEYS = ('model', 'params', 'onnx_model', 'openvino_model')
# Precisions a model's files can be made for, and those an engine can run: bf16 is not a
# file format here but a way of running the fp32 files (the engine converts on load).
MODEL_PRECISIONS = ('fp32', 'int8')
RUN_PRECISIONS = ('fp32', 'bf16', 'int8')
# One entry of `precisions`: the files of that model, and `info`, a free mapping of how it was
# made (tool, calibration images, layers kept in float ...), shown to users, never interpreted.
PRECISION_ENTRY_KEYS = (*FILE_KEYS, 'info')
# Every key of the Deploy section: PaddleSeg 2.8's export writes model, params, transforms,
# input_shape, output_op, output_dtype; export.py adds onnx_model, precision and the dataset
# metadata; tools/quantize.py adds precisions (see record_precision).
DEPLOY_KEYS = (*FILE_KEYS, 'precision', 'precisions', 'transforms', 'input_shape', 'output_op', 'output_dtype',
               'class_names', 'palette', 'label_ids')
QUANTIZE_HINT = 'tools/quantize.py (python tools/quantize.py --config <training config> --model_dir <export>)'


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


def _check_files(deploy_file, entry, where):
    for key in FILE_KEYS:
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            raise UserError(f"'{deploy_file}': '{where}{key}' must name a file of the export (e.g. model.json), got "
                            f"{entry[key]!r}: correct it, or export again with export.py.")
        if key == 'openvino_model' and key in entry and not entry[key].endswith('.xml'):
            raise UserError(f"'{deploy_file}': '{where}{key}' must name an OpenVINO IR .xml file (its .bin beside "
                            f"it), got {entry[key]!r}: correct it.")


def _check_precisions(deploy_file, deploy):
    """``precision`` (default fp32) and the ``precisions`` entries (see the module docstring)."""
    main = deploy.setdefault('precision', 'fp32')
    if main not in MODEL_PRECISIONS:
        raise UserError(f"'{deploy_file}': precision '{main}' is not one of {', '.join(MODEL_PRECISIONS)} (the "
                        "precision the model files were made for; bf16 is a way of running fp32 files, not a file "
                        "precision): correct it, or export again with export.py.")
    entries = deploy.get('precisions')
    if entries is None:
        return
    if not isinstance(entries, dict):
        raise UserError(f"'{deploy_file}': 'precisions' must map a precision to its files (e.g. "
                        f"{{int8: {{onnx_model: model.int8.onnx}}}}), got {entries!r}: correct it, or remove it and "
                        f"make the model again with {QUANTIZE_HINT}.")
    for name, entry in entries.items():
        if name not in MODEL_PRECISIONS or name == main:
            why = (f"it is the main model's precision (precision: {main})" if name == main else
                   f"files are made for {', '.join(MODEL_PRECISIONS)} only (bf16 runs the fp32 files)")
            raise UserError(f"'{deploy_file}': precisions has the entry '{name}': {why}. Remove the entry.")
        where = f'precisions.{name}.'
        unknown = [k for k in entry if k not in PRECISION_ENTRY_KEYS] if isinstance(entry, dict) else []
        if unknown:
            near = difflib.get_close_matches(str(unknown[0]), PRECISION_ENTRY_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ''
            raise UserError(f"'{deploy_file}' has the unknown key '{unknown[0]}' in {where[:-1]}: {hint}The known "
                            f"keys are {', '.join(PRECISION_ENTRY_KEYS)}.")
        if not isinstance(entry, dict) or not any(k in entry for k in FILE_KEYS):
            raise UserError(f"'{deploy_file}': '{where[:-1]}' must name the model's files ({', '.join(FILE_KEYS)}), "
                            f"got {entry!r}: correct it, or make the model again with {QUANTIZE_HINT}.")
        if 'info' in entry and not isinstance(entry['info'], dict):
            raise UserError(f"'{deploy_file}': '{where}info' must be a mapping (e.g. {{tool: ..., "
                            f"calibration_images: 8}}), got {entry['info']!r}: correct it.")
        if ('model' in entry) != ('params' in entry):
            raise UserError(f"'{deploy_file}': '{where[:-1]}' names a Paddle graph without its weights (or the "
                            "reverse): give both 'model' and 'params', or neither.")
        _check_files(deploy_file, entry, where)


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
    _check_files(deploy_file, deploy, '')
    _check_precisions(deploy_file, deploy)
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
        weights = path[:-4] + '.bin'
        if key == 'openvino_model' and not os.path.isfile(weights):
            raise UserError(f"'{model_dir}' lacks {os.path.basename(weights)}, the weights of the OpenVINO model "
                            f"'{name}' (named as '{key}' in deploy.yaml): copy the whole export folder, or make "
                            "the model again.")
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


def model_precision(precision):
    """The precision a model's files must be made for to run at ``precision`` (bf16 runs fp32 files)."""
    if precision not in RUN_PRECISIONS:
        near = difflib.get_close_matches(str(precision), RUN_PRECISIONS, n=1, cutoff=0.5)
        hint = f" (did you mean '{near[0]}'?)" if near else ''
        raise UserError(f"--precision must be one of {', '.join(RUN_PRECISIONS)}, got '{precision}'{hint}.")
    return 'fp32' if precision == 'bf16' else precision


def available_precisions(deploy):
    """The model precisions a validated ``Deploy`` section holds files for, main one first."""
    return [deploy.get('precision', 'fp32'), *(deploy.get('precisions') or {})]


def select_precision(deploy, precision, deploy_file):
    """``deploy`` with the file keys of the model made for ``precision`` (a run precision) at
    the top level, ``precision`` set to that model precision and ``precisions`` dropped; a
    UserError saying how to make it when the export lacks it."""
    wanted = model_precision(precision)
    main = deploy.get('precision', 'fp32')
    deploy = dict(deploy)
    entries = deploy.pop('precisions', None) or {}
    if wanted == main:
        return deploy
    if wanted not in entries:
        model_dir = os.path.dirname(os.path.abspath(deploy_file))
        has = ', '.join([main, *entries])
        make = ("make one from this export with python tools/quantize.py --config <training config> --model_dir "
                f"{model_dir}" if wanted == 'int8' else
                'export the trained model again with export.py')
        raise UserError(f"'{model_dir}' has no {wanted} model (its deploy.yaml lists: {has}): {make}, or run "
                        f"--precision {main}.")
    for key in FILE_KEYS:
        deploy.pop(key, None)
    entry = entries[wanted]
    deploy.update({k: v for k, v in entry.items() if k in FILE_KEYS})
    deploy['precision'] = wanted
    deploy['info'] = dict(entry.get('info') or {})
    return deploy


def read_deploy_config(path, required=('model', 'params'), precision=None):
    """The ``Deploy`` section of ``path`` (an export directory or its deploy.yaml), with the
    named files resolved to absolute paths and checked to exist.

    ``precision`` (one of RUN_PRECISIONS) selects the model made for it (see
    :func:`select_precision`): its files replace the main ones at the top level, and
    ``required`` applies to them; without it, the main model's files and ``precisions``
    as written."""
    model_dir, deploy_file = deploy_paths(path)
    doc = load_deploy_yaml(deploy_file)
    extra = [k for k in doc if k != 'Deploy']
    if extra:
        raise UserError(f"'{deploy_file}' has the unknown top-level key '{extra[0]}': deploy.yaml holds only its "
                        "'Deploy' section. Move the entry into Deploy if it belongs there, or remove it.")
    deploy = validate_deploy(dict(doc['Deploy']), deploy_file)
    if precision is not None:
        deploy = select_precision(deploy, precision, deploy_file)
    for key in required:
        if not deploy.get(key):
            if precision is not None and deploy['precision'] != 'fp32':
                has = ', '.join(k for k in FILE_KEYS if deploy.get(k))
                raise UserError(f"the {deploy['precision']} model of '{model_dir}' has no '{key}' file (it has "
                                f"{has}): run it with an engine that reads those files (see --engine), or make "
                                f"the model again with {QUANTIZE_HINT}.")
            hint = ' (export with --format onnx)' if key == 'onnx_model' else ''
            raise UserError(f"'{deploy_file}' names no '{key}' file{hint}.")
        deploy[key] = _resolve(model_dir, deploy_file, key, deploy[key])
    return deploy


def read_model_file_config(path, key, precision=None, what='model'):
    """(Deploy section, model file) for ``path``: an export folder / its deploy.yaml (the
    ``key`` file of the model made for ``precision``), or a model file with deploy.yaml beside
    it. A file given directly runs at the precision deploy.yaml records for it (fp32 when it
    names no such file); a different ``precision`` asked for is refused."""
    if os.path.isdir(path) or path.endswith(('.yaml', '.yml')):
        deploy = read_deploy_config(path, required=(key,), precision=precision or 'fp32')
        return deploy, deploy[key]
    if not os.path.isfile(path):
        raise UserError(f"--model '{path}' does not exist: give the {what} file or the export directory.")
    deploy_file = os.path.join(os.path.dirname(os.path.abspath(path)), DEPLOY_FILE)
    if not os.path.isfile(deploy_file):
        raise UserError(f"no deploy.yaml next to '{path}': it records the preprocessing; "
                        'export with export.py --format onnx.')
    deploy = read_deploy_config(deploy_file, required=())
    name = os.path.basename(path)
    made_for = deploy.get('precision', 'fp32')
    for prec, entry in (deploy.get('precisions') or {}).items():
        if name in entry.values():
            made_for = prec
    if precision is not None and model_precision(precision) != made_for:
        raise UserError(f"'{path}' is the {made_for} model of its export (deploy.yaml), not a "
                        f"{model_precision(precision)} one: give the export folder with --precision {precision}, "
                        f"or run this file with --precision {made_for}.")
    deploy = select_precision(deploy, precision or made_for, deploy_file)
    return deploy, os.path.abspath(path)


def record_precision(model_dir, precision, files, info=None):
    """Record in ``model_dir``'s deploy.yaml the model made for ``precision`` (e.g. int8):
    ``files`` maps FILE_KEYS to file names inside ``model_dir`` (already written, e.g.
    ``{'onnx_model': 'model.int8.onnx', 'openvino_model': 'model.int8.xml'}``), ``info`` a
    free mapping of how it was made (shown to users). An earlier entry for ``precision`` is
    replaced; deploy.yaml is validated, then rewritten atomically. Returns the entry."""
    model_dir, deploy_file = deploy_paths(model_dir)
    doc = load_deploy_yaml(deploy_file)
    entry = {}
    for key, name in files.items():
        if key not in FILE_KEYS:
            raise ValueError(f'record_precision: unknown file key {key!r}; known: {FILE_KEYS}')
        if os.path.basename(name) != name or not os.path.isfile(os.path.join(model_dir, name)):
            raise ValueError(f'record_precision: {name!r} must be a file name inside {model_dir!r} that exists')
        entry[key] = name
    if info:
        entry['info'] = dict(info)
    deploy = dict(doc['Deploy'])
    deploy['precisions'] = {**(deploy.get('precisions') or {}), precision: entry}
    validate_deploy(dict(deploy, precisions=dict(deploy['precisions'])), deploy_file)
    doc['Deploy'] = deploy
    write_deploy_yaml(deploy_file, doc)
    return entry


def recorded_files(deploy):
    """Every file name a raw ``Deploy`` section names for models other than the main one (the
    ``precisions`` entries), with the .bin of each OpenVINO IR: what export.py removes when
    it replaces the graph they were made from."""
    names = []
    for entry in (deploy.get('precisions') or {}).values() if isinstance(deploy.get('precisions'), dict) else []:
        for key in FILE_KEYS:
            name = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(name, str) and name and os.path.basename(name) == name:
                names.append(name)
                if key == 'openvino_model' and name.endswith('.xml'):
                    names.append(name[:-4] + '.bin')
    return names


# The engines and what each can run (engines.py builds the runners; the runners check with this).
ENGINES = ('paddle', 'onnxruntime', 'openvino')
# The run precisions each engine can run at all (on a CPU that has the instructions).
ENGINE_PRECISIONS = {'paddle': ('fp32', 'bf16', 'int8'), 'onnxruntime': ('fp32', 'int8'),
                     'openvino': ('fp32', 'bf16', 'int8')}


def check_engine(engine, precision='fp32'):
    """A UserError for an unknown engine or precision, or a pair the engine cannot run, before
    anything is loaded."""
    if engine not in ENGINES:
        near = difflib.get_close_matches(str(engine), ENGINES, n=1, cutoff=0.5)
        hint = f" (did you mean '{near[0]}'?)" if near else ''
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'{hint}.")
    model_precision(precision)  # checks the name
    if precision not in ENGINE_PRECISIONS[engine]:
        others = [e for e in ENGINES if precision in ENGINE_PRECISIONS[e]]
        why = {'onnxruntime': ' (ONNX Runtime has no bf16 convolutions on the CPU)'}.get(engine, '')
        raise UserError(f"--engine {engine} cannot run --precision {precision}{why}: use --engine "
                        f"{' or --engine '.join(others)}, or another --precision "
                        f"({', '.join(ENGINE_PRECISIONS[engine])}).")
