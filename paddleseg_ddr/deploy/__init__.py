from .export import export_inference_model
from .onnx_export import convert_to_onnx
from .onnx_runtime import OnnxRuntimePredictor
from .paddle_inference import PaddleInferencePredictor, config_calls
from .predict import DygraphPredictor, ExportedModelPredictor, predict_files
from .engines import create_runner
