"""ONNX export of a Paddle inference graph with paddle2onnx, for ONNX Runtime."""
import os

from ..errors import UserError

OPSET = 13


def convert_to_onnx(model_dir, save_file=None, opset=OPSET):
    """Convert ``model_dir`` (written by :func:`export_inference_model`) to ``model.onnx``.

    Written under a temporary name and renamed when complete. paddle2onnx's default
    optimiser (polygraphy) sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` and pip-installs
    onnx_graphsurgeon and numpy 2 into the running environment, which breaks OpenCV and
    PaddleSeg; onnxoptimizer does the same clean-up without installing anything.
    """
    try:
        import paddle2onnx
    except ImportError as e:
        raise UserError('ONNX export needs paddle2onnx: pip install paddle2onnx==2.1.0 "numpy<2"') from e
    model_file, params_file = (os.path.join(model_dir, name) for name in ('model.json', 'model.pdiparams'))
    for path in (model_file, params_file):
        if not os.path.isfile(path):
            raise UserError(f"'{model_dir}' lacks {os.path.basename(path)}: give the --save_dir of export.py.")
    save_file = save_file or os.path.join(model_dir, 'model.onnx')
    tmp = save_file + '.tmp'
    paddle2onnx.export(model_file, params_file, tmp, opset_version=opset, auto_upgrade_opset=False,
                       enable_onnx_checker=True, optimize_tool='onnxoptimizer')
    if not os.path.isfile(tmp):
        raise UserError(f"paddle2onnx wrote no model for '{model_dir}' (see its log above).")
    os.replace(tmp, save_file)
    return save_file
