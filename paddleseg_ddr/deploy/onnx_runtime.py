"""Running an ONNX export (``export.py --format onnx``) with ONNX Runtime on the CPU."""
import os

from ..errors import UserError
from .deploy_config import deploy_meta, read_deploy_config
from .predict import ExportedModelPredictor


class OnnxRuntimePredictor(ExportedModelPredictor):
    """``model.onnx`` and the ``deploy.yaml`` beside it (``model``: the file, the export
    directory or its deploy.yaml)."""

    def __init__(self, model, cpu_threads=None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise UserError('ONNX inference needs onnxruntime: pip install onnxruntime') from e
        if os.path.isdir(model) or model.endswith(('.yaml', '.yml')):
            deploy = read_deploy_config(model, required=('onnx_model',))
            onnx_file = deploy['onnx_model']
        else:
            if not os.path.isfile(model):
                raise UserError(f"--model '{model}' does not exist: give model.onnx or the export directory.")
            deploy_file = os.path.join(os.path.dirname(os.path.abspath(model)), 'deploy.yaml')
            if not os.path.isfile(deploy_file):
                raise UserError(f"no deploy.yaml next to '{model}': it records the preprocessing; "
                                'export with export.py --format onnx.')
            deploy, onnx_file = read_deploy_config(deploy_file, required=()), model
        super().__init__(deploy['transforms'], deploy['output_op'], deploy_meta(deploy))
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or len(os.sched_getaffinity(0))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime raises its own exception types
            reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise UserError(f"ONNX Runtime cannot load '{onnx_file}' ({reason}): the file is damaged or incomplete "
                            "(e.g. a truncated or interrupted copy) or not an ONNX model. Copy it again, or convert "
                            f"the export again with tools/export_onnx.py --model_dir "
                            f"{os.path.dirname(os.path.abspath(onnx_file))} (or export.py --format onnx).") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]
