"""Reading and writing an export directory's ``deploy.yaml`` and the files it names."""
import os

import yaml
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_write

DEPLOY_FILE = 'deploy.yaml'


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
        raise UserError(f"'{deploy_file}' has no 'Deploy' section: it was not written by export.py.")
    return doc


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
    deploy = dict(load_deploy_yaml(deploy_file)['Deploy'])
    for key in required:
        if not deploy.get(key):
            hint = ' (export with --format onnx)' if key == 'onnx_model' else ''
            raise UserError(f"'{deploy_file}' names no '{key}' file{hint}.")
        deploy[key] = _resolve(model_dir, deploy_file, key, deploy[key])
    deploy.setdefault('transforms', [])
    deploy.setdefault('output_op', 'argmax')
    return deploy
