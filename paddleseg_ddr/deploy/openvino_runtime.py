"""Running an export with OpenVINO on the CPU: fp32, bf16 (where the CPU has it) and int8.

OpenVINO reads the export's OpenVINO IR (``openvino_model``, .xml + .bin) when deploy.yaml
records one, else its ONNX model (``onnx_model``, from ``export.py --format onnx``), else it
converts the Paddle graph to ONNX on the fly (paddle2onnx, into a temporary folder removed
with the runner; ``tools/export_onnx.py`` does it once for good).

The inference precision is always set: on a CPU with bf16 (AVX-512 BF16, AMX) OpenVINO's
default ``INFERENCE_PRECISION_HINT`` is bf16, so a run that did not ask for f32 would report
"fp32" while computing in bf16. fp32 asks for f32, bf16 for bf16 (refused with a clear
message where ``OPTIMIZATION_CAPABILITIES`` lacks BF16), int8 runs the export's int8 model
with its remaining float operations in f32. The compiled model's own hint is read back and
checked, so a plugin that ignored the request cannot go unnoticed.

Inputs of a new shape compile the model for that shape (static shapes are faster on the
CPU plugin than dynamic ones); the last few compiled shapes are kept.
"""
import os
import shutil
import tempfile
from collections import OrderedDict

from paddleseg.utils import logger

from ..errors import UserError
from .deploy_config import deploy_meta, read_deploy_config, read_model_file_config
from .predict import ExportedModelPredictor

HINTS = {'fp32': 'f32', 'bf16': 'bf16', 'int8': 'f32'}

MAX_SHAPES = 4


def require_openvino():
    try:
        import openvino
    except ImportError as e:
        raise UserError('the openvino engine needs OpenVINO: pip install openvino==2026.4.0') from e
    return openvino


def cpu_capabilities(core):
    """The CPU plugin's OPTIMIZATION_CAPABILITIES (e.g. FP32, BF16, INT8)."""
    return [str(c) for c in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')]


def bf16_supported(core):
    """Whether OpenVINO can compute in bf16 on this CPU (the tests monkeypatch this probe)."""
    return 'BF16' in cpu_capabilities(core)


def _model_source(model, precision):
    """(deploy section, file OpenVINO reads, temporary folder or None)."""
    if not (os.path.isdir(model) or model.endswith(('.yaml', '.yml'))):
        key = 'openvino_model' if model.endswith('.xml') else 'onnx_model'
        deploy, path = read_model_file_config(model, key, precision, 'model.onnx or OpenVINO .xml')
        if key == 'openvino_model' and not os.path.isfile(path[:-4] + '.bin'):
            raise UserError(f"'{path[:-4]}.bin', the weights of '{path}', does not exist: copy the whole export "
                            "folder.")
        return deploy, path, None
    deploy = read_deploy_config(model, required=(), precision=precision)
    for key in ('openvino_model', 'onnx_model'):
        if deploy.get(key):
            deploy = read_deploy_config(model, required=(key,), precision=precision)
            return deploy, deploy[key], None
    deploy = read_deploy_config(model, precision=precision)  # the Paddle graph: model + params
    from .onnx_export import paddle_to_onnx
    tmp = tempfile.mkdtemp(prefix='openvino-onnx-')
    logger.info(f"'{model}' has no ONNX model: converting its Paddle graph for OpenVINO (export with --format "
                "onnx, or run tools/export_onnx.py --model_dir on it, to convert once).")
    try:
        path = paddle_to_onnx(deploy['model'], deploy['params'], os.path.join(tmp, 'model.onnx'))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return deploy, path, tmp


class OpenVinoPredictor(ExportedModelPredictor):
    """An export run by OpenVINO (``model``: the export folder, its deploy.yaml, or a
    model.onnx / .xml with deploy.yaml beside it) at ``precision`` (fp32, bf16, int8)."""
    engine = 'openvino'

    def __init__(self, model, cpu_threads=None, precision='fp32', device='CPU'):
        from .deploy_config import check_engine
        check_engine(self.engine, precision)
        ov = require_openvino()
        self.core = ov.Core()
        if device != 'CPU':
            raise UserError(f"--device {device}: this project runs OpenVINO on the CPU only (device 'CPU').")
        if precision == 'bf16' and not bf16_supported(self.core):
            raise UserError(f"this CPU cannot compute in bf16 (OpenVINO's CPU capabilities: "
                            f"{', '.join(cpu_capabilities(self.core))}; bf16 needs AVX-512 BF16 or AMX): use "
                            "--precision fp32, or int8 with an int8 model.")
        deploy, path, self._tmp = _model_source(model, precision)
        try:
            super().__init__(deploy['transforms'], deploy['output_op'], deploy_meta(deploy))
            self.precision, self.model_file = precision, path
            try:
                self.model = self.core.read_model(path)
            except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own
                reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
                raise UserError(f"OpenVINO cannot read '{path}' ({reason}): the file is damaged or incomplete (e.g. "
                                "a truncated copy) or not a model. Copy it again, or convert the export again with "
                                "tools/export_onnx.py --model_dir <export> (or export.py --format onnx).") from None
        except BaseException:
            self.close()
            raise
        self.config = {'INFERENCE_PRECISION_HINT': HINTS[precision], 'PERFORMANCE_HINT': 'LATENCY',
                       'INFERENCE_NUM_THREADS': int(cpu_threads or len(os.sched_getaffinity(0)))}
        self.input_shape = deploy.get('input_shape')
        self._compiled = OrderedDict()

    def compile(self, shape):
        """The infer request of the model compiled for input ``shape`` (cached)."""
        shape = tuple(shape)
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self.model.clone()
        try:
            model.reshape({model.inputs[0].any_name: list(shape)})
        except Exception as e:
            raise UserError(f'the export takes inputs of shape {self.input_shape} (fixed by --input_shape), got '
                            f'{list(shape)} ({str(e).strip().splitlines()[0][:120]}): export without --input_shape '
                            'for any size, or match --batch_size and the image size.') from None
        compiled = self.core.compile_model(model, 'CPU', self.config)
        got = compiled.get_property('INFERENCE_PRECISION_HINT')  # an element type, e.g. Type.f32
        if getattr(got, 'to_string', lambda: str(got))() != self.config['INFERENCE_PRECISION_HINT']:
            raise UserError(f"OpenVINO compiled the model with inference precision {got}, not the "
                            f"{self.config['INFERENCE_PRECISION_HINT']} asked for --precision {self.precision}.")
        while len(self._compiled) >= MAX_SHAPES:
            self._compiled.popitem(last=False)
        self._compiled[shape] = compiled.create_infer_request()
        return self._compiled[shape]

    def run(self, batch):
        shape = self.input_shape
        if shape and any(d > 0 and d != s for d, s in zip(shape, batch.shape)):
            raise UserError(f'the export takes inputs of shape {shape} (fixed by --input_shape), got '
                            f'{list(batch.shape)} (batch, channels, height, width after preprocessing): export '
                            'without --input_shape for any size, or match --batch_size and the image size.')
        request = self.compile(batch.shape)
        request.infer({0: batch})
        return request.get_output_tensor(0).data.copy()

    def close(self):
        """Remove the temporary ONNX conversion, if any."""
        if getattr(self, '_tmp', None):
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self):
        self.close()


def convert_to_openvino(model_dir, precision='fp32'):
    """Write the OpenVINO IR (``model.xml`` + ``model.bin``; ``model.<precision>.xml`` for
    another precision's model) of ``model_dir``'s ONNX model beside it and record it in
    deploy.yaml as that model's ``openvino_model``; returns the .xml path.

    The weights are kept as they are: ``openvino.save_model`` compresses float weights to
    fp16 by default, which would make an "fp32" IR an fp16-weight one.
    """
    from .deploy_config import FILE_KEYS, deploy_paths, load_deploy_yaml, record_precision, write_deploy_yaml
    from ..utils.fileio import atomic_path
    ov = require_openvino()
    model_dir, deploy_file = deploy_paths(model_dir)
    deploy = read_deploy_config(model_dir, required=('onnx_model',), precision=precision)
    name = 'model.xml' if deploy['precision'] == 'fp32' else f"model.{deploy['precision']}.xml"
    xml = os.path.join(model_dir, name)
    try:
        model = ov.Core().read_model(deploy['onnx_model'])
    except Exception as e:
        raise UserError(f"OpenVINO cannot read '{deploy['onnx_model']}' ({str(e).strip()[:200]}): convert the "
                        "export again with tools/export_onnx.py.") from None
    # The .bin is renamed into place before the .xml that names it.
    with atomic_path(xml, suffix='.xml') as tmp_xml, atomic_path(xml[:-4] + '.bin') as tmp_bin:
        try:
            ov.save_model(model, tmp_xml, compress_to_fp16=False)
        finally:
            if os.path.isfile(tmp_xml[:-4] + '.bin'):
                os.replace(tmp_xml[:-4] + '.bin', tmp_bin)
    doc = load_deploy_yaml(deploy_file)
    main = doc['Deploy'].get('precision', 'fp32')
    if deploy['precision'] == main:
        doc['Deploy']['openvino_model'] = name
        write_deploy_yaml(deploy_file, doc)
    else:
        entry = dict(doc['Deploy']['precisions'][deploy['precision']])
        files = {k: entry[k] for k in FILE_KEYS if k in entry}
        files['openvino_model'] = name
        record_precision(model_dir, deploy['precision'], files, entry.get('info'))
    return xml
