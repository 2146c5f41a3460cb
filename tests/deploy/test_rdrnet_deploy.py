"""RDRNet deployed: the fused export run by Paddle Inference (with and without oneDNN) and
ONNX Runtime gives the training graph's logits; val.py runs the fused graph by default and
equals --no_reparam; a checkpoint of the fused graph evaluates too."""
import numpy as np
import paddle
import pytest

from deploy_helpers import NORMALIZE, inputs, predictor, run
from paddleseg_ddr.cli import val_main
from paddleseg_ddr.deploy import OnnxRuntimePredictor, export_inference_model
from paddleseg_ddr.models import create_model, reparameterize
from random_bn import randomize_bn


@pytest.fixture(scope='module')
def rdrnet():
    """RDRNet-S-Simple with random weights and BN statistics far from identity, eval mode."""
    paddle.seed(11)
    model = create_model('rdrnet_s_simple', num_classes=19, aux_head=True)
    randomize_bn(model)
    model.eval()
    return model


def test_fused_export_matches_the_training_graph(tmp_path, mini_root, rdrnet):
    out = export_inference_model(rdrnet, str(tmp_path / 'rdr'), NORMALIZE, output_op='none', onnx=True)
    assert 'path_3x3' not in open(f'{out}/model.json').read()  # the three-path blocks are gone
    engines = {'paddle': predictor(out, False), 'paddle_onednn': predictor(out, True)}
    onnx = OnnxRuntimePredictor(out)
    for name, x in list(inputs(mini_root))[:3]:
        with paddle.no_grad():
            ref = rdrnet(paddle.to_tensor(x))[0].numpy()  # the training graph, eval mode
        outs = {k: run(p, x) for k, p in engines.items()}
        outs['onnxruntime'] = onnx.run(x)
        for engine, logits in outs.items():
            assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max(), (engine, name)


def test_val_runs_the_fused_graph_and_takes_fused_weights(tmp_path, mini_config, rdrnet):
    cfg = mini_config(tmp_path, model={'type': 'RDRNetSSimple', 'num_classes': 19, 'pretrained': None})
    weights = str(tmp_path / 'train_graph.pdparams')
    paddle.save(rdrnet.state_dict(), weights)
    fused = val_main(['--config', cfg, '--model_path', weights])
    plain = val_main(['--config', cfg, '--model_path', weights, '--no_reparam'])
    # the same function to float rounding: at most a few tie pixels may move
    assert np.abs(fused['confusion'] - plain['confusion']).sum() <= 1e-4 * plain['confusion'].sum()
    import copy
    fused_weights = str(tmp_path / 'fused_graph.pdparams')
    paddle.save(reparameterize(copy.deepcopy(rdrnet)).state_dict(), fused_weights)
    again = val_main(['--config', cfg, '--model_path', fused_weights])
    np.testing.assert_array_equal(again['confusion'], fused['confusion'])
