"""Running an ONNX export (``export.py --format onnx``) with ONNX Runtime on the CPU.

ONNX Runtime 1.32's CPU execution provider has float32 and int8 (QLinear/QDQ) convolutions
but no bfloat16 ones (its bf16 GEMM fast-math option exists for ARM64 only), so it runs fp32
and int8 models; bf16 is refused (deploy_config.check_engine) in favour of OpenVINO.
"""
import os

from ..errors import UserError
from .deploy_config import deploy_meta, read_model_file_config
from .predict import ExportedModelPredictor


class OnnxRuntimePredictor(ExportedModelPredictor):
    """``model.onnx`` and the ``deploy.yaml`` beside it (``model``: the file, the export
    directory or its deploy.yaml). ``precision`` fp32 or int8 picks the export's model made
    for it (see engines.py); a file given directly runs at the precision it was made for."""
    engine = 'onnxruntime'

    def __init__(self, model, cpu_threads=None, precision=None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise UserError('ONNX inference needs onnxruntime: pip install onnxruntime') from e
        if precision is not None:
            from .deploy_config import check_engine
            check_engine(self.engine, precision)
        deploy, onnx_file = read_model_file_config(model, 'onnx_model', precision, 'model.onnx')
        super().__init__(deploy['transforms'], deploy['output_op'], deploy_meta(deploy))
        self.precision, self.model_file = deploy['precision'], onnx_file
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
