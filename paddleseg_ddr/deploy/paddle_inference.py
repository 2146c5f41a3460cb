"""Running an export with Paddle Inference: CPU (with or without oneDNN), GPU, TensorRT."""
import json
import os
import struct

from paddleseg.utils import logger

from ..errors import UserError
from .deploy_config import deploy_meta, read_deploy_config
from .predict import ExportedModelPredictor

PRECISIONS = ('fp32', 'fp16', 'int8')
# Bytes per element of Paddle's VarType data types (framework.proto), as stored in .pdiparams.
_DTYPE_BYTES = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16, 32: 1, 33: 1}


def _damaged(path, what, kind):
    return UserError(f"'{path}' is not a complete {kind} ({what}): the export is damaged, e.g. a truncated or "
                     f"interrupted copy. Copy the export folder '{os.path.dirname(path)}' again, or export again "
                     "with export.py.")


def _varints(buf):
    """The (field number, wire type, value) of a protobuf message (varint and length-delimited
    fields only: all a TensorDesc holds)."""
    pos, out = 0, []

    def varint():
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= len(buf):
                raise ValueError('cut varint')
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
    while pos < len(buf):
        key = varint()
        if key & 7 == 0:
            out.append((key >> 3, 0, varint()))
        elif key & 7 == 2:
            size = varint()
            out.append((key >> 3, 2, buf[pos:pos + size]))
            pos += size
        else:
            raise ValueError(f'wire type {key & 7}')
    return out


def check_params_file(path):
    """Walk the tensors of a ``.pdiparams`` (Paddle's serialised dense tensors: version, LoD,
    version, TensorDesc size + protobuf, raw data) and check each one's data is all there.

    Paddle Inference loads a file cut inside its last tensor without a word and runs with
    that tensor partly missing; this refuses it, and any other cut, with the file named.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise _damaged(path, 'it is empty', 'parameters file')
    pos = 0
    with open(path, 'rb') as f:
        while pos < size:
            try:
                f.seek(pos + 4)  # uint32 version of the LoD tensor
                (lod_levels,) = struct.unpack('<Q', f.read(8))
                pos += 12
                for _ in range(lod_levels):
                    f.seek(pos)
                    (nbytes,) = struct.unpack('<Q', f.read(8))
                    pos += 8 + nbytes
                f.seek(pos + 4)  # uint32 version of the tensor
                (desc_size,) = struct.unpack('<i', f.read(4))
                desc = f.read(desc_size)
                if desc_size < 0 or len(desc) != desc_size:
                    raise ValueError('cut tensor description')
                fields = _varints(desc)
                dtype = next(v for n, w, v in fields if n == 1 and w == 0)
                dims = [v for n, w, v in fields if n == 2 and w == 0]
                for n, w, v in fields:
                    if n == 2 and w == 2:  # packed dims
                        dims += _packed(v)
                numel = 1
                for d in dims:
                    if d >= 1 << 63:  # a negative dimension
                        raise ValueError('negative dimension')
                    numel *= d
                pos += 8 + desc_size + numel * _DTYPE_BYTES[dtype]
            except (struct.error, ValueError, StopIteration, KeyError):
                raise _damaged(path, f'its data cannot be read at byte {pos} of {size}', 'parameters file') from None
            if pos > size:
                raise _damaged(path, f'it ends at byte {size}, inside a tensor that needs {pos}', 'parameters file')


def _packed(buf):
    values, value, shift = [], 0, 0
    for byte in buf:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
    return values


def check_model_file(path):
    """A ``model.json`` (Paddle 3 PIR program) must be complete JSON."""
    if not path.endswith('.json'):
        return
    try:
        with open(path, 'rb') as f:
            json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise _damaged(path, f'it is not valid JSON: {e}', 'model graph') from None
ONEDNN_PLACEMENT_PASS = 'onednn_placement_pass'


def bf16_supported():
    """Whether this CPU runs oneDNN's bf16 kernels natively (AVX-512 BF16 or AMX), as Paddle
    probes it; monkeypatched by the tests to simulate a CPU without."""
    from paddle.base import core
    return bool(core.supports_bfloat16_fast_performance())


def config_calls(device='cpu', enable_mkldnn=True, cpu_threads=None, use_trt=False, precision='fp32',
                 gpu_id=0, min_subgraph_size=3, batch_size=1, trt_shapes=None, gpu_memory_mb=256, bf16=False):
    """The ``paddle.inference.Config`` calls for a set of options, as [(method, kwargs)].

    Kept apart from applying them so that GPU and TensorRT settings can be checked on a
    machine without either. ``trt_shapes`` = (min, max, opt) input shapes for a dynamic-size
    export under TensorRT (default 1x3x256x256 .. Bx3x1024x2048). ``precision`` is the GPU's
    (fp16/int8 need --device gpu); ``bf16`` runs the CPU graph with oneDNN's bf16 kernels.

    bf16 on Paddle 3.3.1 (measured): ``enable_mkldnn_bfloat16()`` runs the exported graph
    when ``onednn_placement_pass`` is deleted as below (with the pass it fails on
    bilinear_interp like fp32 oneDNN); see the README note for speed and agreement.
    """
    if precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{precision}'.")
    if device == 'cpu':
        if use_trt or precision != 'fp32':
            raise UserError('TensorRT and fp16/int8 need --device gpu; on the CPU use --precision fp32.')
        calls = [('disable_gpu', {}),
                 ('set_cpu_math_library_num_threads', {'cpu_math_library_num_threads': cpu_threads or len(os.sched_getaffinity(0))})]
        if bf16 and not enable_mkldnn:
            raise UserError('bf16 with Paddle Inference runs on oneDNN: leave --enable_mkldnn True (the default), '
                            'or use --precision fp32.')
        if bf16 and not bf16_supported():
            raise UserError('this CPU has no native bf16 arithmetic (AVX-512 BF16 or AMX), which Paddle Inference '
                            'needs for --precision bf16: use --precision fp32 (or int8 with an int8 model).')
        if enable_mkldnn:
            # Paddle 3.3.1: with oneDNN's PIR placement pass, bilinear_interp fails at run time
            # (its list-of-doubles `scale` attribute cannot be converted). Without the pass the
            # graph runs, still on oneDNN kernels, and is the fastest Paddle path we measured.
            calls += [('enable_mkldnn', {}), ('delete_pass', {'pass_name': ONEDNN_PLACEMENT_PASS})]
            if bf16:
                calls.append(('enable_mkldnn_bfloat16', {}))
        else:
            calls.append(('disable_mkldnn', {}))
        return calls
    if bf16:
        raise UserError('--precision bf16 is a CPU mode of Paddle Inference; on the GPU use fp16.')
    if device != 'gpu':
        raise UserError(f"--device must be 'cpu' or 'gpu', got '{device}'.")
    from paddle.inference import PrecisionType
    mode = {'fp32': PrecisionType.Float32, 'fp16': PrecisionType.Half, 'int8': PrecisionType.Int8}[precision]
    if not use_trt:
        if precision == 'int8':
            raise UserError('int8 on the GPU needs TensorRT: add --use_trt True.')
        return [('enable_use_gpu', {'memory_pool_init_size_mb': gpu_memory_mb, 'device_id': gpu_id,
                                    'precision_mode': mode})]
    calls = [('enable_use_gpu', {'memory_pool_init_size_mb': gpu_memory_mb, 'device_id': gpu_id}),
             ('enable_tensorrt_engine', {'workspace_size': 1 << 30, 'max_batch_size': batch_size,
                                         'min_subgraph_size': min_subgraph_size, 'precision_mode': mode,
                                         'use_static': False, 'use_calib_mode': precision == 'int8'})]
    lo, hi, opt = trt_shapes or ([1, 3, 256, 256], [batch_size, 3, 1024, 2048], [batch_size, 3, 1024, 2048])
    calls.append(('set_trt_dynamic_shape_info', {'min_input_shape': {'x': lo}, 'max_input_shape': {'x': hi},
                                                 'optim_input_shape': {'x': opt}}))
    return calls


def apply_config_calls(config, calls):
    """Make the :func:`config_calls` on a ``paddle.inference.Config`` (arguments in order)."""
    for method, kwargs in calls:
        getattr(config, method)(*kwargs.values())
    return config


class PaddleInferencePredictor(ExportedModelPredictor):
    """An export (``deploy.yaml`` + ``model.json`` + ``model.pdiparams``) run by Paddle Inference.

    With oneDNN, a graph that oneDNN cannot run is rebuilt without oneDNN on its first
    failure, with a warning, so the run still completes (in fp32; a bf16 run stops instead,
    since without oneDNN it would not be bf16). ``run_precision`` (fp32, bf16, int8; see
    engines.py) picks the export's model; ``precision`` is the GPU/TensorRT one.
    """
    engine = 'paddle'

    def __init__(self, model_dir, device='cpu', enable_mkldnn=True, cpu_threads=None, run_precision='fp32',
                 **options):
        from .deploy_config import check_engine
        check_engine(self.engine, run_precision)
        deploy = read_deploy_config(model_dir, precision=run_precision)
        super().__init__(deploy['transforms'], deploy['output_op'], deploy_meta(deploy))
        self.precision, self.model_file = run_precision, deploy['model']
        options['bf16'] = run_precision == 'bf16'
        if device == 'gpu':
            import paddle
            if not paddle.is_compiled_with_cuda():
                raise UserError('--device gpu, but this Paddle build has no CUDA: install a GPU build '
                                'of Paddle 3.x or use --device cpu.')
        self.deploy = deploy
        self.calls = config_calls(device, enable_mkldnn, cpu_threads, **options)
        check_model_file(deploy['model'])
        check_params_file(deploy['params'])
        self.predictor = self._create(self.calls)
        self.verified = False

    @property
    def onednn(self):
        return ('enable_mkldnn', {}) in self.calls

    def _create(self, calls):
        from paddle import inference
        config = inference.Config(self.deploy['model'], self.deploy['params'])
        apply_config_calls(config, calls)
        config.disable_glog_info()
        try:
            return inference.create_predictor(config)
        except (RuntimeError, ValueError, OSError) as e:  # Paddle's own errors on files it cannot load
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise UserError(f"Paddle Inference cannot load the export '{self.deploy['model']}' + "
                            f"'{self.deploy['params']}' ({reason}): the files are damaged or do not belong together "
                            "(e.g. a truncated copy, or files of two exports). Copy the export folder again, or "
                            "export again with export.py.") from None

    def _run(self, batch):
        handle = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        handle.reshape(batch.shape)
        handle.copy_from_cpu(batch)
        self.predictor.run()
        return self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu()

    def run(self, batch):
        shape = self.deploy.get('input_shape')
        if shape and any(d > 0 and d != s for d, s in zip(shape, batch.shape)):
            raise UserError(f'the export takes inputs of shape {shape} (fixed by --input_shape), got '
                            f'{list(batch.shape)} (batch, channels, height, width after preprocessing): export '
                            'without --input_shape for any size, or match --batch_size and the image size.')
        if self.verified or not self.onednn:
            return self._run(batch)
        try:
            out = self._run(batch)
        except (RuntimeError, ValueError, NotImplementedError) as e:
            if self.precision == 'bf16':
                raise UserError(f'oneDNN cannot run this graph in bf16 ({str(e).strip().splitlines()[0][:160]}): '
                                'use --engine openvino --precision bf16, or --precision fp32.') from None
            logger.warning(f'oneDNN cannot run this graph ({str(e).strip().splitlines()[0][:160]}); falling back '
                           'to Paddle Inference without oneDNN (slower).')
            self.calls = [c if c[0] != 'enable_mkldnn' else ('disable_mkldnn', {}) for c in self.calls
                          if c[0] not in ('delete_pass', 'enable_mkldnn_bfloat16')]
            self.predictor = self._create(self.calls)
            out = self._run(batch)
        self.verified = True
        return out
