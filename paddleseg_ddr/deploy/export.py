"""Static inference graphs (Paddle 3 PIR: ``model.json`` + ``model.pdiparams``) and the
``deploy.yaml`` that records how to feed them, in PaddleSeg's deploy format."""
import os
import shutil

import paddle
import paddle.nn.functional as F
import yaml

from ..engine.checkpoint import replace_dir
from ..models.layers import gather_resize_for_export
from ..errors import UserError

OUTPUT_OPS = ('argmax', 'softmax', 'none')


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


def export_inference_model(model, save_dir, transforms, input_shape=None, output_op='argmax', resize_op='interp',
                           onnx=False):
    """Write ``model.json``, ``model.pdiparams`` and ``deploy.yaml`` into ``save_dir``.

    ``input_shape`` [N, C, H, W] fixes the input size; by default batch, height and width
    are dynamic. The auxiliary head is not part of the graph (the model is in eval mode).
    ``resize_op`` 'interp' (default) keeps the native ``bilinear_interp``; 'gather' writes the
    resizes as gathers and multiply-adds, which Paddle 3.3.1's oneDNN placement can run too
    but about 5x slower at 1024x2048 (see :mod:`.paddle_inference`). ``onnx`` also writes
    ``model.onnx`` (paddle2onnx). The directory is written under a temporary name and renamed
    when complete.
    """
    if resize_op not in ('gather', 'interp'):
        raise UserError(f"--resize_op must be 'gather' or 'interp', got '{resize_op}'.")
    if input_shape is not None and (len(input_shape) != 4 or input_shape[1] != 3):
        raise UserError(f'--input_shape must be N 3 H W, got {list(input_shape)}.')
    shape = list(input_shape) if input_shape is not None else [None, 3, None, None]
    model.eval()
    wrapper = InferenceModel(model, output_op)
    wrapper.eval()
    static = paddle.jit.to_static(wrapper, input_spec=[paddle.static.InputSpec(shape, 'float32', 'x')],
                                  full_graph=True)
    tmp = save_dir.rstrip('/') + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with gather_resize_for_export(resize_op == 'gather'):  # the graph is traced here
        paddle.jit.save(static, os.path.join(tmp, 'model'))
    deploy = {'Deploy': {
        'model': 'model.json', 'params': 'model.pdiparams', 'transforms': transforms,
        'input_shape': [-1 if d is None else d for d in shape], 'output_op': output_op,
        'output_dtype': 'int32' if output_op == 'argmax' else 'float32', 'resize_op': resize_op}}
    if onnx:
        from .onnx_export import convert_to_onnx
        convert_to_onnx(tmp)
        deploy['Deploy']['onnx_model'] = 'model.onnx'
    with open(os.path.join(tmp, 'deploy.yaml'), 'w') as f:
        yaml.safe_dump(deploy, f, sort_keys=False)
    replace_dir(tmp, save_dir)
    return save_dir
