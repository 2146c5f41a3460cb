"""The RDRNet release's checkpoints -> Paddle: parity with an independent PyTorch
re-implementation of the release (tools/reference/torch_rdrnet.py, checked against the
release's own code), with random weights and BN statistics. torch is test-only."""
import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch')
import torch.nn.functional as TF  # noqa: E402

import convert_weights  # noqa: E402  (tools/)
import torch_rdrnet  # noqa: E402  (tools/reference/)

from paddleseg_ddr.models import create_model  # noqa: E402
from paddleseg_ddr.models.blocks import RepBlock, RepParallel  # noqa: E402
from paddleseg_ddr.models.complexity import count_parameters  # noqa: E402
from paddleseg_ddr.utils.weights import load_model_weights  # noqa: E402

VARIANTS = ['rdrnet_s_simple', 'rdrnet_s', 'rdrnet_m', 'rdrnet_l']
SIZES = [(64, 128), (72, 100)]  # the second is not a multiple of 64


@pytest.fixture(autouse=True)
def one_torch_thread():
    """torch with 2 threads on this shared 2-core machine is ~100x slower on small inputs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mmengine_checkpoint(reference, path):
    """As the release saves it: mmengine's dict with meta, state_dict (prefixed keys) and more."""
    torch.save({'meta': {'mmseg_version': '1.2.2', 'iter': 120000}, 'state_dict': reference.state_dict(),
                'message_hub': {'runtime_info': {'iter': 120000}}}, path)


def torch_logits(reference, x, train=False):
    reference.train(train)
    with torch.no_grad():
        outs = reference(torch.from_numpy(x))
    outs = outs if isinstance(outs, tuple) else (outs,)
    return [TF.interpolate(o, size=x.shape[2:], mode='bilinear', align_corners=False).numpy() for o in outs]


def close(ours, ref, rel=1e-4):
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= rel * np.abs(ref).max(), np.abs(ours - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize('name', VARIANTS)
def test_converted_training_graph_gives_the_release_logits(tmp_path, name):
    """The release's training-graph checkpoint -> our training graph: eval logits within 1e-4
    relative at two sizes; then our fused graph, within 1e-4 of the same."""
    reference = torch_rdrnet.randomized(name, augment=True)
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'converted.pdparams')
    mmengine_checkpoint(reference, src)
    report = convert_weights.main(['--src', src, '--model', name, '--kind', 'cityscapes', '--dst', dst])
    assert report['dropped'] == [] and report['left_at_init'] == []
    model = create_model(name, 19, aux_head=True)
    load_model_weights(model, dst)
    model.eval()
    inputs = [np.random.default_rng(i).normal(size=(1, 3, *s)).astype(np.float32) for i, s in enumerate(SIZES)]
    expected = [torch_logits(reference, x)[0] for x in inputs]
    with paddle.no_grad():
        for x, ref in zip(inputs, expected):
            close(model(paddle.to_tensor(x))[0].numpy(), ref)
        from paddleseg_ddr.models import reparameterize
        reparameterize(model)
        for x, ref in zip(inputs, expected):
            close(model(paddle.to_tensor(x))[0].numpy(), ref)


def test_training_mode_heads_match_the_release(tmp_path):
    """Both heads in training mode (batch statistics): the auxiliary head and its classifier
    (``aux_head``, ``aux_cls_seg``) are mapped too."""
    reference = torch_rdrnet.randomized('rdrnet_s_simple', augment=True)
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'converted.pdparams')
    mmengine_checkpoint(reference, src)
    convert_weights.main(['--src', src, '--model', 'rdrnet_s_simple', '--dst', dst])
    model = create_model('rdrnet_s_simple', 19, aux_head=True)
    load_model_weights(model, dst)
    model.train()
    x = np.random.default_rng(5).normal(size=(2, 3, 64, 96)).astype(np.float32)
    expected = torch_logits(reference, x, train=True)
    with paddle.no_grad():
        ours = [o.numpy() for o in model(paddle.to_tensor(x))]
    assert len(ours) == len(expected) == 2
    for a, b in zip(ours, expected):
        close(a, b)


def test_a_deployed_release_checkpoint_loads_into_the_fused_graph(tmp_path):
    reference = torch_rdrnet.randomized('rdrnet_s_simple', augment=False, deploy=True)
    assert any('reparam_3x3' in k for k in reference.state_dict())
    src, dst = str(tmp_path / 'deployed.pth'), str(tmp_path / 'converted.pdparams')
    mmengine_checkpoint(reference, src)
    report = convert_weights.main(['--src', src, '--model', 'rdrnet_s_simple', '--dst', dst])
    assert report['left_at_init'] == [] or all(k.startswith('aux_head.') for k in report['left_at_init'])
    from paddleseg_ddr.models import reparameterize
    model = reparameterize(create_model('rdrnet_s_simple', 19, aux_head=False))
    model.set_state_dict(paddle.load(dst))
    x = np.random.default_rng(7).normal(size=(1, 3, 72, 100)).astype(np.float32)
    with paddle.no_grad():
        close(model(paddle.to_tensor(x))[0].numpy(), torch_logits(reference, x)[0])


@pytest.mark.parametrize('name', VARIANTS)
def test_parameter_counts_equal_the_release(name):
    """Training graph and the release's deployed graph (only its re-parameterisable blocks
    merged; our export also folds every other conv+BN) have the reference's exact counts."""
    reference = torch_rdrnet.build(name, augment=True)
    model = create_model(name, 19, aux_head=True)
    assert count_parameters(model) == torch_rdrnet.count_parameters(reference)
    torch_rdrnet.switch_to_deploy(reference)
    for layer in model.sublayers():
        if isinstance(layer, (RepBlock, RepParallel)):
            layer.reparameterize()
    assert count_parameters(model) == torch_rdrnet.count_parameters(reference)
