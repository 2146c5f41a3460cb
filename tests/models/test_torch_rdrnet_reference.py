"""Self-checks of tools/reference/torch_rdrnet.py, the test-only PyTorch re-implementation of
the RDRNet release that the Paddle port is checked against: names of the released checkpoints,
the release's re-parameterisation (training graph == deployed graph), the sizes the issue
measured on the release and the published cost."""
import copy
import math

import pytest

torch = pytest.importorskip('torch')
import torch_rdrnet as R  # noqa: E402  (tools/reference/, on pytest's pythonpath)

NAMES = list(R.VARIANTS)
SIZES = [(64, 128), (72, 100)]  # the second is not a multiple of 64 (nor of 8)

# measured on the reference; the issue's release measurements are these rounded to 0.01 M
COUNTS = {  # backbone train, backbone deploy, head (head + conv_seg), aux (aux_head + aux_cls_seg)
    'rdrnet_s_simple': (8_719_424, 7_050_016, 75_347, 38_355),
    'rdrnet_s': (8_719_424, 7_050_016, 150_419, 76_563),
    'rdrnet_m': (30_418_816, 25_572_160, 298_131, 150_419),
    'rdrnet_l': (42_449_536, 36_057_280, 595_731, 300_563),
}
ISSUE_BACKBONE_M = {'rdrnet_s_simple': (8.72, 7.05), 'rdrnet_s': (8.72, 7.05), 'rdrnet_m': (30.42, 25.57),
                    'rdrnet_l': (42.45, 36.06)}
PUBLISHED_PARAMS_M = {'rdrnet_s_simple': 7.2, 'rdrnet_s': 7.3, 'rdrnet_m': 26.0, 'rdrnet_l': 36.9}
PUBLISHED_GFLOPS = {'rdrnet_s_simple': 41.0, 'rdrnet_s': 43.4, 'rdrnet_m': 162.0, 'rdrnet_l': 238.0}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Small inputs: one thread is fastest, and far faster than two on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope='module')
def models():
    """name -> (training graph, its switch_to_deploy copy), random weights and BN statistics, eval."""
    out = {}
    for name in NAMES:
        model = R.randomized(name)
        out[name] = (model, R.switch_to_deploy(copy.deepcopy(model)))
    return out


@pytest.mark.parametrize('name', NAMES)
def test_deployed_graph_gives_the_training_graph_logits(models, name):
    model, deployed = models[name]
    torch.manual_seed(1)
    for h, w in SIZES:
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            a, b = model(x), deployed(x)
        assert a.shape == b.shape == (2, 19, math.ceil(h / 8), math.ceil(w / 8))
        assert float(a.std()) > 0.05 * float(a.abs().max())  # not a degenerate (constant) map
        assert rel(b, a) < 1e-4, (name, h, w, rel(b, a))


def test_the_parity_check_sees_the_1x1_biases_and_the_bn_statistics(models):
    """The random model is sensitive to what a wrong fold would drop: the 1x1 path's conv
    biases and the BN running statistics."""
    model, _ = models['rdrnet_s_simple']
    x = torch.randn(1, 3, *SIZES[1])
    with torch.no_grad():
        ref = model(x)
        for what in ('bias', 'stats'):
            broken = copy.deepcopy(model)
            for n, m in broken.named_modules():
                if what == 'bias' and n.endswith('path_1x1.conv1.conv'):
                    m.bias.zero_()
                if what == 'stats' and isinstance(m, torch.nn.BatchNorm2d) and 'path_residual' in n:
                    m.running_mean.zero_()
                    m.running_var.fill_(1.0)
            assert rel(broken(x), ref) > 1e-3, what


@pytest.mark.parametrize('stride,cin,cout', [(1, 8, 8), (2, 8, 8), (2, 3, 8), (1, 8, 16)])
@pytest.mark.parametrize('act', [True, False])
def test_one_block_folds_exactly(stride, cin, cout, act):
    """RB alone in float64 (3x3 + 1x1-1x1 with biases + identity BN -> one 3x3 conv with bias),
    stride 2 included, odd input size."""
    torch.manual_seed(0)
    block = R.RB(cin, cout, stride, act).double()
    R._randomize_bn(block)
    block.eval()
    assert (block.path_residual is not None) == (cin == cout and stride == 1)
    x = torch.randn(2, cin, 11, 13, dtype=torch.float64)
    with torch.no_grad():
        ref = block(x)
        block.switch_to_deploy()
        assert sorted(block.state_dict()) == ['reparam_3x3.bias', 'reparam_3x3.weight']
        assert rel(block(x), ref) < 1e-12


def test_rppm_parallel_pair_folds_exactly():
    torch.manual_seed(0)
    rp = R.RepParallel(32, 32, 4).double()
    R._randomize_bn(rp)
    rp.eval()
    x = torch.randn(1, 32, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        ref = rp(x)
        rp.switch_to_deploy()
        assert rp.reparam_parallel.groups == 4 and tuple(rp.reparam_parallel.weight.shape) == (32, 8, 3, 3)
        assert rel(rp(x), ref) < 1e-12


@pytest.mark.parametrize('name', NAMES)
def test_checkpoint_keys_of_both_graphs(models, name):
    model, deployed = models[name]
    keys = model.state_dict()
    for k in ['backbone.stem.0.path_3x3.conv.weight', 'backbone.stem.2.path_residual.running_var',
              'backbone.stem.0.path_1x1.conv1.conv.bias', 'backbone.stem.0.path_1x1.conv2.bn.num_batches_tracked',
              'backbone.semantic_branch_layers.2.0.0.conv1.conv.weight',
              'backbone.semantic_branch_layers.2.0.0.downsample.1.running_mean',
              'backbone.detail_branch_layers.2.0.downsample.0.weight', 'backbone.compression_1.bn.weight',
              'backbone.down_2.1.conv.weight', 'backbone.spp.scales.4.1.bn.weight',
              'backbone.spp.processes.parallel2.bn.running_var', 'decode_head.head.0.bn.weight',
              'decode_head.head.1.running_mean', 'decode_head.conv_seg.bias', 'decode_head.aux_head.0.conv.weight',
              'decode_head.aux_cls_seg.weight']:
        assert k in keys, k
    assert 'backbone.stem.0.path_residual.weight' not in keys and 'backbone.stem.0.path_3x3.conv.bias' not in keys
    dkeys = deployed.state_dict()
    assert not [k for k in dkeys if 'path_' in k or 'parallel1' in k or 'parallel2' in k]
    rbs = [n for n, m in model.named_modules() if isinstance(m, R.RB)]
    assert {k[:-len('.reparam_3x3.weight')] for k in dkeys if k.endswith('reparam_3x3.weight')} == set(rbs)
    for k in ['backbone.spp.processes.reparam_parallel.weight', 'backbone.spp.processes.reparam_parallel.bias',
              'backbone.spp.processes.norm.weight', 'backbone.stem.0.reparam_3x3.bias']:
        assert k in dkeys, k
    # the release's deploy=True construction has the same keys and shapes, and loads the switched weights
    built = R.build(name, deploy=True).eval()
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()} == {k: tuple(v.shape) for k, v in dkeys.items()}
    built.load_state_dict(dkeys, strict=True)
    x = torch.randn(1, 3, *SIZES[1])
    with torch.no_grad():
        assert torch.equal(built(x), deployed(x))


def test_training_mode_returns_main_and_aux_logits_at_one_eighth():
    model = R.build('rdrnet_s_simple').train()
    out = model(torch.randn(2, 3, *SIZES[1]))
    assert isinstance(out, tuple) and [tuple(o.shape) for o in out] == [(2, 19, 9, 13)] * 2
    no_aux = R.build('rdrnet_s_simple', augment=False).train()
    assert not [k for k in no_aux.state_dict() if 'aux' in k]
    assert tuple(no_aux(torch.randn(2, 3, *SIZES[1])).shape) == (2, 19, 9, 13)


def test_batchnorm_settings_and_pooling():
    model = R.build('rdrnet_s')
    for n, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            expected = (0.1, 1e-5) if n.startswith('decode_head') else (0.03, 1e-3)
            assert (m.momentum, m.eps) == expected, n
        if isinstance(m, torch.nn.AvgPool2d):
            assert m.count_include_pad and not m.ceil_mode
    acts = [m.act for m in model.backbone.stem]
    assert all(acts)  # the stem's last block keeps its ReLU
    for layers in (model.backbone.semantic_branch_layers, model.backbone.detail_branch_layers):
        for stage in layers[:2]:
            assert [m.act for m in stage] == [True] * (len(stage) - 1) + [False]


@pytest.mark.parametrize('name', NAMES)
def test_parameter_counts(models, name):
    model, deployed = models[name]  # sizes do not depend on the weights
    bb, bb_deploy, head, aux = COUNTS[name]
    head_m = model.decode_head
    assert R.count_parameters(model.backbone) == bb
    assert R.count_parameters(head_m.head) + R.count_parameters(head_m.conv_seg) == head
    assert R.count_parameters(head_m.aux_head) + R.count_parameters(head_m.aux_cls_seg) == aux
    assert R.count_parameters(deployed.backbone) == bb_deploy
    assert (round(bb / 1e6, 2), round(bb_deploy / 1e6, 2)) == ISSUE_BACKBONE_M[name]
    total = R.count_parameters(deployed)
    assert total == bb_deploy + head + aux
    assert abs(total / 1e6 - PUBLISHED_PARAMS_M[name]) < 0.06  # L: 36.95 published as 36.9


@pytest.mark.parametrize('name', NAMES)
def test_deployed_gmacs_match_the_published_gflops(models, name):
    gmacs = R.count_macs(models[name][1], (1, 3, 1024, 2048)) / 1e9
    assert abs(gmacs / PUBLISHED_GFLOPS[name] - 1) < 0.01, gmacs
