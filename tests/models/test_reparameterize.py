"""Conv+BN folding for deployment: checked against NumPy arithmetic for one pair, and against
the unfused network (the same weights, eval mode) for whole DDRNets."""
import numpy as np
import paddle
import pytest

from paddleseg_ddr.models import create_model, list_variants, reparameterize
from paddleseg_ddr.models.blocks import BasicBlock
from paddleseg_ddr.models.reparameterize import fold_conv_bn
from random_bn import randomize_bn


@pytest.mark.parametrize('bias', [False, True])
def test_fold_matches_numpy(bias):
    paddle.seed(1)
    conv = paddle.nn.Conv2D(3, 4, 3, stride=2, padding=1, bias_attr=None if bias else False)
    bn = paddle.nn.BatchNorm2D(4, epsilon=1e-3)
    seq = paddle.nn.Sequential(conv, bn)
    randomize_bn(seq)
    seq.eval()
    w = conv.weight.numpy().astype(np.float64)
    b = conv.bias.numpy().astype(np.float64) if bias else np.zeros(4)
    gamma, beta, mean, var = (t.numpy().astype(np.float64) for t in (bn.weight, bn.bias, bn._mean, bn._variance))
    scale = gamma / np.sqrt(var + 1e-3)
    x = paddle.randn([2, 3, 9, 11])
    with paddle.no_grad():
        ref = seq(x).numpy()
    replacement = fold_conv_bn(conv, bn)
    assert isinstance(replacement, paddle.nn.Identity)
    np.testing.assert_allclose(conv.weight.numpy(), w * scale[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(conv.bias.numpy(), (b - mean) * scale + beta, rtol=1e-5, atol=1e-7)
    with paddle.no_grad():
        np.testing.assert_allclose(conv(x).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_block_folds_itself_and_keeps_its_function():
    paddle.seed(2)
    block = BasicBlock(8, 8)
    randomize_bn(block)
    block.eval()
    x = paddle.randn([1, 8, 12, 12])
    with paddle.no_grad():
        ref = block(x).numpy()
        block.reparameterize()
        out = block(x).numpy()
    assert not any(isinstance(l, paddle.nn.BatchNorm2D) for l in block.sublayers())
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', [v.name for v in list_variants('DDRNet')])
def test_whole_network_same_logits_fewer_layers(name):
    paddle.seed(0)
    model = create_model(name, num_classes=19, aux_head=True)
    randomize_bn(model)
    model.eval()
    x = paddle.randn([1, 3, 96, 160])
    with paddle.no_grad():
        ref = model(x)[0].numpy()
    before = sum(isinstance(l, paddle.nn.BatchNorm2D) for l in model.sublayers())
    reparameterize(model)
    after = [l for l in model.sublayers() if isinstance(l, paddle.nn.BatchNorm2D)]
    # Only pre-activation BNs stay: DAPPM's 11 units and each head's input BN (main + aux).
    assert len(after) == 11 + 2, (before, len(after))
    with paddle.no_grad():
        out = model(x)[0].numpy()
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    # idempotent
    reparameterize(model)
    with paddle.no_grad():
        np.testing.assert_array_equal(model(x)[0].numpy(), out)


@pytest.mark.parametrize('cin,cout,stride,act', [(8, 8, 1, True), (8, 8, 1, False), (8, 16, 2, True), (6, 6, 2, True)])
def test_rep_block_merges_three_paths_into_one_conv(cin, cout, stride, act):
    """RDRNet's block: 3x3 conv+BN + (1x1+BN, 1x1+BN, with biases) + identity BN -> one 3x3
    conv, also with stride 2 and without the identity path."""
    from paddleseg_ddr.models.blocks import RepBlock
    paddle.seed(3)
    block = RepBlock(cin, cout, stride, act=act)
    randomize_bn(block)
    for conv in (block.path_1x1[0], block.path_1x1[2]):  # non-zero biases, so their folding shows
        conv.bias.set_value(np.random.default_rng(1).uniform(-0.5, 0.5, conv.bias.shape).astype('float32'))
    block.eval()
    x = paddle.randn([2, cin, 13, 10])
    with paddle.no_grad():
        ref = block(x).numpy()
        reparameterize(block)
        out = block(x).numpy()
    assert [n for n, _ in block.named_children()] == ['reparam_3x3']
    assert tuple(block.reparam_3x3.weight.shape) == (cout, cin, 3, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_rep_parallel_merges_two_grouped_convs():
    from paddleseg_ddr.models.blocks import RepParallel
    paddle.seed(4)
    layer = RepParallel(16, groups=4)
    randomize_bn(layer)
    layer.eval()
    x = paddle.randn([1, 16, 9, 9])
    with paddle.no_grad():
        ref = layer(x).numpy()
        reparameterize(layer)
        out = layer(x).numpy()
    assert sorted(n for n, _ in layer.named_children()) == ['norm', 'reparam_parallel']
    assert layer.reparam_parallel._groups == 4
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
