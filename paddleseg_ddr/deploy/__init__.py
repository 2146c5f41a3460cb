from .export import export_inference_model
from .predict import DygraphPredictor, StaticPredictor, predict_files
