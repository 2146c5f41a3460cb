from .builder import Builder, load_config
from ..utils.weights import load_model_weights, load_pretrained
from .checkpoint import save_checkpoint
from .evaluate import evaluate
from .metrics import compute_metrics, confusion_matrix, format_metrics
from .train import train
