"""Static inference graphs (Paddle 3 PIR: ``model.json`` + ``model.pdiparams``) and the
``deploy.yaml`` that records how to feed them, in PaddleSeg's deploy format."""
import contextlib
import copy
import os

import paddle
import paddle.nn.functional as F
from paddleseg.utils import logger

from ..errors import UserError
from ..models.reparameterize import reparameterize
from ..utils.fileio import remove_own_files, temp_name
from .deploy_config import DEPLOY_FILE, OUTPUT_OPS, load_deploy_yaml, recorded_files, write_deploy_yaml

MODEL_FILE, PARAMS_FILE, ONNX_FILE = 'model.json', 'model.pdiparams', 'model.onnx'


class InferenceModel(paddle.nn.Layer):
    """Eval-mode model + output op: label map [N, H, W] (int32), probabilities or logits."""

    def __init__(self, model, output_op='argmax'):
        super().__init__()
        if output_op not in OUTPUT_OPS:
            raise UserError(f"--output_op must be one of {', '.join(OUTPUT_OPS)}, got '{output_op}'.")
        self.model = model
        self.output_op = output_op

    def forward(self, x):
        logit = self.model(x)[0]
        if self.output_op == 'argmax':
            return paddle.argmax(logit, axis=1, dtype='int32')
        if self.output_op == 'softmax':
            return F.softmax(logit, axis=1)
        return logit


def _recorded(save_dir):
    """(ONNX file, files of other precisions) an earlier export in ``save_dir`` recorded in its
    deploy.yaml: models made from the graph this export replaces."""
    try:
        deploy = load_deploy_yaml(os.path.join(save_dir, DEPLOY_FILE))['Deploy']
    except UserError:  # no (readable) deploy.yaml: nothing recorded
        return None, []
    name = deploy.get('onnx_model')
    onnx = name if isinstance(name, str) and name and os.path.basename(name) == name else None
    own = {MODEL_FILE, PARAMS_FILE, ONNX_FILE, DEPLOY_FILE}
    stale = recorded_files({'precisions': {'main': {'openvino_model': deploy.get('openvino_model')}}})
    return onnx, [f for f in stale + recorded_files(deploy) if f not in own]


def export_inference_model(model, save_dir, transforms, input_shape=None, output_op='argmax', onnx=False,
                           meta=None, fuse=True):
    """Write ``model.json``, ``model.pdiparams`` and ``deploy.yaml`` into ``save_dir``.

    ``input_shape`` [N, C, H, W] fixes the input size; by default batch, height and width
    are dynamic. The auxiliary head is not part of the graph (the model is in eval mode).
    ``onnx`` also writes ``model.onnx`` (paddle2onnx). ``meta`` (the dataset's
    :class:`~paddleseg_ddr.datasets.metainfo.DatasetMeta`) records class names, palette and
    label ids in deploy.yaml, so predictions are coloured and written for that dataset.
    ``fuse`` exports a re-parameterised copy of the model (conv+BN folded, and whatever each
    family's blocks fuse); the caller's model is left as it is.

    ``save_dir`` may already hold anything (e.g. a training folder): only the export's own
    files are added or replaced. Every file is first written under a temporary name beside
    its final one, so a failed export changes nothing; then the old deploy.yaml is removed,
    each file renamed into place and the new deploy.yaml, which names them, written last.
    """
    if input_shape is not None and (len(input_shape) != 4 or input_shape[1] != 3):
        raise UserError(f'--input_shape must be N 3 H W, got {list(input_shape)}.')
    if os.path.exists(save_dir) and not os.path.isdir(save_dir):
        raise UserError(f"--save_dir '{save_dir}' is a file: give a folder for the export.")
    shape = list(input_shape) if input_shape is not None else [None, 3, None, None]
    if fuse:
        model = reparameterize(copy.deepcopy(model))
    wrapper = InferenceModel(model, output_op)
    if onnx:
        from .onnx_export import paddle_to_onnx, require_paddle2onnx
        require_paddle2onnx()
    model.eval()
    wrapper.eval()
    static = paddle.jit.to_static(wrapper, input_spec=[paddle.static.InputSpec(shape, 'float32', 'x')],
                                  full_graph=True)
    os.makedirs(save_dir, exist_ok=True)
    stale_onnx, stale_models = _recorded(save_dir)
    prefix = temp_name(os.path.join(save_dir, 'model'))
    staged = {MODEL_FILE: prefix + '.json', PARAMS_FILE: prefix + '.pdiparams'}
    if onnx:
        staged[ONNX_FILE] = prefix + '.onnx'
    try:
        paddle.jit.save(static, prefix)  # the graph is traced here
        for name in (MODEL_FILE, PARAMS_FILE):
            if not os.path.isfile(staged[name]):
                raise UserError(f"paddle.jit.save wrote no {os.path.basename(staged[name])} in '{save_dir}'.")
        if onnx:
            paddle_to_onnx(staged[MODEL_FILE], staged[PARAMS_FILE], staged[ONNX_FILE])
        # Everything is written: an old deploy.yaml no longer describes the files below.
        remove_own_files(save_dir, [DEPLOY_FILE])
        for name, tmp in staged.items():
            os.replace(tmp, os.path.join(save_dir, name))
    finally:
        for tmp in staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
    if stale_onnx and not (onnx and stale_onnx == ONNX_FILE):  # an earlier export's ONNX model, not this graph
        remove_own_files(save_dir, [stale_onnx])
        logger.info(f"Removed '{stale_onnx}' from '{save_dir}': it was the ONNX model of the previous export.")
    if stale_models:  # e.g. the int8 model quantized from the previous graph
        remove_own_files(save_dir, stale_models)
        logger.info(f"Removed {', '.join(stale_models)} from '{save_dir}': made from the previous export's graph "
                    "(quantize this export again if you need them).")
    deploy = {'Deploy': {
        'model': MODEL_FILE, 'params': PARAMS_FILE, 'transforms': transforms,
        'input_shape': [-1 if d is None else d for d in shape], 'output_op': output_op,
        'output_dtype': 'int32' if output_op == 'argmax' else 'float32',
        # what the files were made for; tools/quantize.py adds `precisions: {int8: ...}` (PaddleSeg's
        # readers ignore keys they do not know, and ours read a missing one as fp32)
        'precision': 'fp32'}}
    if onnx:
        deploy['Deploy']['onnx_model'] = ONNX_FILE
    if meta is not None:
        deploy['Deploy'].update(meta.to_deploy())
    write_deploy_yaml(os.path.join(save_dir, DEPLOY_FILE), deploy)
    return save_dir
