"""Entry points behind train.py and val.py; flags follow PaddleSeg's tools."""
import argparse
import os
import sys
import time

from paddleseg.utils import logger

from .errors import UserError


def _common(parser):
    parser.add_argument('--config', required=True, help='YAML config file.')
    parser.add_argument('--device', default=None, help="'cpu', 'gpu' or 'gpu:N' (default: gpu if available).")
    parser.add_argument('--num_workers', type=int, default=0, help='Data-loading worker processes.')
    parser.add_argument('--opts', nargs='+', default=None, metavar='KEY=VALUE',
                        help='Override config entries, e.g. --opts batch_size=2 model.aux_head=False')


def _eval_flags(parser):
    parser.add_argument('--aug_eval', action='store_true', default=None, help='Multi-scale and/or flip evaluation.')
    parser.add_argument('--scales', nargs='+', type=float, default=None, help='Scales for --aug_eval.')
    parser.add_argument('--flip_horizontal', action='store_true', default=None)
    parser.add_argument('--flip_vertical', action='store_true', default=None)
    parser.add_argument('--is_slide', action='store_true', default=None, help='Sliding-window evaluation.')
    parser.add_argument('--crop_size', nargs=2, type=int, default=None, metavar=('W', 'H'))
    parser.add_argument('--stride', nargs=2, type=int, default=None, metavar=('W', 'H'))


def _eval_options(builder, args):
    options = builder.eval_options(aug_eval=args.aug_eval, scales=args.scales, flip_horizontal=args.flip_horizontal,
                                   flip_vertical=args.flip_vertical, is_slide=args.is_slide,
                                   crop_size=args.crop_size, stride=args.stride)
    if options.get('is_slide') and not (options.get('crop_size') and options.get('stride')):
        raise UserError('--is_slide needs --crop_size W H and --stride W H (or test_config entries).')
    _check_eval_values(options, args)
    from .engine.inference import check_infer_options
    check_infer_options(options.get('aug_eval'), **options)
    if options.get('scales') is not None and not options.get('aug_eval'):
        logger.warning('--scales has no effect without --aug_eval.')
    options['num_workers'] = args.num_workers
    return options


def _show(name, value, args):
    """How the user wrote an evaluation option: ``--stride 0 0`` or ``test_config.stride: 0``."""
    if getattr(args, name, None) is not None:
        items = value if isinstance(value, (list, tuple)) else [value]
        return f"--{name} {' '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in items)}"
    return f'test_config.{name}: {value!r}'


def _check_eval_values(options, args):
    """Evaluation options that would fail (or leave pixels unpredicted) only once evaluating."""
    def number(v, whole):
        return (isinstance(v, int) or (not whole and isinstance(v, float))) and not isinstance(v, bool) and v > 0

    if options.get('aug_eval') and options.get('scales') is not None:
        scales = options['scales']
        items = scales if isinstance(scales, (list, tuple)) else [scales]
        if not items or not all(number(v, False) for v in items):
            raise UserError(f"{_show('scales', scales, args)}: the evaluation scales must be positive numbers "
                            '(e.g. --scales 0.75 1.0 1.25).')
    if not options.get('is_slide'):
        return
    pairs = {}
    for name in ('crop_size', 'stride'):
        value = options[name]
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(number(v, True) for v in value)):
            raise UserError(f"{_show(name, value, args)}: the sliding-window {name} must be two positive whole "
                            f'numbers, width and height (e.g. --{name} 1024 512).')
        pairs[name] = value
    if any(s > c for s, c in zip(pairs['stride'], pairs['crop_size'])):
        raise UserError(f"{_show('stride', pairs['stride'], args)} is larger than {_show('crop_size', pairs['crop_size'], args)}: "
                        'windows that far apart leave pixels unpredicted. Give a stride no larger than the crop '
                        '(e.g. two thirds of it).')


def train_parser():
    p = argparse.ArgumentParser(description='Train a segmentation model on Paddle 3.x.')
    _common(p)
    p.add_argument('--iters', type=int, default=None, help='Total iterations (overrides the config).')
    p.add_argument('--batch_size', type=int, default=None, help='Images per card (overrides the config).')
    p.add_argument('--learning_rate', type=float, default=None, help='Initial learning rate (overrides the config).')
    p.add_argument('--save_dir', default='output', help='Where checkpoints and logs go.')
    p.add_argument('--save_interval', type=int, default=1000, help='Checkpoint (and evaluate) every N iterations.')
    p.add_argument('--log_iters', type=int, default=10, help='Log every N iterations.')
    p.add_argument('--do_eval', action='store_true', help='Evaluate at every checkpoint and keep best_model/.')
    p.add_argument('--use_vdl', action='store_true', help='Write VisualDL scalars to --save_dir.')
    p.add_argument('--resume_model', default=None, help='Checkpoint directory to resume from (save_dir/iter_N).')
    p.add_argument('--keep_checkpoint_max', type=int, default=5, help='Most recent checkpoints to keep.')
    p.add_argument('--seed', type=int, default=None, help='Random seed.')
    p.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'], help='fp16 = AMP (GPU only).')
    p.add_argument('--amp_level', default='O1', choices=['O1'], help='AMP level.')
    _eval_flags(p)
    return p


ENGINE_HELP = ('Engine running the export: paddle (Paddle Inference), onnxruntime (needs model.onnx: export.py '
               '--format onnx) or openvino.')
PRECISION_HELP = ('fp32, bf16 (the fp32 model in bf16 arithmetic: openvino, or paddle with oneDNN; needs a CPU with '
                  'AVX-512 BF16/AMX) or int8 (the int8 model the export holds: tools/quantize.py).')


def _engine_flags(parser, default_engine='paddle'):
    from .deploy.deploy_config import RUN_PRECISIONS
    from .deploy.engines import ENGINES
    if default_engine is not None:
        parser.add_argument('--engine', default=default_engine, choices=ENGINES, help=ENGINE_HELP)
    parser.add_argument('--precision', default='fp32', choices=RUN_PRECISIONS, help=PRECISION_HELP)


def val_parser():
    p = argparse.ArgumentParser(description='Evaluate a segmentation model (a checkpoint or an export) on the '
                                            "config's val_dataset.")
    _common(p)
    p.add_argument('--model_path', default=None, help='Trained weights (.pdparams or .safetensors) or a checkpoint directory.')
    p.add_argument('--model_dir', default=None,
                   help="An export (export.py --save_dir) to evaluate instead, as deployed: whole images, batch 1, "
                        "with --engine and --precision; its deploy.yaml's preprocessing is used.")
    _engine_flags(p)
    p.add_argument('--cpu_threads', type=int, default=None, help='With --model_dir: CPU threads (default: all cores).')
    _eval_flags(p)
    p.add_argument('--no_reparam', action='store_true',
                   help='Run the training graph instead of the re-parameterised (fused) one, to check them against each other.')
    return p


def export_parser():
    p = argparse.ArgumentParser(description='Export a trained model as a static inference graph.')
    p.add_argument('--config', required=True, help='YAML config the model was trained with.')
    p.add_argument('--model_path', default=None, help='Trained weights (.pdparams or .safetensors); omit to export initial weights.')
    p.add_argument('--save_dir', default='output/inference',
                   help='Where model.json, model.pdiparams, deploy.yaml go; other files in it are kept.')
    p.add_argument('--input_shape', nargs=4, type=int, default=None, metavar=('N', 'C', 'H', 'W'),
                   help='Fix the input shape (default: dynamic batch, height and width).')
    p.add_argument('--output_op', default='argmax', choices=['argmax', 'softmax', 'none'])
    p.add_argument('--format', default='paddle', choices=['paddle', 'onnx'],
                   help='onnx: also write model.onnx (paddle2onnx, opset 13) for ONNX Runtime.')
    p.add_argument('--opts', nargs='+', default=None, metavar='KEY=VALUE')
    p.add_argument('--no_reparam', action='store_true',
                   help='Run the training graph instead of the re-parameterised (fused) one, to check them against each other.')
    return p


def predict_parser():
    p = argparse.ArgumentParser(description='Predict label maps for images with a checkpoint or an exported model.')
    p.add_argument('--config', default=None, help='Training config (with --model_path) or an exported deploy.yaml.')
    p.add_argument('--model_path', default=None, help='Trained weights for dygraph prediction.')
    p.add_argument('--model_dir', default=None, help='Directory written by export.py (run with --engine).')
    _engine_flags(p)
    p.add_argument('--cpu_threads', type=int, default=None, help='Exported model: CPU threads (default: all cores).')
    p.add_argument('--image_path', required=True, help='An image, a folder (recursive) or a list file.')
    p.add_argument('--save_dir', default='output/result')
    p.add_argument('--save_label_ids', action='store_true', help="Write the dataset's official label ids (e.g. Cityscapes ids) instead of training indices.")
    p.add_argument('--enable_mkldnn', type=str2bool, nargs='?', const=True, default=True,
                   help='Exported model on CPU: use oneDNN (default True).')
    p.add_argument('--device', default=None)
    p.add_argument('--aug_pred', action='store_true', help='Multi-scale and/or flip prediction (dygraph).')
    p.add_argument('--scales', nargs='+', type=float, default=[1.0])
    p.add_argument('--flip_horizontal', action='store_true')
    p.add_argument('--flip_vertical', action='store_true')
    p.add_argument('--is_slide', action='store_true')
    p.add_argument('--crop_size', nargs=2, type=int, default=None, metavar=('W', 'H'))
    p.add_argument('--stride', nargs=2, type=int, default=None, metavar=('W', 'H'))
    p.add_argument('--opts', nargs='+', default=None, metavar='KEY=VALUE')
    p.add_argument('--no_reparam', action='store_true',
                   help='Run the training graph instead of the re-parameterised (fused) one, to check them against each other.')
    return p


def str2bool(value):
    """PaddleSeg's deploy scripts take booleans as words: --enable_mkldnn True."""
    if value.lower() in ('true', 't', 'yes', 'y', '1'):
        return True
    if value.lower() in ('false', 'f', 'no', 'n', '0'):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got '{value}'")


def _infer_common(parser):
    parser.add_argument('--image_path', required=True, help='An image, a folder (recursive) or a list file.')
    parser.add_argument('--save_dir', default='output/infer', help='Where label/, pseudo_color_prediction/ go.')
    parser.add_argument('--batch_size', type=int, default=1, help='Images per run (same-size images are batched).')
    parser.add_argument('--cpu_threads', type=int, default=None, help='CPU threads (default: all cores).')
    parser.add_argument('--save_label_ids', action='store_true', help="Write the dataset's official label ids (e.g. Cityscapes ids) instead of training indices.")
    parser.add_argument('--benchmark', type=str2bool, default=False,
                        help='Warm up, then print preprocess / inference / postprocess times per image.')
    parser.add_argument('--save_log_path', default=None, help='With --benchmark: also append the timings here.')
    parser.add_argument('--model_name', default=None, help='Name shown in the benchmark line (TIPC).')


def infer_parser():
    p = argparse.ArgumentParser(description='Run an exported model with Paddle Inference (deploy/python/infer.py).')
    p.add_argument('--config', required=True, help="The export's deploy.yaml (or its directory).")
    _infer_common(p)
    p.add_argument('--device', default='cpu', choices=['cpu', 'gpu'])
    p.add_argument('--gpu_id', type=int, default=0)
    p.add_argument('--enable_mkldnn', type=str2bool, default=True,
                   help='CPU: use oneDNN (default True: the fastest Paddle Inference path on the CPU).')
    p.add_argument('--use_trt', type=str2bool, default=False, help='GPU: run subgraphs with TensorRT.')
    p.add_argument('--precision', default='fp32', choices=['fp32', 'fp16', 'bf16', 'int8'],
                   help='CPU: fp32, bf16 (oneDNN bf16 kernels) or int8 (the int8 Paddle graph the export holds); '
                        'GPU: fp16 (mixed precision or TensorRT), int8 (TensorRT with calibration).')
    p.add_argument('--min_subgraph_size', type=int, default=3, help='TensorRT: smallest subgraph to convert.')
    return p


def onnx_infer_parser():
    p = argparse.ArgumentParser(description='Run an ONNX export with ONNX Runtime (deploy/onnx/infer.py).')
    p.add_argument('--model', required=True, help='model.onnx (with deploy.yaml beside it) or the export directory.')
    _infer_common(p)
    _engine_flags(p, default_engine=None)
    return p


def openvino_infer_parser():
    p = argparse.ArgumentParser(description='Run an export with OpenVINO on the CPU (deploy/openvino/infer.py).')
    p.add_argument('--model', required=True,
                   help='The export directory, or its model.onnx / OpenVINO .xml (with deploy.yaml beside it).')
    _infer_common(p)
    _engine_flags(p, default_engine=None)
    return p


def _run_inference(predictor, args):
    from .deploy import predict_files
    from .deploy.predict import list_images, read_bgr

    if args.benchmark:  # warm-up runs (allocation, oneDNN kernel creation) are not timed
        first = next((b for b in (read_bgr(f) for f, _ in list_images(args.image_path)) if b is not None), None)
        if first is not None:
            for _ in range(2):
                predictor.predict_batch([first] * args.batch_size)
            predictor.times = dict.fromkeys(predictor.times, 0.0)
            predictor.images = 0
    done, failed = predict_files(predictor, args.image_path, args.save_dir, args.save_label_ids,
                                 batch_size=args.batch_size)
    if args.benchmark:
        name = f'{args.model_name} ' if args.model_name else ''
        line = f'Benchmark {name}({done} images, batch {args.batch_size}): {predictor.timing_report()}'
        logger.info(line)
        if args.save_log_path:
            os.makedirs(os.path.dirname(os.path.abspath(args.save_log_path)), exist_ok=True)
            with open(args.save_log_path, 'a') as f:
                f.write(line + '\n')
    return _fail_if_unread(done, failed)


def _fail_if_unread(done, failed):
    """After predict_files: a UserError if some images could not be read, else the count."""
    if failed:
        from .deploy.predict import unread_message
        raise UserError(unread_message(failed, done))
    return done


def infer_main(argv=None):
    from .deploy.paddle_inference import PaddleInferencePredictor

    args = infer_parser().parse_args(argv)
    _positive(batch_size=args.batch_size, cpu_threads=args.cpu_threads)
    # On the CPU --precision picks the export's model (fp32, int8) or bf16 arithmetic; on the
    # GPU it is Paddle Inference's GPU/TensorRT precision.
    cpu_precision = args.device == 'cpu' and args.precision != 'fp16'
    if args.device == 'gpu' and args.precision == 'bf16':
        raise UserError('--precision bf16 is a CPU mode (oneDNN); on the GPU use --precision fp16.')
    predictor = PaddleInferencePredictor(args.config, device=args.device, enable_mkldnn=args.enable_mkldnn,
                                         cpu_threads=args.cpu_threads, use_trt=args.use_trt,
                                         precision='fp32' if cpu_precision else args.precision,
                                         run_precision=args.precision if cpu_precision else 'fp32',
                                         gpu_id=args.gpu_id, min_subgraph_size=args.min_subgraph_size,
                                         batch_size=args.batch_size)
    return _run_inference(predictor, args)


def onnx_infer_main(argv=None):
    from .deploy.onnx_runtime import OnnxRuntimePredictor

    args = onnx_infer_parser().parse_args(argv)
    _positive(batch_size=args.batch_size, cpu_threads=args.cpu_threads)
    return _run_inference(OnnxRuntimePredictor(args.model, args.cpu_threads, precision=args.precision), args)


def openvino_infer_main(argv=None):
    from .deploy.openvino_runtime import OpenVinoPredictor

    args = openvino_infer_parser().parse_args(argv)
    _positive(batch_size=args.batch_size, cpu_threads=args.cpu_threads)
    predictor = OpenVinoPredictor(args.model, cpu_threads=args.cpu_threads, precision=args.precision)
    try:
        return _run_inference(predictor, args)
    finally:
        predictor.close()


def _positive(**values):
    for name, value in values.items():
        if value is not None and value <= 0:
            raise UserError(f'--{name} must be positive, got {value}.')


def _num_workers(value):
    if value < 0:
        raise UserError(f'--num_workers must be 0 (data read in the main process) or more, got {value}.')


def train_main(argv=None):
    from .engine import Builder, load_config, train
    from .engine.runtime import setup
    from .utils.lock import check_run_dir

    args = train_parser().parse_args(argv)
    _positive(iters=args.iters, batch_size=args.batch_size, learning_rate=args.learning_rate,
              save_interval=args.save_interval, log_iters=args.log_iters)
    _num_workers(args.num_workers)
    seed = 0 if args.seed is None else args.seed
    device, nranks, _ = setup(args.device, seed)
    cfg = load_config(args.config, args.learning_rate, args.batch_size, args.iters, args.opts)
    if cfg.iters is None or cfg.batch_size is None:
        raise UserError(f"config '{args.config}' gives no {'iters' if cfg.iters is None else 'batch_size'}: "
                        'add it to the config (or pass --iters N / --batch_size N).')
    # Checked at start, before anything is built or written: the run folder and the
    # evaluation options (train() locks the folder for the run).
    check_run_dir(args.save_dir)
    builder = Builder(cfg)
    eval_kwargs = _eval_options(builder, args) if args.do_eval else None
    logger.info(f'device {device}, {nranks} process(es), {cfg.batch_size} image(s) per process')
    val_dataset = builder.val_dataset if args.do_eval else None
    start = time.time()
    summary = train(builder.model, builder.train_dataset, builder.optimizer, builder.loss, cfg.iters,
                    cfg.batch_size, val_dataset=val_dataset, save_dir=args.save_dir,
                    save_interval=args.save_interval, log_iters=args.log_iters, do_eval=args.do_eval,
                    use_vdl=args.use_vdl, resume_model=args.resume_model,
                    keep_checkpoint_max=args.keep_checkpoint_max, num_workers=args.num_workers,
                    precision=args.precision, amp_level=args.amp_level, seed=seed,
                    eval_kwargs=eval_kwargs)
    logger.info(f"Training done: {summary['iters_run']} iterations in {time.time() - start:.1f}s.")
    return summary


def val_main(argv=None):
    from .engine import Builder, evaluate, load_config
    from .engine.runtime import setup

    args = val_parser().parse_args(argv)
    _num_workers(args.num_workers)
    _positive(cpu_threads=args.cpu_threads)
    if bool(args.model_path) == bool(args.model_dir):
        raise UserError('give --model_path (a checkpoint, evaluated in dygraph) or --model_dir (an export, evaluated '
                        'with --engine and --precision), not ' + ('both.' if args.model_path else 'neither.'))
    if args.model_dir:
        return _val_export(args)
    if args.engine != 'paddle' or args.precision != 'fp32':
        raise UserError('--engine and --precision choose how an export runs: give the export with --model_dir '
                        '(export.py --save_dir), or leave them out to evaluate --model_path in dygraph.')
    setup(args.device)
    cfg = load_config(args.config, opts=args.opts)
    builder = Builder(cfg)
    options = _eval_options(builder, args)
    model = _trained_model(builder.model, args.model_path, not args.no_reparam)
    return evaluate(model, builder.val_dataset, **options)


def _val_export(args):
    """val.py --model_dir: the config's val_dataset (its images and labels), fed through the
    export's own preprocessing (deploy.yaml's transforms, which replace the config's val
    transforms: the export was made for them), scored with the same metrics and table."""
    from .deploy.deploy_config import deploy_meta, read_deploy_config
    from .deploy.engines import check_engine, create_runner
    from .engine import Builder, evaluate, load_config
    from .engine.runtime import setup

    check_engine(args.engine, args.precision)
    if args.no_reparam:
        raise UserError('--no_reparam chooses the dygraph graph of a checkpoint; an export is already one graph: '
                        'leave it out with --model_dir.')
    setup('cpu')
    deploy = read_deploy_config(args.model_dir, required=())
    cfg = load_config(args.config, opts=args.opts)
    section = cfg.dic.get('val_dataset')
    if not section:
        raise UserError(f"config '{args.config}' has no val_dataset: val.py --model_dir scores the export on it; "
                        'give the training config of the model (or one naming its dataset).')
    if section.get('transforms') != deploy['transforms']:
        logger.info("Using the export's preprocessing (deploy.yaml transforms) instead of the config's val "
                    'transforms: the export was made for it.')
    section['transforms'] = deploy['transforms']
    builder = Builder(cfg)
    options = _eval_options(builder, args)
    options.pop('scales', None)
    dataset = builder.val_dataset
    meta = deploy_meta(deploy)
    if meta is not None and meta.num_classes != dataset.num_classes:
        raise UserError(f"the export '{args.model_dir}' predicts {meta.num_classes} classes but the config's "
                        f"val_dataset has {dataset.num_classes}: give the config the model was trained with.")
    runner = create_runner(args.model_dir, args.engine, args.precision, cpu_threads=args.cpu_threads)
    try:
        return evaluate(runner, dataset, **options)
    finally:
        getattr(runner, 'close', lambda: None)()


def export_main(argv=None):
    from .deploy import export_inference_model
    from .engine import Builder, load_config
    from .engine.runtime import setup

    args = export_parser().parse_args(argv)
    setup('cpu')
    cfg = load_config(args.config, opts=args.opts)
    builder = Builder(cfg)
    if not args.model_path:
        logger.warning('No --model_path: exporting the initial (untrained) weights.')
    model = _trained_model(builder.model, args.model_path, not args.no_reparam)
    transforms = cfg.val_dataset_cfg.get('transforms', [])
    export_inference_model(model, args.save_dir, transforms, args.input_shape, args.output_op,
                           onnx=args.format == 'onnx', meta=builder.dataset_meta(), fuse=not args.no_reparam)
    files = 'model.json, model.pdiparams, deploy.yaml' + (', model.onnx' if args.format == 'onnx' else '')
    logger.info(f"Exported to '{args.save_dir}' ({files}).")
    return args.save_dir


def predict_main(argv=None):
    from .deploy import DygraphPredictor, PaddleInferencePredictor, predict_files
    from .engine import Builder, load_config
    from .engine.runtime import setup

    args = predict_parser().parse_args(argv)
    device, _, _ = setup(args.device)
    model_dir = args.model_dir
    if model_dir is None and args.config and os.path.basename(args.config) == 'deploy.yaml':
        model_dir = os.path.dirname(os.path.abspath(args.config))
    _positive(cpu_threads=args.cpu_threads)
    if model_dir:
        from .deploy.engines import check_engine, create_runner
        check_engine(args.engine, args.precision)
        if args.engine == 'paddle':
            predictor = PaddleInferencePredictor(model_dir, device='gpu' if device.startswith('gpu') else 'cpu',
                                                 enable_mkldnn=args.enable_mkldnn, cpu_threads=args.cpu_threads,
                                                 run_precision=args.precision)
        else:
            predictor = create_runner(model_dir, args.engine, args.precision, cpu_threads=args.cpu_threads)
    else:
        if args.engine != 'paddle' or args.precision != 'fp32':
            raise UserError('--engine and --precision choose how an export runs: give the export with --model_dir '
                            '(or --config <export>/deploy.yaml), or leave them out for a checkpoint.')
        if not (args.config and args.model_path):
            raise UserError('give --config and --model_path (a checkpoint), or --model_dir (an export).')
        from .engine.inference import check_infer_options
        check_infer_options(args.aug_pred, args.scales, args.is_slide, args.crop_size, args.stride)
        cfg = load_config(args.config, opts=args.opts)
        builder = Builder(cfg)
        model = _trained_model(builder.model, args.model_path, not args.no_reparam)
        options = {'is_slide': args.is_slide, 'crop_size': args.crop_size, 'stride': args.stride}
        if args.aug_pred:
            options.update(aug_pred=True, scales=args.scales, flip_horizontal=args.flip_horizontal,
                           flip_vertical=args.flip_vertical)
        predictor = DygraphPredictor(model, cfg.val_dataset_cfg.get('transforms', []), builder.dataset_meta(),
                                     **options)
    return _fail_if_unread(*predict_files(predictor, args.image_path, args.save_dir, args.save_label_ids))


def _trained_model(model, model_path, fuse=True):
    """``model`` with the weights of ``model_path`` (of its training or its fused graph),
    re-parameterised for inference unless ``fuse`` is False (``--no_reparam``, to check the
    training graph): val, predict and export run the fused graph by default."""
    from .models import reparameterize
    from .utils.weights import load_model_weights
    if model_path:
        load_model_weights(model, model_path, to_fused=reparameterize)
    if getattr(model, 'reparameterized', False) and not fuse:
        logger.warning(f"--no_reparam: '{model_path}' holds the fused graph; it runs fused.")
    return reparameterize(model) if fuse else model


def run(main):
    """Run an entry point; a ``UserError`` ends with its message and exit code 2."""
    try:
        main()
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
