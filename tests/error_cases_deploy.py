"""Error cases of export, deploy.yaml, prediction and inference (see tests/error_cases.py).

One small export (DDRNet-23-slim, with model.onnx) and its weights are made once per test
process; each case links or copies them into its own folder and damages its copy.
"""
import atexit
import functools
import os
import shutil
import tempfile

import cv2
import numpy as np
import yaml

from error_cases import ErrorCase

NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]


@functools.lru_cache(maxsize=None)
def _made():
    """(export folder, weights file), made once."""
    import paddle

    from paddleseg_ddr.deploy import export_inference_model
    from paddleseg_ddr.models import DDRNet23Slim
    root = tempfile.mkdtemp(prefix='error_cases_deploy-')
    atexit.register(shutil.rmtree, root, True)
    paddle.seed(7)
    model = DDRNet23Slim(num_classes=19)
    model.eval()
    weights = os.path.join(root, 'model.pdparams')
    paddle.save(model.state_dict(), weights)
    return export_inference_model(model, os.path.join(root, 'export'), NORMALIZE, onnx=True), weights


def _export(deploy=None, truncate=None, drop=0.5):
    """setup(ctx): ctx.tmp/export, the shared export with ``deploy(section)`` applied to its
    deploy.yaml and the file ``truncate`` cut to ``drop`` of its size (or by ``drop`` bytes if >= 1)."""
    def setup(ctx):
        src, dst = _made()[0], ctx.path('export')
        os.makedirs(dst)
        for name in os.listdir(src):
            if name not in ('deploy.yaml', truncate):
                os.symlink(os.path.join(src, name), os.path.join(dst, name))
        with open(os.path.join(src, 'deploy.yaml')) as f:
            doc = yaml.safe_load(f)
        if deploy:
            deploy(doc['Deploy'])
        with open(os.path.join(dst, 'deploy.yaml'), 'w') as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        if truncate:
            with open(os.path.join(src, truncate), 'rb') as f:
                data = f.read()
            keep = len(data) - int(drop) if drop >= 1 else int(len(data) * drop)
            with open(os.path.join(dst, truncate), 'wb') as f:
                f.write(data[:keep])
        _images(ctx)
    return setup


def _images(ctx):
    """ctx.tmp/images/ok.png (a small road-like image); returns the folder."""
    folder = ctx.path('images')
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(os.path.join(folder, 'ok.png'), rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
    return folder


def _with_images(**files):
    """setup(ctx): the shared export, and files in ctx.tmp/images: name -> bytes or a
    function of the bytes of ok.png / ok.jpg."""
    def setup(ctx):
        _export()(ctx)
        folder = ctx.path('images')
        image = cv2.imread(os.path.join(folder, 'ok.png'))
        encoded = {'png': cv2.imencode('.png', image)[1].tobytes(), 'jpg': cv2.imencode('.jpg', image)[1].tobytes()}
        for name, content in files.items():
            name = name.replace('__', '.')
            data = content(encoded[name.rsplit('.', 1)[1]]) if callable(content) else content
            with open(os.path.join(folder, name), 'wb') as f:
                f.write(data)
    return setup


def _half(data):
    return data[:len(data) // 2]


def _deploy_args(entry, *extra, images='images'):
    """argv of predict/infer/onnx_infer on ctx.tmp/export, results in ctx.tmp/out."""
    def argv(ctx):
        model = ['--model', ctx.path('export')] if entry == 'onnx_infer' else \
            ['--config', ctx.path('export', 'deploy.yaml')]
        cpu = ['--enable_mkldnn', 'False'] if entry != 'onnx_infer' else []
        return [*model, '--image_path', ctx.path(images), '--save_dir', ctx.path('out'), *cpu, *extra]
    return argv


def _dygraph(entry, *extra):
    """argv of predict.py (checkpoint) or val.py with the shared weights on the small config."""
    def argv(ctx):
        weights = _made()[1]
        if entry == 'val':
            return ['--config', ctx.config(), '--model_path', weights, *extra]
        return ['--config', ctx.config(), '--model_path', weights, '--image_path', _images(ctx),
                '--save_dir', ctx.path('out'), *extra]
    return argv


def _out(ctx):
    return [ctx.path('out')]


def _rename(old, new):
    return lambda d: d.__setitem__(new, d.pop(old))


def _set(**values):
    return lambda d: d.update(values)


CASES = [
    # deploy.yaml is checked against its schema (issue 10): a misspelt key no longer runs unnormalised.
    ErrorCase('deploy-yaml-misspelt-transforms', 'predict', _deploy_args('predict'),
              setup=_export(_rename('transforms', 'transfroms')),
              expect=('{tmp}/export/deploy.yaml', "unknown key 'transfroms'", "did you mean 'transforms'"),
              absent=_out),
    ErrorCase('deploy-yaml-output-op-misspelt', 'infer', _deploy_args('infer'), setup=_export(_set(output_op='argmaks')),
              expect=('{tmp}/export/deploy.yaml', "output_op 'argmaks'", "did you mean 'argmax'"), absent=_out),
    ErrorCase('deploy-yaml-unknown-transform', 'predict', _deploy_args('predict'),
              setup=_export(_set(transforms=[{'type': 'Normalise'}])),
              expect=('{tmp}/export/deploy.yaml', "unknown type 'Normalise'", "did you mean 'Normalize'"),
              absent=_out),
    ErrorCase('deploy-yaml-transform-argument-misspelt', 'infer', _deploy_args('infer'),
              setup=_export(_set(transforms=[{'type': 'Normalize', 'meen': [0.5, 0.5, 0.5]}])),
              expect=('{tmp}/export/deploy.yaml', "(Normalize) has no argument 'meen'", "did you mean 'mean'"),
              absent=_out),
    ErrorCase('deploy-yaml-transform-argument-value', 'predict', _deploy_args('predict'),
              setup=_export(_set(transforms=[{'type': 'Normalize', 'mean': 'bright'}])),
              expect=('{tmp}/export/deploy.yaml', '(Normalize) refuses its arguments', 'bright'), absent=_out),
    ErrorCase('deploy-yaml-input-shape-malformed', 'predict', _deploy_args('predict'),
              setup=_export(_set(input_shape=[1, 3, 'a'])),
              expect=('{tmp}/export/deploy.yaml', "'input_shape' must be [N, 3, H, W]", "[1, 3, 'a']"), absent=_out),
    ErrorCase('deploy-yaml-without-transforms', 'infer', _deploy_args('infer'),
              setup=_export(lambda d: d.pop('transforms')),
              expect=('{tmp}/export/deploy.yaml', "has no 'transforms'", 'unnormalised'), absent=_out),
    ErrorCase('deploy-yaml-onnx-misspelt-key', 'onnx_infer', _deploy_args('onnx_infer'),
              setup=_export(_rename('output_op', 'ouput_op')),
              expect=('{tmp}/export/deploy.yaml', "unknown key 'ouput_op'", "did you mean 'output_op'"), absent=_out),

    # Inputs: results that would overwrite each other, an empty list, damaged images (issue 10).
    ErrorCase('predict-png-and-jpg-of-one-name', 'predict', _deploy_args('predict'),
              setup=_with_images(a__png=lambda png: png, a__jpg=lambda jpg: jpg),
              expect=("'{tmp}/images/a.jpg' and '{tmp}/images/a.png' -> label/a.png", 'Rename one image'),
              absent=_out),
    ErrorCase('predict-empty-list-file', 'predict', _deploy_args('predict', images='list.txt'),
              setup=lambda ctx: (_export()(ctx), open(ctx.path('list.txt'), 'w').write('\n  \n\n')),
              expect=("the list file '{tmp}/list.txt' names no images", 'one image path a line'), absent=_out),
    ErrorCase('predict-truncated-jpeg', 'predict', _deploy_args('predict', images='images/t.jpg'),
              setup=_with_images(t__jpg=_half),
              expect=("'{tmp}/images/t.jpg' is a truncated JPEG", 'Copy them again'), absent=_out),
    ErrorCase('predict-zero-byte-image', 'predict', _deploy_args('predict', images='images/z.png'),
              setup=_with_images(z__png=b''), expect=("'{tmp}/images/z.png' is empty (0 bytes)",), absent=_out),
    ErrorCase('infer-truncated-png', 'infer', _deploy_args('infer', images='images/t.png'),
              setup=_with_images(t__png=_half),
              expect=("'{tmp}/images/t.png' is truncated, damaged", 'Copy them again'), absent=_out),
    ErrorCase('infer-truncated-jpeg', 'infer', _deploy_args('infer', images='images/t.jpg'),
              setup=_with_images(t__jpg=_half), expect=("'{tmp}/images/t.jpg' is a truncated JPEG",), absent=_out),
    ErrorCase('onnx-infer-truncated-jpeg', 'onnx_infer', _deploy_args('onnx_infer', images='images/t.jpg'),
              setup=_with_images(t__jpg=_half), expect=("'{tmp}/images/t.jpg' is a truncated JPEG",), absent=_out),
    ErrorCase('onnx-infer-zero-byte-image', 'onnx_infer', _deploy_args('onnx_infer', images='images/z.png'),
              setup=_with_images(z__png=b''), expect=("'{tmp}/images/z.png' is empty (0 bytes)",), absent=_out),

    # Inference options, one check shared by predict.py and val.py (issue 10).
    ErrorCase('predict-aug-scale-zero', 'predict', _dygraph('predict', '--aug_pred', '--scales', '0'),
              expect=('--scales 0', 'positive numbers', '--scales 0.75 1.0 1.25'), absent=_out),
    ErrorCase('predict-stride-zero', 'predict',
              _dygraph('predict', '--is_slide', '--crop_size', '64', '64', '--stride', '0', '0'),
              expect=('--stride 0 0', 'two positive whole numbers'), absent=_out),
    ErrorCase('predict-crop-size-zero', 'predict',
              _dygraph('predict', '--is_slide', '--crop_size', '0', '64', '--stride', '32', '32'),
              expect=('--crop_size 0 64', 'two positive whole numbers'), absent=_out),
    ErrorCase('predict-stride-above-crop', 'predict',
              _dygraph('predict', '--is_slide', '--crop_size', '64', '64', '--stride', '96', '32'),
              expect=('--stride 96 32', '--crop_size 64 64', 'unpredicted'), absent=_out),
    ErrorCase('val-stride-zero', 'val', _dygraph('val', '--is_slide', '--crop_size', '64', '64', '--stride', '0', '0'),
              expect=('--stride 0 0', 'two positive whole numbers')),
    ErrorCase('val-aug-scale-zero', 'val', _dygraph('val', '--aug_eval', '--scales', '0'),
              expect=('--scales 0', 'positive numbers')),
    ErrorCase('val-stride-above-crop', 'val',
              _dygraph('val', '--is_slide', '--crop_size', '64', '64', '--stride', '96', '32'),
              expect=('--stride 96 32', '--crop_size 64 64', 'unpredicted')),

    # Damaged export files (issue 10).
    ErrorCase('infer-truncated-pdiparams', 'infer', _deploy_args('infer'), setup=_export(truncate='model.pdiparams'),
              expect=("'{tmp}/export/model.pdiparams' is not a complete parameters file", 'export again'),
              absent=_out),
    ErrorCase('infer-pdiparams-short-by-one-byte', 'infer', _deploy_args('infer'),
              setup=_export(truncate='model.pdiparams', drop=1),
              expect=("'{tmp}/export/model.pdiparams' is not a complete parameters file",), absent=_out),
    ErrorCase('predict-truncated-pdiparams-onednn', 'predict',
              lambda ctx: ['--config', ctx.path('export', 'deploy.yaml'), '--image_path', ctx.path('images'),
                           '--save_dir', ctx.path('out')], setup=_export(truncate='model.pdiparams'),
              expect=("'{tmp}/export/model.pdiparams' is not a complete parameters file",), absent=_out),
    ErrorCase('predict-truncated-model-json', 'predict', _deploy_args('predict'), setup=_export(truncate='model.json'),
              expect=("'{tmp}/export/model.json' is not a complete model graph", 'not valid JSON', 'export again'),
              absent=_out),
    ErrorCase('infer-empty-model-json', 'infer', _deploy_args('infer'), setup=_export(truncate='model.json', drop=0),
              expect=("'{tmp}/export/model.json' is not a complete model graph",), absent=_out),
    ErrorCase('onnx-infer-truncated-model-onnx', 'onnx_infer', _deploy_args('onnx_infer'),
              setup=_export(truncate='model.onnx'),
              expect=("ONNX Runtime cannot load '{tmp}/export/model.onnx'", 'damaged or incomplete',
                      'tools/export_onnx.py --model_dir {tmp}/export'), absent=_out),
]
