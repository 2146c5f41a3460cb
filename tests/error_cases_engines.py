"""Error cases of the engines and precisions (val.py --model_dir, predict.py --engine, the
infer scripts' --precision; see tests/error_cases.py). They reuse error_cases_deploy's shared
export (with model.onnx) and its setups."""
from error_cases import ErrorCase
from error_cases_deploy import _export, _images, _made, _out, _set


def _val_export(*extra):
    def argv(ctx):
        return ['--config', ctx.config(), '--model_dir', ctx.path('export'), *extra]
    return argv


def _predict(*extra):
    def argv(ctx):
        return ['--model_dir', ctx.path('export'), '--image_path', _images(ctx), '--save_dir', ctx.path('out'), *extra]
    return argv


def _infer(entry, *extra):
    def argv(ctx):
        model = ['--config', ctx.path('export')] if entry == 'infer' else ['--model', ctx.path('export')]
        return [*model, '--image_path', _images(ctx), '--save_dir', ctx.path('out'), *extra]
    return argv


CASES = [
    ErrorCase('engines-val-model-path-and-dir', 'val',
              lambda ctx: ['--config', ctx.config(), '--model_path', _made()[1], '--model_dir', ctx.path('export')],
              setup=_export(), expect=('--model_path', '--model_dir', 'not both')),
    ErrorCase('engines-val-engine-without-export', 'val',
              lambda ctx: ['--config', ctx.config(), '--model_path', _made()[1], '--engine', 'openvino'],
              expect=('--engine and --precision choose how an export runs', '--model_dir')),
    ErrorCase('engines-val-unknown-engine', 'val', _val_export('--engine', 'openvin'), setup=_export(),
              expect=('--engine', "invalid choice: 'openvin'", 'openvino')),
    ErrorCase('engines-val-onnxruntime-bf16', 'val', _val_export('--engine', 'onnxruntime', '--precision', 'bf16'),
              setup=_export(), expect=('onnxruntime cannot run --precision bf16', '--engine openvino')),
    ErrorCase('engines-val-int8-missing', 'val', _val_export('--engine', 'onnxruntime', '--precision', 'int8'),
              setup=_export(), expect=('{tmp}/export', 'has no int8 model', 'tools/quantize.py', '--precision fp32')),
    ErrorCase('engines-val-export-aug-eval', 'val', _val_export('--aug_eval', '--scales', '0.5', '1.0'),
              setup=_export(), expect=('evaluated on whole images', '--aug_eval', '--model_path')),
    ErrorCase('engines-val-export-no-onnx', 'val', _val_export('--engine', 'onnxruntime'),
              setup=_export(lambda d: d.pop('onnx_model')), expect=('{tmp}/export/deploy.yaml', "no 'onnx_model'",
                                                                    '--format onnx')),
    ErrorCase('engines-val-export-bad-precision-entry', 'val', _val_export(),
              setup=_export(_set(precisions={'int8': {'onnx_modle': 'model.int8.onnx'}})),
              expect=('{tmp}/export/deploy.yaml', "unknown key 'onnx_modle'", "did you mean 'onnx_model'")),
    ErrorCase('engines-val-export-int8-file-missing', 'val', _val_export('--engine', 'openvino', '--precision', 'int8'),
              setup=_export(_set(precisions={'int8': {'onnx_model': 'model.int8.onnx'}})),
              expect=('{tmp}/export', 'lacks model.int8.onnx', "'onnx_model'")),
    ErrorCase('engines-predict-int8-missing', 'predict', _predict('--engine', 'openvino', '--precision', 'int8'),
              setup=_export(), expect=('has no int8 model', 'tools/quantize.py'), absent=_out),
    ErrorCase('engines-predict-checkpoint-with-engine', 'predict',
              lambda ctx: ['--config', ctx.config(), '--model_path', _made()[1], '--image_path', _images(ctx),
                           '--save_dir', ctx.path('out'), '--precision', 'bf16'],
              expect=('--engine and --precision choose how an export runs',), absent=_out),
    ErrorCase('engines-onnx-infer-bf16', 'onnx_infer', _infer('onnx_infer', '--precision', 'bf16'), setup=_export(),
              expect=('onnxruntime cannot run --precision bf16', '--engine openvino'), absent=_out),
    ErrorCase('engines-openvino-infer-int8-missing', 'openvino_infer', _infer('openvino_infer', '--precision', 'int8'),
              setup=_export(), expect=('has no int8 model', 'tools/quantize.py'), absent=_out),
    ErrorCase('engines-paddle-infer-bf16-without-onednn', 'infer',
              _infer('infer', '--precision', 'bf16', '--enable_mkldnn', 'False'), setup=_export(),
              expect=('bf16 with Paddle Inference runs on oneDNN', '--enable_mkldnn True'), absent=_out),
    ErrorCase('engines-paddle-infer-int8-missing', 'infer', _infer('infer', '--precision', 'int8'), setup=_export(),
              expect=('has no int8 model', 'tools/quantize.py'), absent=_out),
    ErrorCase('engines-openvino-infer-damaged-onnx', 'openvino_infer', _infer('openvino_infer'),
              setup=_export(truncate='model.onnx'), expect=('OpenVINO cannot read', 'model.onnx', 'damaged'),
              absent=_out),
]
