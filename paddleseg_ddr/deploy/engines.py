"""One way to run an export with any CPU engine at any precision: :func:`create_runner`.

    runner = create_runner('output/inference', engine='openvino', precision='bf16', cpu_threads=2)
    labels = runner.run(batch)            # batch: float32 [N, 3, H, W], already preprocessed
    label = runner(bgr_image)             # or: deploy.yaml's preprocessing + run + label map (uint8)

Every runner is an :class:`~paddleseg_ddr.deploy.predict.ExportedModelPredictor`: ``run(batch)``
returns what the graph outputs (``output_op`` argmax: int32 label maps [N, H, W]; softmax /
none: float32 [N, C, H, W]), ``predict_batch(images)`` / ``__call__(bgr)`` add deploy.yaml's
preprocessing and give uint8 label maps at the image size, and ``transforms``, ``output_op``,
``meta`` (the dataset's class names and palette), ``engine``, ``precision`` (the run
precision), ``model_file`` (the file actually loaded) and ``describe()`` say what runs.

Engines (ENGINES) and what they run:

- ``paddle``: Paddle Inference on ``model``/``params`` (CPU with oneDNN unless
  ``enable_mkldnn=False``; ``device='gpu'`` and the TensorRT options of paddle_inference.py).
  bf16: oneDNN's bf16 kernels (``Config.enable_mkldnn_bfloat16``), needs oneDNN and a CPU
  with bf16 (probed). int8: a Paddle int8 graph recorded under ``precisions.int8``.
- ``onnxruntime``: ONNX Runtime on ``onnx_model``. No bf16 path on the CPU (its CPU
  convolutions are float32/int8 only): bf16 is refused, naming openvino. int8: the int8
  entry's ``onnx_model`` (e.g. a QDQ model).
- ``openvino``: OpenVINO on ``openvino_model`` (IR) if recorded, else ``onnx_model``, else
  the Paddle graph converted to ONNX on the fly (into a temporary folder). Its inference
  precision is always set explicitly (on a CPU with bf16 OpenVINO's default is bf16, so an
  unset hint would make "fp32" run in bf16): fp32 -> f32, bf16 -> bf16 (refused on a CPU
  without it), int8 -> the int8 model with its float parts in f32.

Precisions (deploy_config.RUN_PRECISIONS): ``fp32`` and ``int8`` run the files deploy.yaml
records for them (``precision`` / ``precisions``, see deploy_config's docstring); ``bf16``
runs the fp32 files with the engine's bf16 arithmetic. A precision the export lacks, or an
engine that cannot run it, is a :class:`~paddleseg_ddr.errors.UserError` saying what to do.
"""
from .deploy_config import ENGINE_PRECISIONS, ENGINES, RUN_PRECISIONS, check_engine  # noqa: F401 (re-exported)

def create_runner(model_dir, engine='paddle', precision='fp32', cpu_threads=None, **options):
    """A runner for the export ``model_dir`` (its folder or deploy.yaml; for onnxruntime and
    openvino also a model.onnx / .xml file with deploy.yaml beside it) on ``engine`` at the
    run ``precision`` with ``cpu_threads`` threads (default: the cores this process may use).

    ``options`` go to the engine: paddle ``device``, ``enable_mkldnn`` and the GPU/TensorRT
    options of :class:`~paddleseg_ddr.deploy.paddle_inference.PaddleInferencePredictor`
    (``gpu_precision`` for its fp16/int8 GPU modes); openvino ``device`` (default 'CPU').
    """
    check_engine(engine, precision)
    if engine == 'paddle':
        from .paddle_inference import PaddleInferencePredictor
        return PaddleInferencePredictor(model_dir, cpu_threads=cpu_threads, run_precision=precision, **options)
    if engine == 'onnxruntime':
        from .onnx_runtime import OnnxRuntimePredictor
        return OnnxRuntimePredictor(model_dir, cpu_threads, precision=precision, **options)
    from .openvino_runtime import OpenVinoPredictor
    return OpenVinoPredictor(model_dir, cpu_threads=cpu_threads, precision=precision, **options)


__all__ = ['ENGINES', 'ENGINE_PRECISIONS', 'RUN_PRECISIONS', 'check_engine', 'create_runner']
