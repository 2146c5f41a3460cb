"""Shared by the engine tests (test_engines.py, test_openvino.py, test_val_export.py): one
export with model.onnx of a DDRNet-23-slim with non-trivial BN statistics, its weights, and a
hand-made stand-in "int8" ONNX model, each made once per test process."""
import atexit
import functools
import os
import shutil
import tempfile

import numpy as np

NORMALIZE = [{'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}]


@functools.lru_cache(maxsize=None)
def shared():
    """(export folder with model.onnx, weights file), made once."""
    import paddle

    from paddleseg_ddr.datasets.metainfo import dataset_meta
    from paddleseg_ddr.deploy import export_inference_model
    from paddleseg_ddr.models import DDRNet23Slim
    root = tempfile.mkdtemp(prefix='engine_tests-')
    atexit.register(shutil.rmtree, root, True)
    paddle.seed(3)
    model = DDRNet23Slim(num_classes=19)
    model.train()  # a few batches through BN give non-trivial running statistics
    with paddle.no_grad():
        for _ in range(3):
            model(paddle.randn([2, 3, 64, 64]) * 2 + 0.5)
    model.eval()
    weights = os.path.join(root, 'model.pdparams')
    paddle.save(model.state_dict(), weights)
    export = export_inference_model(model, os.path.join(root, 'export'), NORMALIZE, onnx=True,
                                    meta=dataset_meta('DDRCityscapes'))
    return export, weights


def copy_export(dst, onnx=True):
    """A copy of the shared export in ``dst`` (without model.onnx if not ``onnx``)."""
    src = shared()[0]
    shutil.copytree(src, dst)
    if not onnx:
        import yaml
        os.remove(os.path.join(dst, 'model.onnx'))
        with open(os.path.join(dst, 'deploy.yaml')) as f:
            doc = yaml.safe_load(f)
        doc['Deploy'].pop('onnx_model')
        with open(os.path.join(dst, 'deploy.yaml'), 'w') as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    return dst


def channel_argmax_onnx(path):
    """A stand-in for an int8 model: the argmax over the 3 input channels (int32 labels
    [N, H, W]), recognisably different from the network's output."""
    import onnx
    from onnx import TensorProto, helper
    nodes = [helper.make_node('ArgMax', ['x'], ['a'], axis=1, keepdims=0),
             helper.make_node('Cast', ['a'], ['y'], to=TensorProto.INT32)]
    graph = helper.make_graph(nodes, 'stand_in', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 'H', 'W'])],
                              [helper.make_tensor_value_info('y', TensorProto.INT32, ['N', 'H', 'W'])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8), path)
    return path


def mini_batches(mini_root, count=3):
    """Normalised mini val images [1, 3, H, W] (the export's preprocessing)."""
    import glob

    import cv2
    for path in sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[:count]:
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        image = (image - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        yield image.transpose(2, 0, 1)[None].astype(np.float32)
