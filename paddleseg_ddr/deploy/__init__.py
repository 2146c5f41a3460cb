from .export import export_inference_model
