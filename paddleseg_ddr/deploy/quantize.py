"""int8 post-training quantization of an ONNX export, calibrated on training images.

``quantize_export(model_dir, images)`` writes ``model.int8.onnx`` into an export folder (one
written by ``export.py --format onnx``) and records it in its deploy.yaml as the ``int8``
entry of ``precisions`` (deploy_config.record_precision), so ``val.py``, ``predict.py`` and
the infer scripts run it with ``--precision int8`` on ONNX Runtime or OpenVINO (both read
the same QDQ model). Nothing else in the folder is touched; the file appears complete or not
at all.

Why this recipe (measured on DDRNet-23-slim trained on the mini Cityscapes, see
tools/quantize.py's notes and the README):

- PaddleSlim 2.6.0 (the seed's ``slim/``) cannot read a Paddle 3 PIR export (model.json):
  ``quant_post_static`` fails in ``paddle.static.quantization.PostTrainingQuantization``
  (``_get_var``: ``assert isinstance(program, Program)``); it only runs on a legacy
  ``.pdmodel`` saved with ``FLAGS_enable_pir_api=0``, which the project's export is not.
- ONNX Runtime's static QDQ quantization with every supported op quantized (its default)
  leaves only ~94% of the label map equal to fp32: the residual ``Add``s, ``Resize``s and
  ``Concat``s of the two branches lose too much at 8 bits. Quantizing the convolutions only
  (int8 per-channel weights, uint8 per-tensor activations) keeps 96-99% of the labels; the
  convolutions are nearly all of the arithmetic.
- On the model trained 1000 iterations, with the convolutions only: MinMax calibration cost
  1.25 mIoU points, Percentile (99.999%) 0.28, Percentile with the first convolution (the
  image's raw range) and the classifier (its uint8 output would round the logits before the
  final upsample + argmax) kept in float 0.08: the default (KEEP_FLOAT).
- OpenVINO's NNCF (3.4.0, ``nncf.quantize``, preset performance) kept ~97% of the labels;
  the QDQ model made here runs on OpenVINO as well, so one int8 file serves both engines.
"""
import os
import shutil
import tempfile

import numpy as np
from paddleseg.utils import logger

from ..errors import UserError
from ..utils.fileio import atomic_path
from .deploy_config import deploy_paths, load_deploy_yaml, read_deploy_config, record_precision
from .predict import _compose, read_image

INT8_ONNX = 'model.int8.onnx'
METHODS = ('minmax', 'entropy', 'percentile')
# What is quantized: the convolutions. Add (residual sums, bilateral fusions), Resize,
# Concat, the pooling of DAPPM, the head's BatchNormalization and ArgMax stay in float.
DEFAULT_OPS = ('Conv',)
# Convolutions kept in float as well: the first (reads the normalised image) and the last
# (the classifier, whose output are the logits).
KEEP_FLOAT = ('first_conv', 'last_conv')
# Label agreement with fp32 on the calibration images below which a warning is printed.
WARN_AGREEMENT = 0.97
CHECK_IMAGES = 4


def require_onnxruntime_quantization():
    """ONNX Runtime's quantization tools (they import ml_dtypes, which onnxruntime does not
    install)."""
    try:
        from onnxruntime import quantization
    except ImportError as e:
        raise UserError(f'int8 quantization needs onnxruntime with its quantization tools ({e}): '
                        'pip install onnxruntime "ml_dtypes==0.5.1" (ml_dtypes 0.5 keeps numpy<2).') from None
    return quantization


def train_images(cfg):
    """The image files of the config's train_dataset (its file list, in order)."""
    from ..engine import Builder
    if not (cfg.dic.get('train_dataset') or {}):
        raise UserError('the config has no train_dataset: the calibration images are drawn from it. Give the '
                        'training config of the model.')
    dataset = Builder(cfg).train_dataset
    files = [entry[0] if isinstance(entry, (list, tuple)) else entry for entry in getattr(dataset, 'file_list', [])]
    if not files:
        raise UserError(f"the train_dataset of the config ({type(dataset).__name__}, dataset_root "
                        f"'{getattr(dataset, 'dataset_root', '?')}') has no images: prepare the dataset (see README, "
                        'Data), or point dataset_root at it with --opts train_dataset.dataset_root=<folder>.')
    return files


def calibration_images(files, n, seed=0):
    """``n`` of ``files`` drawn deterministically (a fixed permutation of ``seed``), in file
    order: the same images for the same dataset, whatever the machine."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f'--calib_images must be a positive number of images, got {n!r}.')
    if not files:
        raise UserError('no calibration images: the training set is empty.')
    if n > len(files):
        raise UserError(f'--calib_images {n} is more than the {len(files)} training images: give '
                        f'--calib_images {len(files)} or fewer.')
    order = np.random.default_rng(seed).permutation(len(files))[:n]
    return [files[i] for i in sorted(order)]


def preprocess(files, transforms):
    """Each file as the batch [1, 3, H, W] float32 the export is fed: deploy.yaml's transforms,
    exactly as the predictors apply them (ExportedModelPredictor)."""
    compose = _compose(transforms)
    for path in files:
        image, why = read_image(path)
        if image is None:
            raise UserError(f"calibration image '{path}' {why}: copy it again, or remove it from the training "
                            'list.')
        yield np.ascontiguousarray(compose({'img': image.astype('float32')})['img'], np.float32)[None]


class _Reader:
    """ONNX Runtime CalibrationDataReader over preprocessed images (one per batch)."""

    def __init__(self, input_name, files, transforms):
        self.input_name = input_name
        self.batches = preprocess(files, transforms)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _session(path, threads=None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def label_agreement(fp32_file, int8_file, batches, threads=None):
    """Fraction of label-map pixels on which the int8 model agrees with the fp32 one (their
    argmax outputs, or the argmax of their scores), over ``batches``."""
    sessions = [_session(fp32_file, threads), _session(int8_file, threads)]
    name = sessions[0].get_inputs()[0].name
    same = total = 0
    for batch in batches:
        a, b = (s.run(None, {name: batch})[0] for s in sessions)
        if a.ndim == 4:
            a, b = a.argmax(1), b.argmax(1)
        same += int((a == b).sum())
        total += a.size
    return same / max(total, 1)


def quantize_onnx(src, dst, files, transforms, method='percentile', op_types=DEFAULT_OPS, keep_float=KEEP_FLOAT):
    """Write the int8 QDQ model of ``src`` to ``dst`` (atomically), calibrated on ``files``
    preprocessed by ``transforms``. Weights int8 per output channel, activations uint8 per
    tensor; only ``op_types`` are quantized, minus the convolutions named by ``keep_float``
    (see the module docstring). Returns the names of the convolutions kept in float."""
    q = require_onnxruntime_quantization()
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, got '{method}'.")
    calib = {'minmax': q.CalibrationMethod.MinMax, 'entropy': q.CalibrationMethod.Entropy,
             'percentile': q.CalibrationMethod.Percentile}[method]
    # ONNX Runtime holds every calibration image's activations until the end (its streaming
    # option CalibMaxIntermediateOutputs, MinMax only, drops them unmeasured in 1.32): memory
    # grows with --calib_images and the image size.
    extra = {'CalibPercentile': 99.999} if method == 'percentile' else {}
    work = tempfile.mkdtemp(prefix='quantize-')
    try:
        pre = os.path.join(work, 'pre.onnx')
        # Shape inference + ORT's basic graph optimisation (conv bias Adds folded into the convs),
        # as ONNX Runtime recommends before quantizing; symbolic shapes are skipped: H and W are
        # dynamic and its symbolic inference stops on the Resize sizes.
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        input_name = _session(pre).get_inputs()[0].name
        import onnx
        convs = [n.name for n in onnx.load(pre).graph.node if n.op_type == 'Conv']
        unknown = [k for k in keep_float if k not in KEEP_FLOAT]
        if unknown:
            raise UserError(f"--keep_float takes {', '.join(KEEP_FLOAT)} (or none), got '{unknown[0]}'.")
        kept = ([convs[0]] if 'first_conv' in keep_float and convs else []) + \
               ([convs[-1]] if 'last_conv' in keep_float and len(convs) > 1 else [])
        with atomic_path(dst) as tmp:
            q.quantize_static(pre, tmp, _Reader(input_name, files, transforms), quant_format=q.QuantFormat.QDQ,
                              per_channel=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                              calibrate_method=calib, op_types_to_quantize=list(op_types) if op_types else None,
                              nodes_to_exclude=kept, extra_options=extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return kept


def quantize_export(model_dir, files, method='percentile', op_types=DEFAULT_OPS, keep_float=KEEP_FLOAT, source=None,
                    check_images=CHECK_IMAGES):
    """Quantize the ONNX model of the export ``model_dir`` to int8 with the calibration images
    ``files``; write ``model.int8.onnx`` beside it and record it in deploy.yaml
    (``precisions.int8``, with how it was made and its label agreement with fp32 on the first
    ``check_images`` calibration images). Returns the recorded entry."""
    model_dir, deploy_file = deploy_paths(model_dir)
    if not os.path.isdir(model_dir):
        raise UserError(f"--model_dir '{model_dir}' is not a folder: give the --save_dir of export.py (an export "
                        'made with --format onnx).')
    deploy = read_deploy_config(model_dir, required=())
    if deploy.get('precision', 'fp32') != 'fp32':
        raise UserError(f"'{model_dir}' holds a {deploy['precision']} model: quantize an fp32 export (export.py "
                        '--format onnx).')
    if not deploy.get('onnx_model'):
        raise UserError(f"'{model_dir}' has no ONNX model (deploy.yaml names no onnx_model): int8 quantization "
                        f'works on it. Convert the export first: python tools/export_onnx.py --model_dir {model_dir} '
                        '(or export with export.py --format onnx).')
    src = read_deploy_config(model_dir, required=('onnx_model',))['onnx_model']
    if os.path.basename(src) == INT8_ONNX:
        raise UserError(f"'{deploy_file}' names {INT8_ONNX} as its fp32 onnx_model: export again.")
    if not files:
        raise UserError('no calibration images given: pass --calib_images N (drawn from the config\'s training '
                        'images).')
    dst = os.path.join(model_dir, INT8_ONNX)
    recorded = ((load_deploy_yaml(deploy_file)['Deploy'].get('precisions') or {}).get('int8') or {}).values()
    if os.path.exists(dst) and INT8_ONNX not in recorded:
        raise UserError(f"'{dst}' exists and is not the int8 model deploy.yaml records: it is not replaced. Move "
                        'or rename it, then quantize again.')
    logger.info(f"Quantizing '{src}' to int8 ({method} calibration on {len(files)} training images, "
                f"{'/'.join(op_types) if op_types else 'all ops'} quantized) ...")
    kept = quantize_onnx(src, dst, files, deploy['transforms'], method, op_types, keep_float)
    checked = list(files[:check_images])
    agreement = label_agreement(src, dst, preprocess(checked, deploy['transforms'])) if checked else None
    import onnxruntime
    info = {'tool': f'onnxruntime {onnxruntime.__version__} quantize_static (QDQ)',
            'calibration': method, 'calibration_images': len(files),
            'calibration_source': source or 'given files',
            'quantized_ops': list(op_types) if op_types else 'all',
            'kept_float_convs': kept,
            'kept_float': ('every op but ' + ', '.join(op_types) if op_types else 'none')
            + (f', and {len(kept)} convolution(s): ' + ', '.join(keep_float) if kept else ''),
            'weights': 'int8 per output channel', 'activations': 'uint8 per tensor'}
    if agreement is not None:
        info['label_agreement_fp32_calibration'] = round(float(agreement), 5)
        if agreement < WARN_AGREEMENT:
            logger.warning(f'the int8 model agrees with fp32 on only {100 * agreement:.2f}% of the label pixels of '
                           f'{len(checked)} calibration images: check its mIoU with val.py --precision int8 '
                           'before deploying it.')
    entry = record_precision(model_dir, 'int8', {'onnx_model': INT8_ONNX}, info)
    logger.info(f"Wrote '{dst}' and recorded it in '{deploy_file}' (precisions.int8)"
                + (f'; label agreement with fp32 on {len(checked)} calibration images '
                   f'{100 * agreement:.2f}%.' if agreement is not None else '.'))
    return entry


def quantize_from_config(cfg, model_dir, calib_images, method='percentile', op_types=DEFAULT_OPS,
                         keep_float=KEEP_FLOAT, seed=0, config_path=None):
    """:func:`quantize_export` with ``calib_images`` images drawn from the config's training set."""
    files = calibration_images(train_images(cfg), calib_images, seed)
    where = f"train_dataset of '{config_path}'" if config_path else 'train_dataset of the config'
    return quantize_export(model_dir, files, method, op_types, keep_float, source=f'{where} (seed {seed})')
