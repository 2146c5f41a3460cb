"""Model size and CPU/GPU speed of one config, per inference engine and precision, in one table:
python tools/benchmark.py --config configs/ddrnet/ddrnet23_slim_cityscapes_1024x1024_120k.yml \
    --input_shape 1 3 1024 2048 [--model_path model.pdparams | --model_dir <export>] \
    [--engines dygraph paddle paddle_onednn onnxruntime openvino torch] [--precisions fp32 bf16 int8] \
    [--heads runtime fast] [--graphs fused train] [--image <png>] [--json out.json]

Parameters and GMACs (convolution multiply-accumulates, the paper's "GFLOPs") come from the
model. The config's model (random weights, or the checkpoint ``--model_path``) is exported once
(Paddle graph + ONNX; ``--model_dir`` uses an existing export instead, e.g. one holding an int8
model from tools/quantize.py); every (engine, precision, head) then runs in its own fresh
process, so its peak memory (RSS high-water mark, /proc VmHWM) is its own, on the same preprocessed image:
warm-up runs, then timed runs of image tensor -> full-size label map; latency median and p90,
FPS. Engines:
  dygraph        the Paddle model, eager, full-size label map (forward + argmax), fp32
  paddle         Paddle Inference without oneDNN (fp32)
  paddle_onednn  Paddle Inference with oneDNN (as deploy/python/infer.py runs it by default)
  onnxruntime    ONNX Runtime on the ONNX export
  openvino       OpenVINO on the ONNX export
  torch          the variant's reference implementation (tools/reference, PyTorch eager, fp32,
                 random weights; its deployed graph where the release has one), its own output
                 (logits at 1/8: it does less work than the others)
Precisions (paddleseg_ddr.deploy.engines): fp32; bf16 (the fp32 model computed in bf16, on a
CPU with it); int8 (the export's int8 model, where deploy.yaml records one). A pair an engine
cannot run is skipped with the reason. ``--heads fast`` adds, for onnxruntime and openvino, the
path whose final bilinear upsample + argmax is done by paddleseg_ddr.deploy.fast_head (exact).

Label agreement: the share of pixels of each path's label map equal to the fp32 reference's
(onnxruntime fp32 with the runtime's own head, else the first fp32 path) on the benchmark
image: ``--image``, or a mini Cityscapes scene (paddleseg_ddr.datasets.mini_cityscapes) drawn
at the input size; with a trained ``--model_path`` the labels are meaningful.

Peaks, measured in the same run with the same threads (best over 2048^2 and 4096^2 square
matrix products, best of 5 runs each): fp32 sgemm (NumPy's OpenBLAS, ONNX Runtime's MLAS,
OpenVINO f32), bf16 GEMM (PyTorch's bfloat16 matmul on oneDNN, which uses AMX / AVX512-BF16;
OpenVINO MatMul with the bf16 hint), int8 GEMM (ONNX Runtime MatMulInteger u8 x s8, PyTorch
``_int_mm``, OpenVINO's int8 MatMul from FakeQuantize). "% of peak" = 2 x MACs / latency / the
peak of the path's precision: the best dense matrix-multiply rate any of these libraries reaches
here at that precision, the roof for convolutions that the runtimes lower to the same GEMM
kernels. The stage breakdown (preprocessing, network, final upsample + argmax, postprocessing)
is given for the fastest path of each precision. ``--graphs``: which graph the Paddle engines
run, 'fused' (re-parameterised, as export.py writes it: the default) and/or 'train'.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

ENGINES = ('dygraph', 'paddle', 'paddle_onednn', 'onnxruntime', 'openvino', 'torch')
PRECISIONS = ('fp32', 'bf16', 'int8')
HEADS = ('runtime', 'fast')
# benchmark engine -> engines.create_runner engine (and its options)
EXPORTED = {'paddle': ('paddle', {'enable_mkldnn': False}), 'paddle_onednn': ('paddle', {'enable_mkldnn': True}),
            'onnxruntime': ('onnxruntime', {}), 'openvino': ('openvino', {})}


def build_model(config, graph='train', variant=None, model_path=None):
    """The config's model (or the registered ``variant``'s, 19 classes) without its
    training-only heads, with random weights (no pretrained file needed) or those of the
    checkpoint ``model_path``, as built for training or re-parameterised (``graph`` 'fused')."""
    from paddleseg_ddr.models import get_variant, reparameterize
    if variant:
        info = get_variant(variant)
        try:
            model = info.factory(num_classes=19, aux_head=False)
        except TypeError:  # a family without optional training heads
            model = info.factory(num_classes=19)
        model_type = info.model_type
    else:
        from paddleseg_ddr.engine import Builder, load_config
        cfg = load_config(config, opts=['model.pretrained=None', 'model.aux_head=False'])  # as deployed
        model, model_type = Builder(cfg).model, cfg.dic['model']['type']
    if model_path:
        from paddleseg_ddr.utils.weights import load_model_weights
        load_model_weights(model, model_path, to_fused=reparameterize)
    model.eval()
    return reparameterize(model) if graph == 'fused' else model, model_type


def deployed_parameters(model):
    """Trainable parameters without the training-only layers (``TRAIN_ONLY_PREFIXES``)."""
    skip = tuple(getattr(model, 'TRAIN_ONLY_PREFIXES', ())) or ('\0',)
    return sum(int(p.numel()) for n, p in model.named_parameters() if not p.stop_gradient and not n.startswith(skip))


def time_runs(run, warmup, repeats):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def benchmark_image(height, width, path):
    """A mini Cityscapes street scene drawn at ``height`` x ``width`` (the generator's first
    val scene), written as a PNG to ``path``: textures, edges and class layout of a real
    street image, so label maps and their agreement mean something."""
    import cv2
    import numpy as np

    from paddleseg_ddr.datasets.mini_cityscapes import SPLITS, draw_scene, paint_scene
    rng = np.random.default_rng([0, list(SPLITS).index('val'), 0])
    rgb = paint_scene(draw_scene(rng, width, height), width, height, rng)
    cv2.imwrite(path, cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    return path


def make_runner(engine, precision, head, model_dir, threads):
    """The engines' runner (or the fast-head runner) of one benchmark path."""
    from paddleseg_ddr.deploy.engines import create_runner
    name, options = EXPORTED[engine]
    if head == 'fast':
        from paddleseg_ddr.deploy.fast_head import FastHeadRunner
        return FastHeadRunner(model_dir, name, precision, threads)
    return create_runner(model_dir, name, precision, threads, **options)


def torch_model(model_type, threads):
    import importlib.util
    import inspect

    import torch

    from paddleseg_ddr.models import get_variant
    torch.set_num_threads(threads)
    # the parent passes the model type: building the Paddle model here would count in torch's memory
    reference = get_variant(model_type).reference
    if reference is None:
        raise SystemExit(f'no PyTorch reference for {model_type}')
    module, name = reference
    spec = importlib.util.spec_from_file_location(module, os.path.join(ROOT, 'tools', 'reference', module + '.py'))
    implementation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(implementation)
    # the release's own deployed graph where it has one (RDRNet), else its only graph
    deploy = {'deploy': True} if 'deploy' in inspect.signature(implementation.randomized).parameters else {}
    return implementation.randomized(name, augment=False, **deploy)


def engine_runner(args, workdir):
    """(no-argument function running one inference on the benchmark input, function giving
    the label map or None)."""
    import numpy as np
    engine = args.child
    if args.input_npy:
        x = np.load(args.input_npy)
    else:
        x = np.random.default_rng(0).normal(size=args.input_shape).astype(np.float32)
    if engine == 'torch':
        import torch
        model, tx = torch_model(args.model_type, args.cpu_threads), torch.from_numpy(x)

        def run():
            with torch.no_grad():
                model(tx)
        return run, lambda: None
    from paddleseg_ddr.engine.runtime import setup
    setup('cpu')
    import paddle
    paddle.base.core.set_num_threads(args.cpu_threads)  # dygraph CPU kernels (default: one thread)
    if engine == 'dygraph':
        model, _ = build_model(args.config, args.graph, args.variant, args.model_path)
        tx = paddle.to_tensor(x)

        def labels():
            with paddle.no_grad():
                return model(tx)[0].argmax(axis=1).numpy()
        return labels, labels
    model_dir = args.model_dir
    if not model_dir:  # --models: each child exports its own random-weight model
        from paddleseg_ddr.deploy import export_inference_model
        model, _ = build_model(args.config, args.graph, args.variant)
        model_dir = os.path.join(workdir, engine)
        export_inference_model(model, model_dir, [], onnx=engine in ('onnxruntime', 'openvino'), fuse=False)
        del model
    runner = make_runner(engine, args.precision, args.head, model_dir, args.cpu_threads)
    return (lambda: runner.run(x)), (lambda: runner.run(x))


def label_set(args):
    """The path's label maps of every --agreement_images image at its own size (deploy.yaml's
    preprocessing, as predict.py runs them), flattened into one uint8 array."""
    import numpy as np

    from paddleseg_ddr.deploy.predict import list_images, read_bgr
    runner = make_runner(args.child, args.precision, args.head, args.model_dir, args.cpu_threads)
    return np.concatenate([runner(read_bgr(path)).ravel() for path, _ in list_images(args.agreement_images)])


def stage_breakdown(args):
    """Median seconds of each stage of one path on the benchmark image: preprocessing
    (deploy.yaml's transforms), network, final upsample + argmax, postprocessing (label map to
    uint8 and to the image size, palette colours and overlay, as predict.py writes them).
    For the runtime's own head the network alone is the same export cut before its final
    Resize + ArgMax (fast_head.truncate_onnx) on the same engine, and the head the rest."""
    import numpy as np

    from paddleseg_ddr.deploy.fast_head import FastHeadRunner, upsample_argmax
    from paddleseg_ddr.deploy.predict import label_tables, read_bgr
    bgr = read_bgr(args.image)
    runner = make_runner(args.child, args.precision, args.head, args.model_dir, args.cpu_threads)
    cut = runner if args.head == 'fast' else FastHeadRunner(args.model_dir, EXPORTED[args.child][0], args.precision,
                                                             args.cpu_threads)
    x = {}

    def preprocess():
        x['x'] = np.ascontiguousarray(runner.transforms({'img': bgr.astype('float32')})['img'], np.float32)[None]
    colors, _ = label_tables(runner.meta)

    def postprocess():
        import cv2
        label = x['labels'][0].astype(np.uint8)
        if label.shape != bgr.shape[:2]:
            label = cv2.resize(label, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
        color = colors[label][..., ::-1]
        cv2.addWeighted(bgr, 0.4, color, 0.6, 0)
    repeats = max(3, min(args.repeats, 5))
    pre = time_runs(preprocess, 1, repeats)
    whole = time_runs(lambda: x.__setitem__('labels', runner.run(x['x'])), args.warmup, repeats)
    network = time_runs(lambda: x.__setitem__('logits', cut.inner.run(x['x'])), args.warmup, repeats)
    size = x['x'].shape[2:]
    if args.head == 'fast':
        head = time_runs(lambda: upsample_argmax(x['logits'], size), 1, repeats)
    else:
        head = [max(float(np.median(whole)) - float(np.median(network)), 0.0)]
    post = time_runs(postprocess, 1, repeats)
    stats = {}
    upsample_argmax(x['logits'], size, stats)
    result = {'preprocess': float(np.median(pre)), 'network': float(np.median(network)),
              'upsample_argmax': float(np.median(head)), 'postprocess': float(np.median(post)),
              'whole_run': float(np.median(whole)), 'boundary_pixel_share': stats['full_share']}
    if args.head == 'fast':  # the same engine's own head, timed in this process too
        plain = make_runner(args.child, args.precision, 'runtime', args.model_dir, args.cpu_threads)
        result['runtime_head_whole_run'] = float(np.median(time_runs(lambda: plain.run(x['x']), args.warmup,
                                                                     repeats)))
        result['runtime_upsample_argmax'] = max(result['runtime_head_whole_run'] - result['network'], 0.0)
    return result


def child(args):
    """Run one path in this process; print its result as one JSON line."""
    if args.child == 'peaks':
        print('RESULT ' + json.dumps(matmul_peaks(args.cpu_threads, args.peak_sizes)))
        return
    if args.breakdown:
        print('RESULT ' + json.dumps(stage_breakdown(args)))
        return
    rss_before = peak_rss_kib()
    with tempfile.TemporaryDirectory() as workdir:
        run, labels = engine_runner(args, workdir)
        times = time_runs(run, args.warmup, args.repeats)
        peak = peak_rss_kib()
        out = labels() if args.labels_out else None
    if out is not None:
        import numpy as np
        np.save(args.labels_out, np.asarray(out).astype(np.uint8))
        if args.agreement_images and args.child in EXPORTED:
            np.save(args.labels_out[:-4] + '.set.npy', label_set(args))
    print('RESULT ' + json.dumps({'engine': args.child, 'graph': args.graph, 'precision': args.precision,
                                  'head': args.head, 'times': times, 'peak_rss_mb': peak / 1024,
                                  'startup_rss_mb': rss_before / 1024}))


def peak_rss_kib():
    """This process's resident-set high-water mark in KiB: /proc's VmHWM, which starts afresh
    at exec (getrusage's ru_maxrss survives exec, so a child would inherit the parent's peak
    from before it started), else ru_maxrss."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _best_rate(run, n, threads):
    return 2 * n ** 3 / min(time_runs(run, 1, 5)) / 1e9


def matmul_peaks(threads, sizes=(2048, 4096)):
    """{precision: {library: best GFLOP/s (GOP/s for int8)}} of square matrix products, each
    library with ``threads`` threads; a library that is missing or fails is left out."""
    import numpy as np
    peaks = {'fp32': {}, 'bf16': {}, 'int8': {}}

    def keep(precision, library, make):
        for n in sizes:
            try:
                rate = _best_rate(make(n), n, threads)
            except Exception:  # a library without this precision here, or not installed
                continue
            peaks[precision][library] = max(peaks[precision].get(library, 0.0), rate)
    rng = np.random.default_rng(1)
    mats = {n: (rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)) for n in sizes}
    ints = {n: (rng.integers(0, 256, (n, n)).astype(np.uint8), rng.integers(-128, 128, (n, n)).astype(np.int8))
            for n in sizes}

    def numpy_fp32(n):
        a, b = mats[n]
        return lambda: a @ b
    keep('fp32', 'numpy', numpy_fp32)

    def ort(op, types, n, inputs):
        import onnxruntime as ort
        from onnx import TensorProto, helper
        out_type = TensorProto.INT32 if op == 'MatMulInteger' else TensorProto.FLOAT
        graph = helper.make_graph([helper.make_node(op, ['a', 'b'], ['c'])], 'gemm',
                                  [helper.make_tensor_value_info(k, t, [n, n]) for k, t in zip('ab', types)],
                                  [helper.make_tensor_value_info('c', out_type, [n, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
        feed = dict(zip('ab', inputs))
        return lambda: session.run(None, feed)
    from onnx import TensorProto
    keep('fp32', 'onnxruntime', lambda n: ort('MatMul', (TensorProto.FLOAT,) * 2, n, mats[n]))
    keep('int8', 'onnxruntime', lambda n: ort('MatMulInteger', (TensorProto.UINT8, TensorProto.INT8), n, ints[n]))

    def torch_gemm(dtype, n):
        import torch
        torch.set_num_threads(threads)
        if dtype == 'int8':
            a, b = (torch.from_numpy(m.astype(np.int8) if m.dtype == np.uint8 else m) for m in ints[n])
            return lambda: torch._int_mm(a, b)
        a, b = (torch.from_numpy(m).to(torch.bfloat16) for m in mats[n])
        return lambda: torch.matmul(a, b)
    keep('bf16', 'torch', lambda n: torch_gemm('bf16', n))
    keep('int8', 'torch', lambda n: torch_gemm('int8', n))

    def openvino_gemm(precision, n):
        import openvino as ov
        import openvino.opset13 as ops
        a = ops.parameter([n, n], np.float32, name='a')
        b = mats[n][1]
        if precision == 'int8':  # FakeQuantize on the activations, int8 weights: OpenVINO's int8 MatMul
            hi = ops.constant(np.float32(1))
            a_q = ops.fake_quantize(a, ops.constant(np.float32(0)), hi, ops.constant(np.float32(0)), hi, 256)
            w = ops.multiply(ops.convert(ops.constant(ints[n][1]), np.float32), ops.constant(np.float32(0.01)))
            out = ops.matmul(a_q, w, False, False)
        else:
            out = ops.matmul(a, ops.constant(b), False, False)
        config = {'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16' else 'f32',
                  'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY'}
        request = ov.Core().compile_model(ov.Model([out], [a]), 'CPU', config).create_infer_request()
        x = mats[n][0]
        return lambda: request.infer({0: x})
    for precision in PRECISIONS:
        keep(precision, 'openvino', lambda n, p=precision: openvino_gemm(p, n))
    return peaks


def sgemm_peak(threads, sizes=(2048, 4096)):
    """Best measured float32 matrix-multiply speed (GFLOP/s) per library (see matmul_peaks)."""
    return matmul_peaks(threads, sizes)['fp32']


def run_child(cmd_extra, args, model_type, graph='fused', variant=None):
    source = ['--variant', variant] if variant else ['--config', args.config]
    cmd = [sys.executable, os.path.abspath(__file__), *source, *cmd_extra,
           '--model_type', model_type, '--graph', graph,
           '--input_shape', *map(str, args.input_shape), '--warmup', str(args.warmup),
           '--repeats', str(args.repeats), '--cpu_threads', str(args.cpu_threads),
           '--peak_sizes', *map(str, args.peak_sizes)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.cpu_threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip() and 'Warning' not in l and
             'warnings.warn' not in l] or ['no output']
    return {'error': lines[-1][:300]}


def run_engine(engine, args, model_type, graph='fused', variant=None, precision='fp32', head='runtime',
               model_dir=None, input_npy=None, labels_out=None, model_path=None):
    extra = ['--child', engine, '--precision', precision, '--head', head]
    for flag, value in (('--model_dir', model_dir), ('--input_npy', input_npy), ('--labels_out', labels_out),
                        ('--model_path', model_path), ('--agreement_images', args.agreement_images)):
        if value:
            extra += [flag, value]
    result = run_child(extra, args, model_type, graph, variant)
    result.setdefault('engine', engine)
    result.update(graph=graph, precision=precision, head=head)
    return result


def percentile(values, q):
    import numpy as np
    return float(np.percentile(values, q))


def agreement(labels, reference):
    """Share of pixels where two label maps agree."""
    import numpy as np
    labels, reference = np.asarray(labels), np.asarray(reference)
    if labels.shape != reference.shape:
        raise ValueError(f'label maps of different shapes {labels.shape} and {reference.shape}')
    return float(np.count_nonzero(labels == reference)) / labels.size


def plan_paths(args, int8_available):
    """[(graph, engine, precision, head)] to run, and [(path, precision, why skipped)]."""
    paths, skipped = [], []
    for graph in args.graphs:
        for engine in args.engines:
            if engine == 'torch' and graph != 'fused':
                continue  # the reference runs its own graph once
            for precision in args.precisions:
                for head in args.heads:
                    name = path_name(engine, precision, head, graph)
                    why = None
                    if engine in ('dygraph', 'torch', 'paddle') and precision != 'fp32':
                        why = f'{engine} runs fp32 only here'
                    elif head == 'fast' and engine not in ('onnxruntime', 'openvino'):
                        continue  # the fast head runs ONNX graphs
                    elif engine == 'onnxruntime' and precision == 'bf16':
                        why = 'ONNX Runtime has no bf16 convolutions on the CPU'
                    elif precision == 'int8' and not int8_available.get(graph):
                        why = 'the export has no int8 model (tools/quantize.py makes one; pass --model_dir)'
                    elif precision == 'int8' and not int8_available[graph] & INT8_FILES.get(engine, set()):
                        why = f"the export's int8 model has no file {engine} reads ({', '.join(sorted(int8_available[graph]))})"
                    if why:
                        if head == 'runtime' and (name, precision, why) not in skipped:
                            skipped.append((name, precision, why))
                        continue
                    if engine in ('dygraph', 'torch') and head != 'runtime':
                        continue
                    paths.append((graph, engine, precision, head))
    return paths, skipped


def path_name(engine, precision, head='runtime', graph='fused'):
    return (engine + (' + fast head' if head == 'fast' else '') + (' (training graph)' if graph == 'train' else ''))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=None, help='A model config (one model, every engine).')
    p.add_argument('--model_path', default=None,
                   help='A trained checkpoint of the config\'s model (default: random weights, same speed).')
    p.add_argument('--model_dir', default=None,
                   help='An existing export of the config\'s model to run (e.g. with an int8 model from '
                        'tools/quantize.py) instead of exporting one.')
    p.add_argument('--image', default=None, help='The benchmark image (default: a mini Cityscapes scene drawn at '
                                                 'the input size); resized to the input size.')
    p.add_argument('--models', nargs='+', default=None, metavar='VARIANT',
                   help="Registered variants ('all' for every one): one summary table of size, cost, "
                        'ONNX Runtime latency and published figures, and --plot.')
    p.add_argument('--plot', default=None, help='With --models: latency vs published mIoU, as a PNG.')
    p.add_argument('--variant', default=None, help=argparse.SUPPRESS)
    p.add_argument('--input_shape', nargs=4, type=int, default=[1, 3, 1024, 2048], metavar=('N', 'C', 'H', 'W'))
    p.add_argument('--engines', nargs='+', default=list(ENGINES), choices=ENGINES)
    p.add_argument('--precisions', nargs='+', default=['fp32'], choices=PRECISIONS,
                   help='Run precisions (int8: where the export has an int8 model).')
    p.add_argument('--heads', nargs='+', default=['runtime'], choices=HEADS,
                   help="'runtime': the export's own final upsample + argmax; 'fast': the exact fast head "
                        '(paddleseg_ddr.deploy.fast_head), for onnxruntime and openvino.')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=10)
    p.add_argument('--cpu_threads', type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument('--graphs', nargs='+', default=['fused'], choices=['fused', 'train'],
                   help='Graphs the Paddle engines run: fused (re-parameterised, as exported) and/or train.')
    p.add_argument('--json', default=None, help='Also write the results here.')
    p.add_argument('--agreement_images', default=None,
                   help='Also measure label agreement with fp32 over these images (a folder or list file), each '
                        'at its own size: e.g. the val images the model was trained for.')
    p.add_argument('--save_labels', default=None, help='Also keep each path\'s label map here (<path>.npy).')
    p.add_argument('--peak_sizes', nargs='+', type=int, default=[2048, 4096], help=argparse.SUPPRESS)
    p.add_argument('--graph', default='fused', help=argparse.SUPPRESS)
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    p.add_argument('--precision', default='fp32', help=argparse.SUPPRESS)
    p.add_argument('--head', default='runtime', help=argparse.SUPPRESS)
    p.add_argument('--input_npy', default=None, help=argparse.SUPPRESS)
    p.add_argument('--labels_out', default=None, help=argparse.SUPPRESS)
    p.add_argument('--breakdown', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--model_type', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.models:
        return compare_models(args)
    if not args.config:
        p.error('give --config (one model) or --models (a comparison table)')
    from paddleseg_ddr.errors import UserError
    for flag, path in (('--model_path', args.model_path), ('--image', args.image)):
        if path and not os.path.isfile(path):
            raise UserError(f"{flag} '{path}' does not exist.")
    if args.model_dir and args.graphs != ['fused']:
        raise UserError('--model_dir runs the graph of that export: leave out --graphs (it is for exports made here).')
    if args.repeats < 1 or args.warmup < 0 or args.cpu_threads < 1:
        raise UserError('--repeats and --cpu_threads must be at least 1, --warmup at least 0.')
    load_start = os.getloadavg()

    import numpy as np
    import paddle

    from paddleseg_ddr.engine.runtime import setup
    from paddleseg_ddr.models.complexity import count_macs, count_parameters
    setup('cpu')
    model, model_type = build_model(args.config, 'train')
    params, macs_train = count_parameters(model), count_macs(model, args.input_shape)
    model, _ = build_model(args.config, 'fused')
    params_fused, macs = count_parameters(model), count_macs(model, args.input_shape)
    del model
    n, _, height, width = args.input_shape
    weights = args.model_path or (args.model_dir and 'of ' + args.model_dir) or 'random'
    with tempfile.TemporaryDirectory() as workdir:
        exports = prepare_exports(args, workdir)
        image, input_npy = prepare_input(args, exports[args.graphs[0]], workdir)
        int8_available = {g: int8_files(d) for g, d in exports.items()}
        peaks = run_child(['--child', 'peaks'], args, model_type)
        if 'error' in peaks:
            raise UserError(f"measuring the matrix-multiply peaks failed: {peaks['error']}")
        paths, skipped = plan_paths(args, int8_available)
        rows = []
        for i, (graph, engine, precision, head) in enumerate(paths):
            labels_out = os.path.join(workdir, f'labels_{i}.npy')
            row = run_engine(engine, args, model_type, graph, precision=precision, head=head,
                             model_dir=exports.get(graph), input_npy=input_npy, labels_out=labels_out,
                             model_path=args.model_path)
            row['path'] = path_name(engine, precision, head, graph)
            if os.path.isfile(labels_out):
                row['_labels'] = np.load(labels_out)
            if os.path.isfile(labels_out[:-4] + '.set.npy'):
                row['_set'] = np.load(labels_out[:-4] + '.set.npy')
            rows.append(row)
            print(f"{row['path']} {precision}: " + (f"failed: {row['error']}" if 'error' in row else
                                                      f"{float(np.median(row['times'])):.3f} s"), flush=True)
        reference = next((r for r in rows if r['engine'] == 'onnxruntime' and r['precision'] == 'fp32' and
                          r['head'] == 'runtime' and r['graph'] == 'fused' and '_labels' in r), None)
        reference = reference or next((r for r in rows if r['precision'] == 'fp32' and '_labels' in r), None)
        peak_of = {k: max(v.values()) if v else None for k, v in peaks.items()}
        for row in rows:
            if 'error' in row:
                continue
            median = float(np.median(row['times']))
            row.update(median_s=median, p90_s=percentile(row['times'], 90), fps=n / median,
                       gflops=2 * macs / median / 1e9)
            if row['engine'] != 'torch' and peak_of.get(row['precision']):
                row['percent_of_peak'] = 100 * row['gflops'] / peak_of[row['precision']]
            if reference is not None and '_labels' in row:
                row['agreement_with_fp32'] = agreement(row['_labels'], reference['_labels'])
            if reference is not None and '_set' in row and '_set' in reference:
                row['agreement_images_with_fp32'] = agreement(row['_set'], reference['_set'])
            if args.save_labels and '_labels' in row:
                os.makedirs(args.save_labels, exist_ok=True)
                np.save(os.path.join(args.save_labels, label_file_name(row)), row['_labels'])
                if '_set' in row:
                    np.save(os.path.join(args.save_labels, label_file_name(row)[:-4] + '.set.npy'), row['_set'])
        breakdown = []
        for precision in PRECISIONS:
            done = [r for r in rows if 'median_s' in r and r['precision'] == precision and
                    r['engine'] in ('onnxruntime', 'openvino') and r['graph'] == 'fused']
            if done:
                best = min(done, key=lambda r: r['median_s'])
                stages = run_child(['--child', best['engine'], '--precision', precision, '--head', best['head'],
                                    '--model_dir', exports['fused'], '--image', image, '--breakdown'],
                                   args, model_type)
                breakdown.append({'path': best['path'], 'precision': precision, **stages})
    print(f'\n{model_type}: {params / 1e6:.2f} M parameters as trained ({macs_train / 1e9:.1f} GMACs), '
          f'{params_fused / 1e6:.2f} M fused, {macs / 1e9:.1f} GMACs at '
          f"{'x'.join(map(str, args.input_shape))}; CPU {platform.processor() or platform.machine()}, "
          f'{args.cpu_threads} threads; Paddle {paddle.__version__}; weights '
          f'{weights}')
    for precision in PRECISIONS:
        if peaks.get(precision):
            unit = 'GOP/s' if precision == 'int8' else 'GFLOP/s'
            print(f'{precision} matrix-multiply peak: ' +
                  ', '.join(f'{k} {v:.0f}' for k, v in peaks[precision].items()) + f' {unit}')
    load_end = os.getloadavg()
    print(f'load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f} '
          f'on {os.cpu_count()} CPUs')
    print(format_table(rows, reference))
    for name, precision, why in skipped:
        print(f'skipped: {name} {precision}: {why}')
    if breakdown:
        print('\nWhere the time goes (fastest ONNX path per precision, median s per image):\n')
        print('| path | precision | preprocessing | network | final upsample + argmax | postprocessing | '
              'boundary pixels fully interpolated | the runtime\'s own upsample + argmax |')
        print('| --- | --- | --- | --- | --- | --- | --- | --- |')
        for b in breakdown:
            if 'error' in b:
                print(f"| {b['path']} | {b['precision']} | failed: {b['error']} | | | | | |")
                continue
            own = f"{b['runtime_upsample_argmax']:.3f}" if 'runtime_upsample_argmax' in b else '(this path)'
            print(f"| {b['path']} | {b['precision']} | {b['preprocess']:.3f} | {b['network']:.3f} | "
                  f"{b['upsample_argmax']:.3f} | {b['postprocess']:.3f} | {100 * b['boundary_pixel_share']:.1f}% | "
                  f"{own} |")
    goals = goal_ratios(rows)
    if goals:
        print('\nGoals (issue 15): ' + '; '.join(goals['lines']))
    for row in rows:
        row.pop('_labels', None)
        row.pop('_set', None)
    result = {'model': model_type, 'config': args.config, 'weights': weights, 'model_dir': args.model_dir,
              'input_shape': args.input_shape, 'params': params, 'params_fused': params_fused,
              'gmacs': macs / 1e9, 'gmacs_train_graph': macs_train / 1e9, 'cpu_threads': args.cpu_threads,
              'sgemm_peak_gflops': peaks['fp32'], 'matmul_peaks': peaks, 'paddle': paddle.__version__,
              'reference': reference and reference['path'] + ' ' + reference['precision'],
              'engines': rows, 'skipped': [{'path': a, 'precision': b, 'why': c} for a, b, c in skipped], 'breakdown': breakdown,
              'goals': goals, 'load_average': [load_start[0], load_end[0]],
              'image': args.image or 'mini Cityscapes scene (val 0) drawn at the input size'}
    if args.json:
        from paddleseg_ddr.utils.fileio import atomic_write
        with atomic_write(args.json, 'w') as f:  # never a half-written JSON under its name
            json.dump(result, f, indent=1)
    return result


def label_file_name(row):
    return f"{row['engine']}_{row['precision']}_{row['head']}_{row['graph']}.npy"


# the int8 model files each engine reads (deploy.yaml precisions.int8)
INT8_FILES = {'paddle': {'model'}, 'paddle_onednn': {'model'}, 'onnxruntime': {'onnx_model'},
              'openvino': {'onnx_model', 'openvino_model'}}


def int8_files(model_dir):
    """The file keys of the export's int8 model (empty if it has none)."""
    from paddleseg_ddr.deploy.deploy_config import read_deploy_config
    deploy = read_deploy_config(model_dir, required=())
    if deploy.get('precision', 'fp32') == 'int8':
        return {k for k in INT8_FILES['openvino'] | {'model'} if deploy.get(k)}
    entry = (deploy.get('precisions') or {}).get('int8') or {}
    return {k for k in entry if k != 'info'}


def prepare_exports(args, workdir):
    """{graph: export folder}: --model_dir, or the config's model (random weights or
    --model_path) exported here with its ONNX model, once per graph."""
    if args.model_dir:
        return {'fused': args.model_dir}
    import paddle

    from paddleseg_ddr.deploy import export_inference_model
    from paddleseg_ddr.engine import Builder, load_config
    cfg = load_config(args.config, opts=['model.pretrained=None', 'model.aux_head=False'])
    transforms, meta = cfg.val_dataset_cfg.get('transforms', []), Builder(cfg).dataset_meta()
    if not args.model_path:  # random weights, saved so that the dygraph child runs the same model
        model, _ = build_model(args.config, 'train')
        args.model_path = os.path.join(workdir, 'random_weights.pdparams')
        paddle.save(model.state_dict(), args.model_path)
        del model
    exports = {}
    for graph in args.graphs:
        model, _ = build_model(args.config, graph, model_path=args.model_path)
        exports[graph] = export_inference_model(model, os.path.join(workdir, f'export_{graph}'), transforms,
                                                onnx=True, meta=meta, fuse=False)  # built as asked
        del model
    return exports


def prepare_input(args, model_dir, workdir):
    """(the benchmark image at the input size, as a PNG; the preprocessed batch as .npy)."""
    import cv2
    import numpy as np

    from paddleseg_ddr.deploy.deploy_config import read_deploy_config
    from paddleseg_ddr.deploy.predict import _compose, read_image
    from paddleseg_ddr.errors import UserError
    n, _, height, width = args.input_shape
    image = os.path.join(workdir, 'image.png')
    if args.image:
        bgr, why = read_image(args.image)
        if bgr is None:
            raise UserError(f"--image '{args.image}' {why}.")
        cv2.imwrite(image, cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR))
    else:
        benchmark_image(height, width, image)
    transforms = _compose(read_deploy_config(model_dir, required=())['transforms'])
    bgr = cv2.imread(image)
    x = np.ascontiguousarray(transforms({'img': bgr.astype('float32')})['img'], np.float32)
    if x.shape[1:] != (height, width):
        raise UserError(f"the export's preprocessing turns the {height}x{width} image into {x.shape[1]}x"
                        f'{x.shape[2]}: benchmark it at that size (--input_shape).')
    path = os.path.join(workdir, 'input.npy')
    np.save(path, np.repeat(x[None], n, axis=0))
    return image, path


def goal_ratios(rows):
    """Issue 15's goals from this run's rows: the fp32 fastest path's % of the sgemm peak and
    speed-up over PyTorch eager; the fastest reduced-precision path's speed-up, bf16 agreement."""
    torch_row = next((r for r in rows if r['engine'] == 'torch' and 'median_s' in r), None)
    timed = [r for r in rows if 'median_s' in r and r['engine'] != 'torch' and r['graph'] == 'fused']
    if not timed:
        return {}
    goals, lines = {}, []
    fp32 = [r for r in timed if r['precision'] == 'fp32']
    if fp32:
        best = min(fp32, key=lambda r: r['median_s'])
        goals['fp32_fastest'] = {'path': best['path'], 'median_s': best['median_s'],
                                 'percent_of_sgemm_peak': best.get('percent_of_peak')}
        line = f"fp32 fastest {best['path']} {best['median_s']:.3f} s, {best.get('percent_of_peak', 0):.0f}% of sgemm peak"
        if torch_row:
            goals['fp32_fastest']['speedup_vs_torch'] = torch_row['median_s'] / best['median_s']
            line += f" (goal 80%), {torch_row['median_s'] / best['median_s']:.2f}x PyTorch eager (goal 1.5x)"
        lines.append(line)
    reduced = [r for r in timed if r['precision'] != 'fp32']
    for precision in ('bf16', 'int8'):
        these = [r for r in reduced if r['precision'] == precision]
        if not these:
            continue
        best = min(these, key=lambda r: r['median_s'])
        entry = {'path': best['path'], 'median_s': best['median_s'],
                 'agreement_with_fp32': best.get('agreement_with_fp32')}
        line = f"{precision} fastest {best['path']} {best['median_s']:.3f} s"
        if torch_row:
            entry['speedup_vs_torch'] = torch_row['median_s'] / best['median_s']
            line += f", {entry['speedup_vs_torch']:.2f}x PyTorch eager (goal 3x)"
        if best.get('agreement_images_with_fp32') is not None:
            entry['agreement_images_with_fp32'] = best['agreement_images_with_fp32']
        if best.get('agreement_with_fp32') is not None:
            line += f", label agreement with fp32 {100 * best['agreement_with_fp32']:.2f}%"
            if best.get('agreement_images_with_fp32') is not None:
                line += f" ({100 * best['agreement_images_with_fp32']:.2f}% on --agreement_images)"
            if precision == 'bf16':
                line += ' (goal 99.5%)'
        goals[f'{precision}_fastest'] = entry
        lines.append(line)
    goals['lines'] = lines
    return goals


def format_table(rows, reference):
    lines = ['', '| path | precision | median s | p90 s | FPS | GFLOP/s | % of peak | peak RSS MB | label agreement '
             'with fp32 |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for row in rows:
        if 'error' in row:
            lines.append(f"| {row['path']} | {row['precision']} | failed: {row['error']} | | | | | | |")
            continue
        pct = f"{row['percent_of_peak']:.0f}%" if 'percent_of_peak' in row else '—'
        if 'agreement_with_fp32' in row:
            agree = 'reference' if row is reference else f"{100 * row['agreement_with_fp32']:.2f}%"
            if 'agreement_images_with_fp32' in row and row is not reference:
                agree += f" ({100 * row['agreement_images_with_fp32']:.2f}% on --agreement_images)"
        else:
            agree = '— (random weights, logits at 1/8)' if row['engine'] == 'torch' else '—'
        lines.append(f"| {row['path']} | {row['precision']} | {row['median_s']:.3f} | {row['p90_s']:.3f} | "
                     f"{row['fps']:.2f} | {row['gflops']:.0f} | {pct} | {row['peak_rss_mb']:.0f} | {agree} |")
    return '\n'.join(lines)


def compare_models(args):
    """One row per registered variant: deployed parameters, GMACs of the fused graph, ONNX
    Runtime latency on this machine (each in its own process), published mIoU and GPU FPS."""
    import numpy as np

    from paddleseg_ddr.engine.runtime import setup
    from paddleseg_ddr.models import get_variant, list_variants, reparameterize
    from paddleseg_ddr.models.blocks import RepBlock, RepParallel
    from paddleseg_ddr.models.complexity import count_macs
    setup('cpu')
    names = [v.name for v in list_variants()] if args.models == ['all'] else args.models
    rows = []
    for name in names:
        info = get_variant(name)
        model, model_type = build_model(None, 'train', name)
        # as the papers count: after the family's own structural re-parameterisation (RDRNet's
        # blocks), batch norms still counted, training-only heads not
        params = deployed_parameters(reparameterize(model, only=(RepBlock, RepParallel)))
        model, _ = build_model(None, 'fused', name)
        macs = count_macs(model, args.input_shape)
        del model
        result = run_engine('onnxruntime', args, model_type, 'fused', name)
        median = float(np.median(result['times'])) if 'times' in result else None
        rows.append({'model': name, 'family': info.family, 'params': params, 'gmacs': macs / 1e9, 'onnxruntime_s': median,
                     'error': result.get('error'), 'published': dict(info.published)})
        print(f"{name}: {params / 1e6:.2f} M, {macs / 1e9:.1f} GMACs, ONNX Runtime "
              f"{'%.3f s' % median if median else 'failed: ' + str(result.get('error'))}", flush=True)
    print(f"\n| model | parameters (M) | GMACs at {'x'.join(map(str, args.input_shape[2:]))} | ONNX Runtime s, "
          f'{args.cpu_threads} CPU threads | CPU FPS | published val mIoU | published GPU FPS |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for r in rows:
        pub = r['published']
        latency = f"{r['onnxruntime_s']:.3f}" if r['onnxruntime_s'] else 'failed'
        fps = f"{args.input_shape[0] / r['onnxruntime_s']:.2f}" if r['onnxruntime_s'] else ''
        print(f"| {r['model']} | {r['params'] / 1e6:.2f} | {r['gmacs']:.1f} | {latency} | {fps} | "
              f"{pub.get('cityscapes_val_miou', '')} | {pub.get('gpu_fps', '')} |")
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        from paddleseg_ddr.utils.fileio import atomic_write
        with atomic_write(args.json, 'w') as f:
            json.dump({'input_shape': args.input_shape, 'cpu_threads': args.cpu_threads, 'models': rows}, f, indent=1)
    return rows


def plot(rows, path):
    """Latency on this CPU against published Cityscapes val mIoU, one colour per family."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from paddleseg_ddr.utils.fileio import atomic_path
    fig, ax = plt.subplots(figsize=(7, 4.5))
    families = sorted({r['family'] for r in rows})
    for i, family in enumerate(families):
        pts = [r for r in rows if r['family'] == family and r['onnxruntime_s'] and 'cityscapes_val_miou' in r['published']]
        ax.scatter([r['onnxruntime_s'] for r in pts], [r['published']['cityscapes_val_miou'] for r in pts],
                   label=family, color=plt.cm.tab10(i))
        for r in pts:
            ax.annotate(r['model'], (r['onnxruntime_s'], r['published']['cityscapes_val_miou']), fontsize=7,
                        xytext=(3, 3), textcoords='offset points')
    ax.set_xlabel('ONNX Runtime latency on this CPU, s (1024x2048)')
    ax.set_ylabel('published Cityscapes val mIoU, %')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
