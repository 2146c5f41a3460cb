"""The last step of every exported segmentation graph -- bilinear upsampling of the low-resolution
logits to the input size (``align_corners=False``) followed by an argmax over the classes --
computed exactly, but without upsampling every class at every pixel.

Why: for DDRNet-23-slim at 1024x2048 the network ends with 19 x 128 x 256 logits; upsampling
them makes a 19 x 1024 x 2048 float tensor (160 MB) that the argmax then reads once. That step
is a large share of the whole run on a CPU (see tools/benchmark.py's stage breakdown).

The exact shortcut: an upsampled pixel is a convex combination (bilinear weights, >= 0, sum 1)
of the logit vectors of its 4 neighbouring low-resolution pixels. If all 4 have the same top
class ``c`` by a margin ``m_i`` over every other class, then the combination's margin for ``c``
is ``sum w_i m_i >= min m_i > 0``: its argmax is ``c``, whatever the weights. Every output pixel
of such a "uniform cell" is labelled ``c`` without computing anything. Only the pixels of the
other cells (class boundaries) are interpolated, with the same float32 formula as ONNX
Runtime's Resize (4 products with precomputed weights), and argmaxed.

Rounding: the shortcut is taken only where every corner's margin exceeds
``TOLERANCE x max|logit|`` (1e-5, some 80x the worst float32 rounding of a 4-term
interpolation), so float32 rounding in the plain formulation cannot flip a shortcut pixel.
Ties: an exact tie between classes is never decided by the shortcut (its margin is 0); the full
computation then takes the lowest class index among the maxima, as ONNX ArgMax
(``select_last_index=0``), NumPy and Paddle do.

Sampling follows ONNX Resize ``coordinate_transformation_mode=half_pixel`` / Paddle
``align_corners=False, align_mode=0``: the source coordinate of output index ``i`` is
``(i + 0.5) / scale - 0.5`` clamped to ``[0, in - 1]`` (``scale = out / in``), so any output size
works, not only multiples of the input.

:func:`truncate_onnx` cuts an ONNX export before its final Resize + ArgMax (the graph then
outputs the low-resolution logits); :class:`FastHeadRunner` runs that graph on any engine of
:mod:`paddleseg_ddr.deploy.engines` and finishes with :func:`upsample_argmax`.
"""
import os
import shutil
import tempfile
import time

import numpy as np

from ..errors import UserError
from .predict import ExportedModelPredictor

TOLERANCE = 1e-5


def _axis_table(n_in, n_out):
    """Per output index: the two source indices, and their float32 weights (w_lo, w_hi), as
    ONNX Runtime's linear half_pixel Resize computes them."""
    scale = np.float32(n_out) / np.float32(n_in)
    src = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) / scale - np.float32(0.5)
    src = np.clip(src, np.float32(0), np.float32(n_in - 1))
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    w_hi = (src - lo.astype(np.float32)).astype(np.float32)  # distance to the lower sample
    w_lo = (np.float32(1) - w_hi).astype(np.float32)
    same = lo == hi  # at the last sample both weights 1/2 of the same value, as ORT does
    w_lo[same] = w_hi[same] = np.float32(0.5)
    return lo, hi, w_lo, w_hi


def _runs(lo, hi):
    """Split the output indices into runs sharing the same (lo, hi) source pair: (starts, lengths)."""
    change = np.flatnonzero((np.diff(lo) != 0) | (np.diff(hi) != 0)) + 1
    starts = np.concatenate([[0], change])
    return starts, np.diff(np.concatenate([starts, [len(lo)]]))


def plain_upsample_argmax(logits, size):
    """The plain formulation, for checking: the whole [C, H, W] bilinear upsample (the same
    float32 formula), then argmax over classes. ``logits`` [N, C, h, w] -> int32 [N, H, W]."""
    n, c, h, w = logits.shape
    ylo, yhi, wy0, wy1 = _axis_table(h, size[0])
    xlo, xhi, wx0, wx1 = _axis_table(w, size[1])
    out = np.empty((n, size[0], size[1]), np.int32)
    for k in range(n):
        x = logits[k].astype(np.float32, copy=False)
        a, b = x[:, ylo][:, :, xlo], x[:, ylo][:, :, xhi]
        d, e = x[:, yhi][:, :, xlo], x[:, yhi][:, :, xhi]
        up = (a * (wy0[:, None] * wx0[None]) + b * (wy0[:, None] * wx1[None]) +
              d * (wy1[:, None] * wx0[None]) + e * (wy1[:, None] * wx1[None]))
        out[k] = up.argmax(axis=0)
    return out


def upsample_argmax(logits, size, stats=None, threads=1):
    """``argmax(bilinear_upsample(logits, size), axis=1)`` exactly, computing the upsample
    only around class boundaries. ``logits`` float32 [N, C, h, w] -> int32 [N, H, W].
    ``stats`` (a dict) receives the share of output pixels that needed the full computation;
    ``threads`` share the boundary rows."""
    logits = np.asarray(logits)
    if logits.ndim != 4:
        raise ValueError(f'logits must be [N, C, h, w], got shape {logits.shape}')
    n, c, h, w = logits.shape
    H, W = int(size[0]), int(size[1])
    ylo, yhi, wy0, wy1 = _axis_table(h, H)
    xlo, xhi, wx0, wx1 = _axis_table(w, W)
    ys, ylen = _runs(ylo, yhi)
    xs, xlen = _runs(xlo, xhi)
    rlo, rhi, clo, chi = ylo[ys], yhi[ys], xlo[xs], xhi[xs]  # each cell's source rows / columns
    out = np.empty((n, H, W), np.int32)
    full = 0
    for k in range(n):
        x = np.ascontiguousarray(logits[k], dtype=np.float32)
        top = x.argmax(axis=0)
        if c > 1:
            part = np.partition(x, c - 2, axis=0)
            margin = part[c - 1] - part[c - 2]
        else:
            margin = np.full((h, w), np.inf, np.float32)
        tol = TOLERANCE * float(np.abs(x).max()) if x.size else 0.0
        sure = margin > tol
        # a cell (pair of source rows x pair of source columns) is uniform when its 4 corners
        # agree on a sure top class
        t00, t01, t10, t11 = top[rlo][:, clo], top[rlo][:, chi], top[rhi][:, clo], top[rhi][:, chi]
        uniform = ((t00 == t01) & (t00 == t10) & (t00 == t11) & sure[rlo][:, clo] & sure[rlo][:, chi] &
                   sure[rhi][:, clo] & sure[rhi][:, chi])
        label = np.repeat(np.repeat(t00.astype(np.int32), ylen, axis=0), xlen, axis=1)
        # the rest: per row of cells, the columns of its non-uniform cells, fully interpolated;
        # rows of cells are independent (disjoint output rows): shared among ``threads``
        todo = np.flatnonzero(~uniform.all(axis=1))

        def interpolate(groups):
            count = 0
            for i in groups:
                cells = np.flatnonzero(~uniform[i])
                cols = np.concatenate([np.arange(xs[j], xs[j] + xlen[j]) for j in cells])
                rows = slice(ys[i], ys[i] + ylen[i])
                x0, x1 = xlo[cols], xhi[cols]
                r0, r1 = x[:, rlo[i]], x[:, rhi[i]]  # [C, w]
                a, b, d, e = r0[:, x0], r0[:, x1], r1[:, x0], r1[:, x1]  # [C, P]
                v0, v1 = wy0[rows][:, None, None], wy1[rows][:, None, None]  # [R, 1, 1]
                u0, u1 = wx0[cols][None, None], wx1[cols][None, None]  # [1, 1, P]
                up = a[None] * (v0 * u0) + b[None] * (v0 * u1) + d[None] * (v1 * u0) + e[None] * (v1 * u1)
                label[rows, cols] = up.argmax(axis=1)
                count += up.shape[0] * up.shape[2]
            return count
        if threads > 1 and len(todo) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(threads) as pool:  # NumPy releases the GIL in its array loops
                full += sum(pool.map(interpolate, [todo[t::threads] for t in range(threads)]))
        else:
            full += interpolate(todo)
        out[k] = label
    if stats is not None:
        stats['full_share'] = full / max(n * H * W, 1)
    return out


def truncate_onnx(onnx_file, out_file):
    """Write ``out_file``: the ONNX graph of ``onnx_file`` cut before its final bilinear Resize
    and ArgMax, outputting the low-resolution logits. Returns the name of that output.

    The export's graph ends with ``Resize(linear, half_pixel) -> ArgMax(axis=1) [-> Cast]``
    (export.py, output_op argmax); anything else is refused with a UserError."""
    import onnx
    model = onnx.load(onnx_file)
    nodes = {out: node for node in model.graph.node for out in node.output}
    end = nodes.get(model.graph.output[0].name)
    if end is not None and end.op_type == 'Cast':
        end = nodes.get(end.input[0])
    resize = nodes.get(end.input[0]) if end is not None and end.op_type == 'ArgMax' else None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize.attribute} if resize is not None else {}
    argmax_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in end.attribute} if end is not None else {}
    if (resize is None or resize.op_type != 'Resize' or attrs.get('mode') != b'linear'
            or attrs.get('coordinate_transformation_mode', b'half_pixel') != b'half_pixel'
            or argmax_attrs.get('axis') != 1 or argmax_attrs.get('select_last_index', 0) != 0):
        raise UserError(f"'{onnx_file}' does not end with a bilinear (half_pixel) Resize and an ArgMax over "
                        'classes: the fast head needs an export with output_op argmax (export.py --format onnx).')
    logits = resize.input[0]
    del model.graph.output[:]
    model.graph.output.extend([onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None)])
    keep = _needed_nodes(model.graph, logits)
    kept = [node for node in model.graph.node if id(node) in keep]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    used = {i for node in kept for i in node.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    onnx.save(model, out_file)
    return logits


def _needed_nodes(graph, output):
    producer = {out: node for node in graph.node for out in node.output}
    keep, todo = set(), [output]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            todo.extend(node.input)
    return keep


class FastHeadRunner(ExportedModelPredictor):
    """An export run on ``engine`` at ``precision`` with the final upsample + argmax done by
    :func:`upsample_argmax` instead of the runtime (ONNX graphs: onnxruntime, openvino).

    Same interface as the engines' runners (``run(batch)`` -> int32 label maps,
    ``predict_batch``/``__call__`` with deploy.yaml's preprocessing, ``times``): built on
    :func:`paddleseg_ddr.deploy.engines.create_runner` over a temporary copy of the export
    whose ONNX model stops at the logits."""

    def __init__(self, model_dir, engine='onnxruntime', precision='fp32', cpu_threads=None):
        from .deploy_config import (DEPLOY_FILE, model_precision, read_deploy_config, write_deploy_yaml)
        from .engines import check_engine, create_runner
        if engine not in ('onnxruntime', 'openvino'):
            raise UserError(f"the fast head runs ONNX graphs (--engine onnxruntime or openvino), not '{engine}'.")
        check_engine(engine, precision)
        deploy = read_deploy_config(model_dir, required=('onnx_model',), precision=precision)
        if deploy.get('output_op', 'argmax') != 'argmax':
            raise UserError(f"'{model_dir}': the fast head needs an export with output_op argmax.")
        self._tmp = tempfile.mkdtemp(prefix='fast-head-')
        try:
            truncate_onnx(deploy['onnx_model'], os.path.join(self._tmp, 'model.onnx'))
            section = {k: deploy[k] for k in ('transforms', 'input_shape', 'class_names', 'palette', 'label_ids')
                       if deploy.get(k) is not None}
            section.update(onnx_model='model.onnx', precision=model_precision(precision), output_op='none',
                           output_dtype='float32')
            write_deploy_yaml(os.path.join(self._tmp, DEPLOY_FILE), {'Deploy': section})
            self.inner = create_runner(self._tmp, engine, precision, cpu_threads)
        except BaseException:
            self.close()
            raise
        super().__init__(deploy['transforms'], 'argmax', self.inner.meta)
        self.transforms_cfg = deploy['transforms']
        self.threads = int(cpu_threads or len(os.sched_getaffinity(0)))
        self.engine, self.precision, self.model_file = engine, precision, deploy['onnx_model']
        # the engine's share of ``times['inference']`` and the fast head's
        self.head_times = {'network': 0.0, 'upsample_argmax': 0.0}
        self.stats = {}

    def run(self, batch):
        t0 = time.perf_counter()
        logits = self.inner.run(batch)
        t1 = time.perf_counter()
        labels = upsample_argmax(logits, batch.shape[2:], self.stats, self.threads)
        self.head_times['network'] += t1 - t0
        self.head_times['upsample_argmax'] += time.perf_counter() - t1
        return labels

    def describe(self):
        return f'{self.engine} {self.precision}, final upsample + argmax by the exact fast head (NumPy)'

    def close(self):
        """Close the engine's runner and remove the temporary truncated model."""
        inner = getattr(self, 'inner', None)
        if inner is not None and hasattr(inner, 'close'):
            inner.close()
        if getattr(self, '_tmp', None):
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self):
        self.close()
