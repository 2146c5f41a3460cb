"""Convert released PyTorch checkpoints (DDRNet: Cityscapes or ImageNet; RDRNet: Cityscapes; PIDNet) and
PaddleSeg's own weights (DDRNet_23, PIDNet) to Paddle weights of these models.

    python tools/convert_weights.py --src best_val_smaller.pth --model ddrnet23_slim --kind cityscapes \
        --dst pretrained/ddrnet23_slim_cityscapes.pdparams
    python tools/convert_weights.py --src DDRNet23s_imagenet.pth --model ddrnet23_slim --kind imagenet \
        --dst pretrained/ddrnet23_slim_imagenet.pdparams
    python tools/convert_weights.py --src model.pdparams --from paddleseg_ddrnet23 --dst pretrained/ddrnet23_cityscapes_paddleseg.pdparams
    python tools/convert_weights.py --src pidnet_small_2xb6-120k_1024x1024-cityscapes.pdparams --from paddleseg_pidnet \
        --model pidnet_s --dst pretrained/pidnet_s_cityscapes_paddleseg.pdparams
    python tools/convert_weights.py --src rdrnet-s-simple_mIoU-76.7.pth --model rdrnet_s_simple --kind cityscapes \
        --dst pretrained/rdrnet_s_simple_cityscapes.pdparams

PyTorch is not needed: the .pth is read directly (zip or legacy format), and no file is
unpickled with code-running pickle (see README, "Loading files from others"). A --dst ending
in .safetensors writes the weights as safetensors (data only) instead of .pdparams.
"""
import argparse
import importlib
import os

from paddleseg_ddr.cli import run
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.utils.fileio import save_paddle
from paddleseg_ddr.utils.weights import save_safetensors

# --from sources in PaddleSeg's own layouts (.pdparams / .safetensors): what they are, the models
# and kinds of weights each converts to (the first model is the default when there is one), and
# its converter (module, function), imported on use.
PADDLESEG_SOURCES = {
    'paddleseg_ddrnet23': dict(
        what="PaddleSeg's DDRNet_23", models=('ddrnet23',), kinds=('cityscapes',),
        convert=('paddleseg_ddr.models.ddrnet_checkpoints', 'convert_paddleseg')),
    'paddleseg_pidnet': dict(
        what="PaddleSeg 2.9.1's PIDNet",
        models=('pidnet_s', 'pidnet_m', 'pidnet_l'), kinds=('cityscapes', 'imagenet'),
        convert=('paddleseg_ddr.models.pidnet_checkpoints', 'convert_paddleseg')),
}


def _paddleseg_converter(args):
    """The converter of a PaddleSeg source; fills in or checks ``args.model`` and ``args.kind``."""
    source = PADDLESEG_SOURCES[args.source]
    models, kinds = source['models'], source['kinds']
    if args.model is None and len(models) == 1:
        args.model = models[0]
    if args.model not in models:
        raise UserError(f"--from {args.source} ({source['what']}) converts to --model " + ' | '.join(models)
                        + (f', not {args.model}.' if args.model else ': pass one.'))
    args.kind = args.kind or kinds[0]
    if args.kind not in kinds:
        raise UserError(f"--from {args.source} converts --kind " + ' | '.join(kinds) + f', not {args.kind}.')
    module, function = source['convert']
    return getattr(importlib.import_module(module), function)


def main(argv=None):

    from paddleseg_ddr.models import create_model, get_variant, imagenet_classifier, list_variants

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--src', required=True,
                   help='Official .pth checkpoint (or a PaddleSeg .pdparams / .safetensors with --from).')
    p.add_argument('--from', dest='source', default='official', choices=['official', *PADDLESEG_SOURCES],
                   help="official: the model's own release (.pth); "
                        + '; '.join(f"{name}: {s['what']} weights (--model {'|'.join(s['models'])})"
                                    for name, s in PADDLESEG_SOURCES.items()) + '.')
    convertible = [v.name for v in list_variants() if v.convert is not None]  # variants with release converters
    p.add_argument('--model', default=None, choices=convertible,
                   help='Required for --from official and for the --from sources of several models.')
    p.add_argument('--kind', default=None, choices=['cityscapes', 'imagenet', 'imagenet_classifier'],
                   help='cityscapes (default): a trained segmentation model; imagenet: initial weights for '
                        'segmentation (the `pretrained:` of the configs); imagenet_classifier: the ImageNet '
                        'network itself.')
    p.add_argument('--num_classes', type=int, default=None, help='Default: 19 (1000 for imagenet_classifier).')
    p.add_argument('--dst', required=True, help='Output .pdparams (or .safetensors).')
    p.add_argument('--verbose', action='store_true', help='List every loaded, left and dropped key.')
    args = p.parse_args(argv)
    if args.source in PADDLESEG_SOURCES:
        convert = _paddleseg_converter(args)
    elif args.model is None:
        raise UserError('--model is required: one of ' + ', '.join(convertible) + '.')
    else:
        args.kind = args.kind or 'cityscapes'
        convert = get_variant(args.model).convert
    variant = get_variant(args.model)
    if args.kind == 'imagenet_classifier' and variant.family != 'DDRNet':
        raise UserError(f'--kind imagenet_classifier builds the DDRNet ImageNet network; for {variant.family} use '
                        '--kind imagenet (initial weights of the segmentation model) or cityscapes.')
    if args.kind == 'imagenet_classifier':
        model = imagenet_classifier(args.model, args.num_classes or 1000)
    else:
        model = create_model(args.model, args.num_classes or 19, aux_head=True)
    report = convert(model, args.src)
    training_only = tuple(getattr(model, 'TRAIN_ONLY_PREFIXES', ()))
    missing = [k for k in report['left_at_init'] if not k.startswith(training_only)]
    if args.kind == 'cityscapes' and missing:
        raise UserError(f"'{args.src}' lacks segmentation layers ({', '.join(missing[:5])} ...): "
                        'is it an ImageNet checkpoint? Use --kind imagenet.')
    state = model.state_dict()
    if training_only and not any(k.startswith(training_only) for k in report['loaded']):
        state = {k: v for k, v in state.items() if not k.startswith(training_only)}
    if getattr(model, 'reparameterized', False):
        print(f"'{args.src}' holds the deployed (fused) graph: the weights evaluate, predict and export, "
              'but cannot train (convert a training-graph checkpoint to fine-tune).')
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    # atomic: a failed save leaves no partial file under --dst
    (save_safetensors if args.dst.lower().endswith('.safetensors') else save_paddle)(state, args.dst)
    print(f"loaded {len(report['loaded'])} tensors; left at initialisation {len(report['left_at_init'])}"
          f"{': ' + ', '.join(sorted({k.split('.')[0] for k in report['left_at_init']})) if report['left_at_init'] else ''}; "
          f"dropped {len(report['dropped'])}"
          f"{': ' + ', '.join(sorted({k.split('.')[0] for k in report['dropped']})) if report['dropped'] else ''}")
    if report.get('zeroed'):
        print(f"set to zero (parameters its layers lack): {', '.join(report['zeroed'])}")
    if args.verbose:
        for title in ('loaded', 'left_at_init', 'dropped', 'zeroed'):
            if title not in report:
                continue
            print(f'{title}:' + ''.join(f'\n  {k}' for k in report[title]))
    print(f"wrote '{args.dst}'")
    return report


if __name__ == '__main__':
    run(main)
