"""The exact fast head (paddleseg_ddr/deploy/fast_head.py) against independent formulations of
bilinear upsample + argmax: ONNX Runtime's Resize + ArgMax, Paddle's F.interpolate + argmax, and
NumPy's full upsample; on logits of a real network on a street scene, on hand-made ties and
near-ties, and for sizes that are not multiples of the input."""
import os

import numpy as np
import onnxruntime as ort
import paddle
import paddle.nn.functional as F
import pytest
from engine_exports import shared
from onnx import TensorProto, helper

from paddleseg_ddr.deploy.fast_head import (TOLERANCE, FastHeadRunner, plain_upsample_argmax, truncate_onnx,
                                            upsample_argmax)
from paddleseg_ddr.errors import UserError


def ort_head(logits, size):
    """Resize (linear, half_pixel) + ArgMax(axis 1) in ONNX Runtime: the export's own head."""
    n, c = logits.shape[:2]
    graph = helper.make_graph(
        [helper.make_node('Resize', ['x', '', '', 'sizes'], ['y'], mode='linear',
                          coordinate_transformation_mode='half_pixel'),
         helper.make_node('ArgMax', ['y'], ['z'], axis=1, keepdims=0)], 'head',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [n, c, None, None]),
         helper.make_tensor_value_info('sizes', TensorProto.INT64, [4])],
        [helper.make_tensor_value_info('z', TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    return session.run(None, {'x': logits, 'sizes': np.array([n, c, *size], np.int64)})[0]


def paddle_head(logits, size):
    up = F.interpolate(paddle.to_tensor(logits), size=list(size), mode='bilinear', align_corners=False)
    return up.argmax(axis=1).numpy()


@pytest.fixture(scope='module')
def scene_logits(trained_like_model):
    """Low-resolution logits of DDRNet-23-slim (non-trivial BN statistics) on a mini Cityscapes
    street scene at 256x512: the network's output just before its final upsample."""
    from paddleseg_ddr.datasets.mini_cityscapes import SPLITS, draw_scene, paint_scene
    rng = np.random.default_rng([0, list(SPLITS).index('val'), 0])
    rgb = np.asarray(paint_scene(draw_scene(rng, 512, 256), 512, 256, rng), np.float32) / 255
    x = ((rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
    model = trained_like_model
    captured = {}

    def hook(layer, inputs, output):
        captured['logits'] = output

    handle = model.final_layer.register_forward_post_hook(hook)
    with paddle.no_grad():
        full = model(paddle.to_tensor(x))[0].argmax(axis=1).numpy()
    handle.remove()
    return captured['logits'].numpy(), full


def test_real_network_logits_identical_to_every_formulation(scene_logits):
    logits, model_labels = scene_logits
    assert logits.shape == (1, 19, 32, 64)
    stats = {}
    fast = upsample_argmax(logits, (256, 512), stats)
    assert fast.dtype == np.int32 and fast.shape == (1, 256, 512)
    np.testing.assert_array_equal(fast, ort_head(logits, (256, 512)))
    np.testing.assert_array_equal(fast, paddle_head(logits, (256, 512)))
    np.testing.assert_array_equal(fast, plain_upsample_argmax(logits, (256, 512)))
    np.testing.assert_array_equal(fast, model_labels)  # the model's own final resize + argmax
    # the shortcut did the work where the classes agree, and boundaries exist to interpolate
    assert 0.02 < stats['full_share'] < 0.9


@pytest.mark.parametrize('shape,size', [((2, 5, 7, 9), (50, 61)), ((1, 3, 16, 12), (16, 12)),
                                        ((1, 4, 9, 13), (5, 6)), ((1, 1, 3, 4), (7, 9))])
def test_any_sizes_and_batches_match_onnx_runtime(shape, size):
    """Non-integer scales, identity, downsampling, a single class; blocky logits make large
    uniform areas (the shortcut) next to boundaries (the full computation)."""
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    blocks = rng.normal(size=(n, c, (h + 2) // 3, (w + 2) // 3)).astype(np.float32) * 3
    logits = np.ascontiguousarray(blocks.repeat(3, axis=2).repeat(3, axis=3)[:, :, :h, :w])
    logits += rng.normal(size=logits.shape).astype(np.float32) * 0.05
    np.testing.assert_array_equal(upsample_argmax(logits, size), ort_head(logits, size))
    np.testing.assert_array_equal(upsample_argmax(logits, size), plain_upsample_argmax(logits, size))


def test_ties_take_the_lowest_class_and_near_ties_are_not_shortcut():
    # exact ties everywhere: the first maximal class, as ONNX ArgMax / NumPy / Paddle
    tied = np.zeros((1, 4, 6, 6), np.float32)
    tied[:, 2:] = 1.0
    assert (upsample_argmax(tied, (24, 24)) == 2).all()
    np.testing.assert_array_equal(upsample_argmax(tied, (24, 24)), ort_head(tied, (24, 24)))
    # class 1 leads class 0 by a margin below the tolerance at every pixel, class 0 leads by
    # more on one corner: the shortcut must not decide those cells
    rng = np.random.default_rng(0)
    near = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    near[:, 0] = 10.0
    near[:, 1] = np.float32(10.0) + np.float32(10.0) * TOLERANCE * rng.uniform(0.01, 0.5, size=(8, 8))
    near[:, 2] = -5.0
    size = (37, 41)
    np.testing.assert_array_equal(upsample_argmax(near, size), plain_upsample_argmax(near, size))
    np.testing.assert_array_equal(upsample_argmax(near, size), ort_head(near, size))


def test_runner_on_an_export_equals_the_export_run_whole(tmp_path):
    """truncate_onnx cuts the export before Resize + ArgMax; FastHeadRunner on ONNX Runtime and
    OpenVINO (fp32) gives the label maps of the uncut export on the same engine."""
    from paddleseg_ddr.deploy.engines import create_runner
    export = shared()[0]  # the engine tests' export (made once per test process)
    x = np.random.default_rng(1).normal(size=(2, 3, 96, 160)).astype(np.float32)
    for engine in ('onnxruntime', 'openvino'):
        fast = FastHeadRunner(export, engine, 'fp32', cpu_threads=2)
        whole = create_runner(export, engine, 'fp32', cpu_threads=2)
        try:
            got = fast.run(x)
            np.testing.assert_array_equal(got, whole.run(x))
            assert fast.head_times['upsample_argmax'] > 0 and fast.meta.num_classes == 19
            bgr = (np.random.default_rng(2).random((70, 90, 3)) * 255).astype(np.uint8)
            np.testing.assert_array_equal(fast(bgr), whole(bgr))  # deploy.yaml's preprocessing, uint8
        finally:
            fast.close()
            getattr(whole, 'close', lambda: None)()
    logits_name = truncate_onnx(os.path.join(export, 'model.onnx'), str(tmp_path / 'cut.onnx'))
    session = ort.InferenceSession(str(tmp_path / 'cut.onnx'), providers=['CPUExecutionProvider'])
    assert session.get_outputs()[0].name == logits_name
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (2, 19, 12, 20)


def test_refuses_graphs_without_the_head_and_other_engines(tmp_path):
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 3, 4])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2, 3, 4])])
    path = str(tmp_path / 'relu.onnx')
    import onnx
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8), path)
    with pytest.raises(UserError, match='bilinear'):
        truncate_onnx(path, str(tmp_path / 'out.onnx'))
    with pytest.raises(UserError, match='onnxruntime or openvino'):
        FastHeadRunner(str(tmp_path), 'paddle')
