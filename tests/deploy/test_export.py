import os

import numpy as np
import paddle
import pytest
import yaml

from paddleseg_ddr.deploy import export_inference_model
from paddleseg_ddr.models import DDRNet23Slim
from deploy_helpers import NORMALIZE, inputs, predictor, run  # noqa: I001


@pytest.mark.parametrize('onednn', [True, False], ids=['interp-onednn', 'interp-plain'])
def test_exported_graph_matches_dygraph(tmp_path, mini_root, trained_like_model, onednn):
    """Logits within 1e-4 relative and argmax identical on >= 99.9% of pixels, on random
    and mini-dataset images, at sizes that are and are not multiples of 64. The default
    oneDNN configuration is the product's (placement pass removed: see paddle_inference)."""
    logits_dir = export_inference_model(trained_like_model, str(tmp_path / 'logits'), NORMALIZE, output_op='none')
    labels_dir = export_inference_model(trained_like_model, str(tmp_path / 'labels'), NORMALIZE, output_op='argmax')
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
                      'precision': 'fp32'}
    assert sorted(os.listdir(tmp_path)) == ['m']  # no temporary directory left behind
    assert sorted(os.listdir(out)) == ['deploy.yaml', 'model.json', 'model.pdiparams']
    # the auxiliary head's weights are not in the exported graph: same size as a model built without it
    n_exported = os.path.getsize(os.path.join(out, 'model.pdiparams'))
    no_aux = DDRNet23Slim(num_classes=19, aux_head=False)
    no_aux.set_state_dict({k: v for k, v in trained_like_model.state_dict().items() if not k.startswith('seghead_extra')})
    out2 = export_inference_model(no_aux, str(tmp_path / 'n'), NORMALIZE, input_shape=[1, 3, 64, 128])
    assert n_exported == os.path.getsize(os.path.join(out2, 'model.pdiparams'))


def _predict(model_dir, x):
    return run(predictor(model_dir), x)


def test_export_into_a_training_folder_keeps_everything(tmp_path, trained_like_model):
    """PaddleSeg's TIPC exports into the training folder: checkpoints, logs and the user's
    files must survive; the export files are added, and replaced by a re-export."""
    from paddleseg_ddr.engine.checkpoint import save_checkpoint
    folder = tmp_path / 'output'
    save_checkpoint(str(folder / 'iter_1'), trained_like_model, state={'iter': 1})
    (folder / 'notes.txt').write_text('mine')
    (folder / 'vdlrecords.1.log').write_bytes(b'logs')
    before = {p: open(folder / p, 'rb').read() for p in ('notes.txt', 'vdlrecords.1.log', 'iter_1/model.pdparams',
                                                        'iter_1/train_state.pdstates')}
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)
    with paddle.no_grad():
        ref = trained_like_model(paddle.to_tensor(x))[0].numpy()
    out = export_inference_model(trained_like_model, str(folder), NORMALIZE)
    assert out == str(folder)
    assert sorted(os.listdir(folder)) == ['deploy.yaml', 'iter_1', 'model.json', 'model.pdiparams', 'notes.txt',
                                          'vdlrecords.1.log']
    assert {p: open(folder / p, 'rb').read() for p in before} == before
    assert (_predict(out, x) == ref.argmax(axis=1)).mean() >= 0.999
    # a re-export replaces the export's own files (here logits instead of labels), nothing else
    export_inference_model(trained_like_model, str(folder), NORMALIZE, output_op='none')
    with open(folder / 'deploy.yaml') as f:
        assert yaml.safe_load(f)['Deploy']['output_op'] == 'none'
    logits = _predict(out, x)
    assert logits.shape == ref.shape and np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max()
    assert {p: open(folder / p, 'rb').read() for p in before} == before
    assert sorted(os.listdir(folder)) == ['deploy.yaml', 'iter_1', 'model.json', 'model.pdiparams', 'notes.txt',
                                          'vdlrecords.1.log']
    assert sorted(os.listdir(tmp_path)) == ['output']


def test_failed_export_leaves_the_previous_export(tmp_path, trained_like_model, monkeypatch):
    folder = tmp_path / 'inference'
    export_inference_model(trained_like_model, str(folder), NORMALIZE)
    (folder / 'notes.txt').write_text('mine')
    before = {p: open(folder / p, 'rb').read() for p in os.listdir(folder)}

    def crashing_save(layer, prefix, **kwargs):
        with open(prefix + '.json', 'w') as f:
            f.write('{"half')
        raise RuntimeError('killed while tracing')
    monkeypatch.setattr(paddle.jit, 'save', crashing_save)
    with pytest.raises(RuntimeError, match='killed'):
        export_inference_model(trained_like_model, str(folder), NORMALIZE, output_op='none')
    assert {p: open(folder / p, 'rb').read() for p in os.listdir(folder)} == before
    assert sorted(os.listdir(tmp_path)) == ['inference']


def test_export_into_a_file_is_a_user_error(tmp_path, trained_like_model):
    from paddleseg_ddr.errors import UserError
    target = tmp_path / 'taken'
    target.write_text('mine')
    with pytest.raises(UserError, match="is a file"):
        export_inference_model(trained_like_model, str(target), NORMALIZE)
    assert target.read_text() == 'mine'


def test_gather_resize_export_is_retired():
    from paddleseg_ddr.cli import export_parser
    with pytest.raises(SystemExit):
        export_parser().parse_args(['--config', 'c.yml', '--resize_op', 'gather'])
    import inspect
    assert 'resize_op' not in inspect.signature(export_inference_model).parameters


def test_export_is_reparameterized_and_matches_dygraph_to_1e5(tmp_path, mini_root, trained_like_model):
    """The export folds conv+BN (fewer batch_norm ops in the graph than an unfused export)
    and still gives the dygraph logits within 1e-5 relative (Paddle Inference, no oneDNN);
    the caller's model keeps its BNs."""
    fused = export_inference_model(trained_like_model, str(tmp_path / 'fused'), NORMALIZE, output_op='none')
    plain = export_inference_model(trained_like_model, str(tmp_path / 'plain'), NORMALIZE, output_op='none', fuse=False)
    count = lambda d: open(os.path.join(d, 'model.json')).read().count('batch_norm')  # noqa: E731
    assert count(fused) < count(plain) // 3, (count(fused), count(plain))
    assert sum(isinstance(l, paddle.nn.BatchNorm2D) for l in trained_like_model.sublayers()) > 50
    pred = predictor(fused, False)
    for name, x in inputs(mini_root):
        with paddle.no_grad():
            ref = trained_like_model(paddle.to_tensor(x))[0].numpy()
        assert np.abs(run(pred, x) - ref).max() <= 1e-5 * np.abs(ref).max(), name
