import os

import numpy as np
import paddle
import pytest
import yaml

from paddleseg_ddr.deploy import export_inference_model
from paddleseg_ddr.models import DDRNet23Slim
from deploy_helpers import NORMALIZE, inputs, predictor, run  # noqa: I001


@pytest.mark.parametrize('resize_op,onednn', [('interp', True), ('interp', False), ('gather', True), ('gather', False)],
                         ids=['interp-onednn', 'interp-plain', 'gather-onednn', 'gather-plain'])
def test_exported_graph_matches_dygraph(tmp_path, mini_root, trained_like_model, resize_op, onednn):
    """Logits within 1e-4 relative and argmax identical on >= 99.9% of pixels, on random
    and mini-dataset images, at sizes that are and are not multiples of 64. The default
    oneDNN configuration is the product's (placement pass removed: see paddle_inference)."""
    logits_dir = export_inference_model(trained_like_model, str(tmp_path / 'logits'), NORMALIZE, output_op='none',
                                        resize_op=resize_op)
    labels_dir = export_inference_model(trained_like_model, str(tmp_path / 'labels'), NORMALIZE, output_op='argmax',
                                        resize_op=resize_op)
    logits_pred, labels_pred = predictor(logits_dir, onednn), predictor(labels_dir, onednn)
    for name, x in inputs(mini_root):
        with paddle.no_grad():
            ref = trained_like_model(paddle.to_tensor(x))[0].numpy()
        logits = run(logits_pred, x)
        assert logits.shape == ref.shape, name
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), name
        labels = run(labels_pred, x)
        assert labels.dtype == np.int32 and labels.shape == ref.shape[:1] + ref.shape[2:]
        assert (labels == ref.argmax(axis=1)).mean() >= 0.999, name


def test_deploy_yaml_follows_paddleseg_and_has_no_aux_head(tmp_path, trained_like_model):
    out = export_inference_model(trained_like_model, str(tmp_path / 'm'), NORMALIZE, input_shape=[1, 3, 64, 128])
    with open(os.path.join(out, 'deploy.yaml')) as f:
        deploy = yaml.safe_load(f)['Deploy']
    assert deploy == {'model': 'model.json', 'params': 'model.pdiparams', 'transforms': NORMALIZE,
                      'input_shape': [1, 3, 64, 128], 'output_op': 'argmax', 'output_dtype': 'int32',
                      'resize_op': 'interp'}
    assert sorted(os.listdir(tmp_path)) == ['m']  # no temporary directory left behind
    # the auxiliary head's weights are not in the exported graph: same size as a model built without it
    n_exported = os.path.getsize(os.path.join(out, 'model.pdiparams'))
    no_aux = DDRNet23Slim(num_classes=19, aux_head=False)
    no_aux.set_state_dict({k: v for k, v in trained_like_model.state_dict().items() if not k.startswith('seghead_extra')})
    out2 = export_inference_model(no_aux, str(tmp_path / 'n'), NORMALIZE, input_shape=[1, 3, 64, 128])
    assert n_exported == os.path.getsize(os.path.join(out2, 'model.pdiparams'))


def test_resize_op_applies_to_every_export_of_one_model(tmp_path, trained_like_model):
    """Paddle caches converted functions: exporting one model twice with different
    --resize_op in one process must still give each graph its own resize."""
    for i, resize_op in enumerate(('gather', 'interp', 'gather')):
        out = export_inference_model(trained_like_model, str(tmp_path / str(i)), NORMALIZE, resize_op=resize_op)
        graph = open(os.path.join(out, 'model.json')).read()
        assert (graph.count('bilinear_interp') > 0) == (resize_op == 'interp'), resize_op
        assert (graph.count('index_select') > 0) == (resize_op == 'gather'), resize_op
