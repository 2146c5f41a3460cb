"""Model size and CPU/GPU speed of one config, per inference engine, in one table:
python tools/benchmark.py --config configs/ddrnet/ddrnet23_slim_cityscapes_1024x1024_120k.yml \
    --input_shape 1 3 1024 2048 [--engines dygraph paddle paddle_onednn onnxruntime torch] \
    [--graphs fused train] [--json out.json]

Parameters and GMACs (convolution multiply-accumulates, the paper's "GFLOPs") come from the
model; every engine runs in its own fresh process (so its peak memory is its own) on the same
random input: warm-up runs, then timed runs; latency median and p90, FPS. Engines:
  dygraph        the Paddle model, eager, full-size label map (forward + argmax)
  paddle         the export (export.py defaults) with Paddle Inference, no oneDNN
  paddle_onednn  the same with oneDNN (as deploy/python/infer.py runs it by default)
  onnxruntime    export.py --format onnx with ONNX Runtime
  torch          the variant's reference implementation (tools/reference, PyTorch eager; its
                 deployed graph where the release has one), its own output (logits at 1/8)
The exported engines output the full-size label map. ``--graphs``: which graph the Paddle
engines run, 'fused' (re-parameterised, as export.py writes it: the default) and/or 'train'
(the training graph, e.g. RDRNet's three-path blocks), to measure what re-parameterisation
gains. Parameters are given for both graphs; GMACs, GFLOP/s and % of peak count the fused
graph's convolutions (the network's work, the papers' figure). The machine's matrix-multiply peak
(sgemm, 2048² and 4096², best of NumPy and ONNX Runtime) is measured too; "% peak" = 2 x MACs /
latency / that peak. Weights are random (speed does not depend on them).
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

ENGINES = ('dygraph', 'paddle', 'paddle_onednn', 'onnxruntime', 'torch')


def build_model(config, graph='train', variant=None):
    """The config's model (or the registered ``variant``'s, 19 classes) without its
    training-only heads, random weights (no pretrained file needed), as built for training or
    re-parameterised (``graph`` 'fused')."""
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


def engine_runner(engine, args, workdir):
    """A no-argument function running one inference with ``engine`` on a random input."""
    import numpy as np
    x = np.random.default_rng(0).normal(size=args.input_shape).astype(np.float32)
    if engine == 'torch':
        import importlib.util

        import torch

        from paddleseg_ddr.models import get_variant
        torch.set_num_threads(args.cpu_threads)
        # the parent passes the model type: building the Paddle model here would count in torch's memory
        reference = get_variant(args.model_type).reference
        if reference is None:
            raise SystemExit(f'no PyTorch reference for {args.model_type}')
        module, name = reference
        spec = importlib.util.spec_from_file_location(module, os.path.join(ROOT, 'tools', 'reference', module + '.py'))
        implementation = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(implementation)
        import inspect
        # the release's own deployed graph where it has one (RDRNet), else its only graph
        deploy = {'deploy': True} if 'deploy' in inspect.signature(implementation.randomized).parameters else {}
        model, tx = implementation.randomized(name, augment=False, **deploy), torch.from_numpy(x)

        def run():
            with torch.no_grad():
                model(tx)
        return run
    from paddleseg_ddr.engine.runtime import setup
    setup('cpu')
    import paddle
    paddle.base.core.set_num_threads(args.cpu_threads)  # dygraph CPU kernels (default: one thread)
    model, _ = build_model(args.config, args.graph, args.variant)
    if engine == 'dygraph':
        tx = paddle.to_tensor(x)

        def run():
            with paddle.no_grad():
                model(tx)[0].argmax(axis=1).numpy()
        return run
    from paddleseg_ddr.deploy import OnnxRuntimePredictor, PaddleInferencePredictor, export_inference_model
    export_dir = os.path.join(workdir, engine)
    export_inference_model(model, export_dir, [], onnx=engine == 'onnxruntime', fuse=False)  # built as asked
    if engine == 'onnxruntime':
        predictor = OnnxRuntimePredictor(export_dir, cpu_threads=args.cpu_threads)
    else:
        predictor = PaddleInferencePredictor(export_dir, 'cpu', enable_mkldnn=engine == 'paddle_onednn',
                                             cpu_threads=args.cpu_threads)
    return lambda: predictor.run(x)


def child(args):
    """Run one engine in this process; print its result as one JSON line."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as workdir:
        run = engine_runner(args.child, args, workdir)
        times = time_runs(run, args.warmup, args.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print('RESULT ' + json.dumps({'engine': args.child, 'graph': args.graph, 'times': times,
                                  'peak_rss_mb': peak / 1024,
                                  'startup_rss_mb': rss_before / 1024}))


def sgemm_peak(threads, sizes=(2048, 4096)):
    """Best measured float32 matrix-multiply speed (GFLOP/s) of NumPy's BLAS and of ONNX
    Runtime (MLAS), over square sizes, best of 5 runs each."""
    import numpy as np
    results = {}
    for n in sizes:
        a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (1, 2))
        speeds = {'numpy': 2 * n ** 3 / min(time_runs(lambda: a @ b, 1, 5)) / 1e9}
        try:
            import onnxruntime as ort
            from onnx import TensorProto, helper
            graph = helper.make_graph([helper.make_node('MatMul', ['a', 'b'], ['c'])], 'sgemm',
                                      [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in 'ab'],
                                      [helper.make_tensor_value_info('c', TensorProto.FLOAT, [n, n])])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
            run = lambda: session.run(None, {'a': a, 'b': b})  # noqa: E731
            speeds['onnxruntime'] = 2 * n ** 3 / min(time_runs(run, 1, 5)) / 1e9
        except ImportError:
            pass
        for k, v in speeds.items():
            results[k] = max(results.get(k, 0.0), v)
    return results


def run_engine(engine, args, model_type, graph='fused', variant=None):
    source = ['--variant', variant] if variant else ['--config', args.config]
    cmd = [sys.executable, os.path.abspath(__file__), *source, '--child', engine,
           '--model_type', model_type, '--graph', graph,
           '--input_shape', *map(str, args.input_shape), '--warmup', str(args.warmup),
           '--repeats', str(args.repeats), '--cpu_threads', str(args.cpu_threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.cpu_threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    reason = (proc.stderr.strip().splitlines() or ['no output'])[-1]
    return {'engine': engine, 'graph': graph, 'error': reason[:200]}


def percentile(values, q):
    import numpy as np
    return float(np.percentile(values, q))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=None, help='A model config (one model, every engine).')
    p.add_argument('--models', nargs='+', default=None, metavar='VARIANT',
                   help="Registered variants ('all' for every one): one summary table of size, cost, "
                        'ONNX Runtime latency and published figures, and --plot.')
    p.add_argument('--plot', default=None, help='With --models: latency vs published mIoU, as a PNG.')
    p.add_argument('--variant', default=None, help=argparse.SUPPRESS)
    p.add_argument('--input_shape', nargs=4, type=int, default=[1, 3, 1024, 2048], metavar=('N', 'C', 'H', 'W'))
    p.add_argument('--engines', nargs='+', default=list(ENGINES), choices=ENGINES)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=10)
    p.add_argument('--cpu_threads', type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument('--graphs', nargs='+', default=['fused'], choices=['fused', 'train'],
                   help='Graphs the Paddle engines run: fused (re-parameterised, as exported) and/or train.')
    p.add_argument('--json', default=None, help='Also write the results here.')
    p.add_argument('--graph', default='fused', help=argparse.SUPPRESS)
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    p.add_argument('--model_type', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.models:
        return compare_models(args)
    if not args.config:
        p.error('give --config (one model) or --models (a comparison table)')

    from paddleseg_ddr.engine.runtime import setup
    from paddleseg_ddr.models.complexity import count_macs, count_parameters
    setup('cpu')
    model, model_type = build_model(args.config, 'train')
    params, macs_train = count_parameters(model), count_macs(model, args.input_shape)
    model, _ = build_model(args.config, 'fused')
    params_fused, macs = count_parameters(model), count_macs(model, args.input_shape)
    del model
    peaks = sgemm_peak(args.cpu_threads)
    peak = max(peaks.values())
    rows = [run_engine(engine, args, model_type, graph) for graph in args.graphs for engine in args.engines
            if graph == 'fused' or engine != 'torch']  # the reference runs its own graph once
    import numpy as np
    import paddle
    n = args.input_shape[0]
    print(f'\n{model_type}: {params / 1e6:.2f} M parameters as trained ({macs_train / 1e9:.1f} GMACs), '
          f'{params_fused / 1e6:.2f} M fused, {macs / 1e9:.1f} GMACs at '
          f"{'x'.join(map(str, args.input_shape))}; CPU {platform.processor() or platform.machine()}, "
          f'{args.cpu_threads} threads; Paddle {paddle.__version__}')
    print('sgemm peak: ' + ', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in peaks.items()) + '\n')
    print("| engine | median s | p90 s | FPS | GFLOP/s | % of sgemm peak | peak RSS MB |")
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for row in rows:
        if row.get('graph') == 'train':
            row['engine'] += ' (training graph)'
        if 'error' in row:
            print(f"| {row['engine']} | failed: {row['error']} | | | | | |")
            continue
        median = float(np.median(row['times']))
        row.update(median_s=median, p90_s=percentile(row['times'], 90), fps=n / median,
                   gflops=2 * macs / median / 1e9)
        row['percent_of_peak'] = 100 * row['gflops'] / peak
        print(f"| {row['engine']} | {median:.3f} | {row['p90_s']:.3f} | {row['fps']:.2f} | {row['gflops']:.0f} | "
              f"{row['percent_of_peak']:.0f}% | {row['peak_rss_mb']:.0f} |")
    result = {'model': model_type, 'config': args.config, 'input_shape': args.input_shape, 'params': params,
              'params_fused': params_fused, 'gmacs': macs / 1e9, 'gmacs_train_graph': macs_train / 1e9,
              'cpu_threads': args.cpu_threads, 'sgemm_peak_gflops': peaks,
              'paddle': paddle.__version__, 'engines': rows}
    if args.json:
        from paddleseg_ddr.utils.fileio import atomic_write
        with atomic_write(args.json, 'w') as f:  # never a half-written JSON under its name
            json.dump(result, f, indent=1)
    return result


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
