"""ONNX export of a Paddle inference graph with paddle2onnx, for ONNX Runtime."""
import json
import os

from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_path
from .deploy_config import deploy_paths, load_deploy_yaml, read_deploy_config, write_deploy_yaml

OPSET = 13
ONNX_FILE = 'model.onnx'


def require_paddle2onnx():
    try:
        import paddle2onnx
    except ImportError as e:
        raise UserError('ONNX export needs paddle2onnx: pip install paddle2onnx==2.1.0 "numpy<2"') from e
    return paddle2onnx


def paddle_to_onnx(model_file, params_file, save_file, opset=OPSET):
    """Convert one graph to ``save_file``, written atomically.

    paddle2onnx's default optimiser (polygraphy) sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` and
    pip-installs onnx_graphsurgeon and numpy 2 into the running environment, which breaks
    OpenCV and PaddleSeg; onnxoptimizer does the same clean-up without installing anything.
    """
    paddle2onnx = require_paddle2onnx()
    with atomic_path(save_file) as tmp:
        try:
            paddle2onnx.export(model_file, params_file, tmp, opset_version=opset, auto_upgrade_opset=False,
                               enable_onnx_checker=True, optimize_tool='onnxoptimizer')
        except SystemExit:  # paddle2onnx calls sys.exit(-1) on a graph it cannot convert
            raise UserError(f"paddle2onnx cannot convert '{model_file}' to ONNX opset {opset} (its log above names "
                            'the operator): export without --format onnx and run it with Paddle Inference, or '
                            'report the operator.') from None
        if not os.path.isfile(tmp):
            raise UserError(f"paddle2onnx wrote no model for '{model_file}' (see its log above).")
        _fix_norm_epsilons(model_file, tmp)
    return save_file


def _norm_epsilons(model_file):
    """The ``epsilon`` of each group_norm / instance_norm op of a PIR program (model.json), in
    program order; None for the old program format (paddle2onnx reads its float attributes)."""
    if not model_file.endswith('.json'):
        return None
    with open(model_file) as f:
        text = f.read()
    eps = []

    def walk(node):
        if isinstance(node, dict):
            if node.get('#') in ('1.group_norm', '1.instance_norm'):
                attrs = {a.get('N'): a.get('AT', {}).get('D') for a in node.get('A', []) if isinstance(a, dict)}
                eps.append(float(attrs['epsilon']))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(json.loads(text))
    return eps


def _fix_norm_epsilons(model_file, onnx_file):
    """paddle2onnx 2.1.0 reads PIR's float64 ``epsilon`` of group_norm as a float32 from the
    wrong bytes: the ONNX InstanceNormalization it writes for a GroupNorm has epsilon 0 or
    garbage (7.7e31 seen, depending on what was loaded before), so outputs were silently wrong.
    Write the program's own epsilons back, node for node (ops convert in program order)."""
    eps = _norm_epsilons(model_file)
    if not eps:
        return
    import onnx
    from onnx import helper
    model = onnx.load(onnx_file)
    nodes = [n for n in model.graph.node if n.op_type == 'InstanceNormalization']
    if len(nodes) != len(eps):
        raise UserError(f"'{model_file}' has {len(eps)} group/instance norm op(s) but paddle2onnx wrote "
                        f"{len(nodes)} InstanceNormalization node(s): their epsilons cannot be checked, and "
                        "paddle2onnx 2.1.0 writes them wrongly. Run this model with Paddle Inference "
                        "(export without --format onnx).")
    for node, value in zip(nodes, eps):
        kept = [a for a in node.attribute if a.name != 'epsilon']
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute('epsilon', value)])
    onnx.save(model, onnx_file)


def convert_to_onnx(model_dir, save_file=None, opset=OPSET):
    """Convert the export in ``model_dir`` (written by :func:`export_inference_model`) to
    ``model.onnx`` and record it in its deploy.yaml as ``onnx_model``, as ``export.py
    --format onnx`` does: both give the same folder. Each file is replaced atomically,
    deploy.yaml last. A ``save_file`` outside ``model_dir`` is written but not recorded.
    """
    require_paddle2onnx()
    model_dir, deploy_file = deploy_paths(model_dir)
    if not os.path.isdir(model_dir):
        raise UserError(f"--model_dir '{model_dir}' is not a folder: give the --save_dir of export.py.")
    deploy = read_deploy_config(model_dir)
    save_file = os.path.abspath(save_file or os.path.join(model_dir, ONNX_FILE))
    if os.path.isdir(save_file):
        raise UserError(f"--save_file '{save_file}' is a folder: give a file name such as model.onnx.")
    os.makedirs(os.path.dirname(save_file), exist_ok=True)
    paddle_to_onnx(deploy['model'], deploy['params'], save_file, opset)
    if os.path.dirname(save_file) == os.path.abspath(model_dir):
        doc = load_deploy_yaml(deploy_file)
        doc['Deploy']['onnx_model'] = os.path.basename(save_file)
        write_deploy_yaml(deploy_file, doc)
    else:
        logger.warning(f"'{save_file}' is outside '{model_dir}': its deploy.yaml does not name it; "
                       "deploy/onnx/infer.py needs a deploy.yaml beside the .onnx file.")
    return save_file
