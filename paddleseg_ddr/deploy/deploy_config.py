"""Reading an export directory: ``deploy.yaml`` and the files it names."""
import os

import yaml

from ..errors import UserError


def read_deploy_config(path, required=('model', 'params')):
    """The ``Deploy`` section of ``path`` (an export directory or its deploy.yaml), with the
    named files resolved to absolute paths and checked to exist."""
    model_dir = os.path.dirname(os.path.abspath(path)) if path.endswith(('.yaml', '.yml')) else path
    deploy_file = os.path.join(model_dir, 'deploy.yaml')
    if not os.path.isfile(deploy_file):
        raise UserError(f"'{model_dir}' has no deploy.yaml: pass the --save_dir of export.py.")
    with open(deploy_file) as f:
        deploy = (yaml.safe_load(f) or {}).get('Deploy')
    if not isinstance(deploy, dict):
        raise UserError(f"'{deploy_file}' has no 'Deploy' section: it was not written by export.py.")
    deploy = dict(deploy)
    for key in required:
        if not deploy.get(key):
            hint = ' (export with --format onnx)' if key == 'onnx_model' else ''
            raise UserError(f"'{deploy_file}' names no '{key}' file{hint}.")
        deploy[key] = os.path.join(model_dir, deploy[key])
        if not os.path.isfile(deploy[key]):
            raise UserError(f"'{model_dir}' lacks {os.path.basename(deploy[key])}, named in deploy.yaml: export again.")
    deploy.setdefault('transforms', [])
    deploy.setdefault('output_op', 'argmax')
    return deploy
