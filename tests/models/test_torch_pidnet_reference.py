"""Self-checks of tools/reference/torch_pidnet.py, the test-only PyTorch re-implementation of
the PIDNet release (github.com/XuJiacong/PIDNet) that the Paddle port is checked against:
names of the released checkpoints, the sizes the issue measured on the release, the published
cost, the block facts the port must reproduce, the edge label on a hand-made label, and the
loss against a second, plain NumPy computation of the same formula."""
import numpy as np
import pytest

torch = pytest.importorskip('torch')
import torch_pidnet as R  # noqa: E402  (tools/reference/, on pytest's pythonpath)

NAMES = list(R.VARIANTS)

# measured on the reference (equal to the release's modules: same keys, bit-identical outputs);
# the issue's figures are these rounded to 0.01 M
COUNTS = {  # with the training heads (seghead_p, seghead_d), inference graph (augment=False)
    'pidnet_s': (7_720_935, 7_625_715),
    'pidnet_m': (28_763_111, 28_538_515),
    'pidnet_l': (37_314_311, 36_939_571),
}
ISSUE_M = {'pidnet_s': (7.72, 7.63), 'pidnet_m': (28.76, 28.54), 'pidnet_l': (37.31, 36.94)}
PUBLISHED_GFLOPS = {'pidnet_s': 47.3, 'pidnet_m': 177.0, 'pidnet_l': 275.0}
MEASURED_GMACS = {'pidnet_s': 47.194226688, 'pidnet_m': 177.328717824, 'pidnet_l': 274.933465088}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Small inputs: one thread is fastest, and far faster than two on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def models():
    """name -> (training graph, inference graph), random weights and BN statistics, eval."""
    return {name: (R.randomized(name, True), R.randomized(name, False)) for name in NAMES}


# ----------------------------------------------------------------------------- structure

COMMON_KEYS = [
    'conv1.0.weight', 'conv1.0.bias', 'conv1.1.running_mean', 'conv1.3.weight', 'conv1.3.bias', 'conv1.4.weight',
    'layer1.0.conv1.weight', 'layer1.1.bn2.num_batches_tracked', 'layer2.0.downsample.0.weight',
    'layer2.0.downsample.1.running_var', 'layer3.2.bn2.bias', 'layer5.0.conv3.weight', 'layer5.0.downsample.1.weight',
    'layer5.1.bn3.running_mean', 'compression3.0.weight', 'compression4.1.running_var', 'pag3.f_x.0.weight',
    'pag3.f_y.1.weight', 'pag4.f_x.1.running_mean', 'layer3_.1.conv2.weight', 'layer5_.0.downsample.0.weight',
    'layer3_d.conv1.weight', 'layer3_d.bn2.weight', 'diff3.0.weight', 'diff4.1.bias', 'layer5_d.0.conv3.weight',
    'spp.scale1.1.running_mean', 'spp.scale1.3.weight', 'spp.scale4.3.weight', 'spp.scale0.0.weight',
    'spp.scale0.2.weight', 'spp.compression.0.weight', 'spp.compression.2.weight', 'spp.shortcut.2.weight',
    'seghead_p.bn1.weight', 'seghead_p.conv1.weight', 'seghead_p.bn2.running_var', 'seghead_p.conv2.bias',
    'seghead_d.conv2.weight', 'final_layer.bn1.weight', 'final_layer.conv1.weight', 'final_layer.conv2.bias',
]
VARIANT_KEYS = {  # m == 2 (S, M): Light_Bag, PAPPM, D branch Basic(2p->p)+Bottleneck; m == 3 (L): Bag, DAPPM
    'pidnet_s': ['layer3_d.downsample.0.weight', 'layer4_d.0.conv1.weight', 'layer4_d.0.downsample.1.weight',
                 'spp.scale_process.0.weight', 'spp.scale_process.2.weight', 'dfm.conv_p.0.weight',
                 'dfm.conv_i.1.running_var'],
    'pidnet_l': ['layer4_d.conv1.weight', 'layer4_d.bn2.weight', 'layer3.3.conv1.weight', 'layer1.2.conv1.weight',
                 'spp.process1.0.weight', 'spp.process4.2.weight', 'dfm.conv.0.weight', 'dfm.conv.2.weight'],
}
SHAPES = {  # PIDNet-S
    'conv1.0.weight': (32, 3, 3, 3), 'conv1.0.bias': (32,), 'layer3_d.conv1.weight': (32, 64, 3, 3),
    'layer3_d.downsample.0.weight': (32, 64, 1, 1), 'layer4_d.0.conv3.weight': (64, 32, 1, 1),
    'layer4_d.0.downsample.0.weight': (64, 32, 1, 1), 'diff3.0.weight': (32, 128, 3, 3),
    'diff4.0.weight': (64, 256, 3, 3), 'pag3.f_x.0.weight': (32, 64, 1, 1), 'layer5.0.conv2.weight': (256, 256, 3, 3),
    'layer5.0.downsample.0.weight': (512, 256, 1, 1), 'spp.scale0.2.weight': (96, 512, 1, 1),
    'spp.scale_process.2.weight': (384, 96, 3, 3), 'spp.compression.2.weight': (128, 480, 1, 1),
    'dfm.conv_p.0.weight': (128, 128, 1, 1), 'seghead_d.conv1.weight': (32, 64, 3, 3),
    'seghead_d.conv2.weight': (1, 32, 1, 1), 'seghead_p.conv1.weight': (128, 64, 3, 3),
    'final_layer.conv1.weight': (128, 128, 3, 3), 'final_layer.conv2.weight': (19, 128, 1, 1),
}


@pytest.mark.parametrize('name', NAMES)
def test_checkpoint_keys(models, name):
    train, infer = models[name]
    keys, ikeys = train.state_dict(), infer.state_dict()
    for k in COMMON_KEYS + VARIANT_KEYS['pidnet_l' if name == 'pidnet_l' else 'pidnet_s']:
        assert k in keys, k
    other = VARIANT_KEYS['pidnet_s' if name == 'pidnet_l' else 'pidnet_l']
    assert not [k for k in other if k in keys]
    # the inference graph is the training graph without the two auxiliary heads, same order
    assert list(ikeys) == [k for k in keys if not k.startswith(('seghead_p.', 'seghead_d.'))]
    # conv biases: only the two stem convolutions and the heads' 1x1 classifiers
    biased = sorted(n for n, m in train.named_modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)
    assert biased == ['conv1.0', 'conv1.3', 'final_layer.conv2', 'seghead_d.conv2', 'seghead_p.conv2']
    if name == 'pidnet_s':
        assert {k: tuple(keys[k].shape) for k in SHAPES} == SHAPES
    if name == 'pidnet_l':  # no layer3.4 (n = 4 blocks: 0..3), the D branch has no downsample
        assert 'layer3.4.conv1.weight' not in keys and not [k for k in keys if k.startswith('layer3_d.downsample')]
        assert tuple(keys['spp.compression.2.weight'].shape) == (256, 560, 1, 1)


def test_the_stored_forms_load():
    """Cityscapes .pt: FullModel's state_dict, i.e. ``model.<key>``; ImageNet .pth.tar: keys under
    'state_dict' (loaded by name and shape). Both reduce to the reference's keys."""
    model = R.build('pidnet_s')
    sd = model.state_dict()
    city = {'model.' + k: v for k, v in sd.items()}
    R.build('pidnet_s').load_state_dict({k[len('model.'):]: v for k, v in city.items()}, strict=True)
    R.build('pidnet_s', augment=False).load_state_dict(
        {k[len('model.'):]: v for k, v in city.items() if not k.startswith(('model.seghead_p', 'model.seghead_d'))},
        strict=True)


def test_blocks_without_output_relu_and_batchnorm_settings():
    model = R.build('pidnet_l')
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4, model.layer3_, model.layer4_):
        assert [b.no_relu for b in layer] == [False] * (len(layer) - 1) + [True]
    for n, m in model.named_modules():
        if isinstance(m, R.Bottleneck):
            assert m.no_relu, n
        if isinstance(m, torch.nn.BatchNorm2d):
            assert (m.momentum, m.eps) == (0.1, 1e-5), n
        if isinstance(m, torch.nn.AvgPool2d):
            assert m.count_include_pad and not m.ceil_mode
    assert model.layer3_d.no_relu and model.layer4_d.no_relu and isinstance(model.layer4_d, R.BasicBlock)
    small = R.build('pidnet_s')
    assert small.layer3_d.no_relu and isinstance(small.layer4_d[0], R.Bottleneck)
    assert small.spp.scale_process[2].groups == 4 and isinstance(small.dfm, R.LightBag)
    assert len(model.layer5) == len(small.layer5) == 2 and len(small.layer5_) == len(small.layer5_d) == 1


# ----------------------------------------------------------------------------- outputs

@pytest.mark.parametrize('name', NAMES)
def test_outputs_at_one_eighth(models, name):
    train, infer = models[name]
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        heads = train(x, all_heads=True)
        main = train(x)
        alone = infer(x)
    assert [tuple(h.shape) for h in heads] == [(2, 19, 8, 12), (2, 19, 8, 12), (2, 1, 8, 12)]
    assert torch.equal(main, heads[1])
    # the inference graph with the same weights gives the same main logits
    infer2 = R.build(name, augment=False).eval()
    infer2.load_state_dict({k: v for k, v in train.state_dict().items() if not k.startswith('seghead_')})
    with torch.no_grad():
        assert torch.equal(infer2(x), main)
    assert tuple(alone.shape) == (2, 19, 8, 12)
    for h in heads:
        assert float(h.std()) > 0.05 * float(h.abs().max())  # not degenerate


def test_training_mode_returns_three_heads_eval_one():
    model = R.build('pidnet_s').train()
    out = model(torch.randn(2, 3, 32, 48))
    assert isinstance(out, list) and [tuple(o.shape) for o in out] == [(2, 19, 4, 6), (2, 19, 4, 6), (2, 1, 4, 6)]
    model.eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 32, 48)).shape) == (1, 19, 4, 6)
    no_aux = R.build('pidnet_s', augment=False).train()
    assert tuple(no_aux(torch.randn(2, 3, 32, 48)).shape) == (2, 19, 4, 6)


def test_sizes_not_multiple_of_eight_fail_as_in_the_release():
    """floor(H/8) for the resized I-branch maps, ceil(H/8) for the D branch: only multiples of 8 run."""
    model = R.build('pidnet_s', augment=False).eval()
    with torch.no_grad(), pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 60, 64))


def test_the_p_and_d_heads_read_relu_features(models):
    """The release's in-place ReLU on the aliased temp_p / temp_d: both heads see x >= 0."""
    train, _ = models['pidnet_m']
    seen = {}
    hooks = [getattr(train, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, float(i[0].min())))
             for n in ('seghead_p', 'seghead_d', 'final_layer')]
    with torch.no_grad():
        train(torch.randn(1, 3, 32, 64), all_heads=True)
    for h in hooks:
        h.remove()
    assert seen['seghead_p'] >= 0 and seen['seghead_d'] >= 0 and seen['final_layer'] < 0


# ----------------------------------------------------------------------------- sizes and cost

@pytest.mark.parametrize('name', NAMES)
def test_parameter_counts(models, name):
    train, infer = models[name]
    with_heads, inference = COUNTS[name]
    assert R.count_parameters(train) == with_heads
    assert R.count_parameters(infer) == inference
    assert (round(with_heads / 1e6, 2), round(inference / 1e6, 2)) == ISSUE_M[name]


@pytest.mark.parametrize('name', NAMES)
def test_inference_gmacs_match_the_published_gflops(models, name):
    gmacs = R.count_macs(models[name][1], (1, 3, 1024, 2048)) / 1e9
    assert abs(gmacs - MEASURED_GMACS[name]) < 1e-9
    assert abs(gmacs / PUBLISHED_GFLOPS[name] - 1) < 0.005, gmacs


# ----------------------------------------------------------------------------- edge label

def test_edge_label_on_a_hand_made_label():
    """A vertical step between columns 15 | 16 of a 32x32 label. By hand: Canny marks the last
    column of the lower-index side (OpenCV's non-maximum suppression keeps m > left and m >= right)
    on every row; the 6-pixel frame is cleared (rows 6..25 stay); the 4x4 dilation (anchor 2:
    dst(r, c) = max src(r-2..r+1, c-2..c+1)) lights rows r-1..r+2 and columns c-1..c+2 of every
    edge pixel: rows 5..27, columns 14..17."""
    label = np.ones((32, 32), np.uint8)
    label[:, 16:] = 2
    expected = np.zeros((32, 32))
    expected[5:28, 14:18] = 1.0
    edge = R.edge_label(label)
    assert edge.dtype == np.float64 and edge.shape == label.shape
    np.testing.assert_array_equal(edge, expected)
    # the same for a horizontal step into the ignore value (255 is a label like any other)
    label = np.ones((32, 32), np.uint8)
    label[20:] = 255
    expected = np.zeros((32, 32))
    expected[18:22, 5:28] = 1.0
    np.testing.assert_array_equal(R.edge_label(label), expected)
    # a constant label has no edge; the frame hides a step that lies within it
    assert R.edge_label(np.full((32, 32), 7, np.uint8)).sum() == 0
    near = np.ones((32, 32), np.uint8)
    near[:, 3:] = 0
    assert R.edge_label(near).sum() == 0


# ----------------------------------------------------------------------------- loss vs NumPy

def np_resize_align_corners(x, size):
    """Bilinear, align_corners=True: output i samples input i * (in - 1) / (out - 1)."""
    def axis_weights(n_in, n_out):
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        i0 = np.clip(np.floor(src).astype(int), 0, n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0
    (h0, h1, fh), (w0, w1, fw) = axis_weights(x.shape[2], size[0]), axis_weights(x.shape[3], size[1])
    rows = x[:, :, h0] * (1 - fh)[None, None, :, None] + x[:, :, h1] * fh[None, None, :, None]
    return rows[..., w0] * (1 - fw) + rows[..., w1] * fw


def np_log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def np_ohem(logits, label, w, ignore, thresh, min_kept):
    logp = np_log_softmax(logits)  # N, C, H, W
    lab = np.where(label == ignore, 0, label)
    logp_y = np.take_along_axis(logp, lab[:, None], 1)[:, 0]
    valid = label != ignore
    if not valid.any():
        return 0.0
    losses = (-logp_y * w[lab])[valid]
    prob = np.exp(logp_y)[valid]
    kth = np.sort(prob)[min(min_kept, prob.size - 1)]
    return losses[prob < max(kth, thresh)].mean()


def np_pidnet_loss(p, main, d, label, edge, w, ignore=255, thresh=0.9, min_kept=131072):
    size = label.shape[1:]
    p, main, d = (np_resize_align_corners(o, size) for o in (p, main, d))
    lab = np.where(label == ignore, 0, label)
    ce_p = np.where(label == ignore, 0.0, -np.take_along_axis(np_log_softmax(p), lab[:, None], 1)[:, 0] * w[lab])
    x, t = d[:, 0], edge
    n_pos, n_neg = (t == 1).sum(), (t == 0).sum()
    weight = np.where(t == 1, n_neg / (n_pos + n_neg), np.where(t == 0, n_pos / (n_pos + n_neg), 0.0))
    bce = weight * (np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))
    bd_label = np.where(1 / (1 + np.exp(-x)) > 0.8, label, ignore)
    return {'p': 0.4 * ce_p.mean(), 'main': np_ohem(main, label, w, ignore, thresh, min_kept),
            'boundary': 20.0 * bce.mean(), 'boundary_aware': np_ohem(main, bd_label, w, ignore, thresh, min_kept)}


@pytest.mark.parametrize('case', [
    dict(scale=1.0, min_kept=131072),  # min_kept beyond the pixel count: the kth is the largest p
    dict(scale=1.0, min_kept=20),      # threshold 0.9 wins
    dict(scale=6.0, min_kept=100),     # peaked logits: many p > 0.9, the kth probability wins
])
def test_loss_equals_a_numpy_computation(case):
    rng = np.random.default_rng(0)
    n, c, h, w, H, W = 2, 5, 4, 6, 14, 22
    p = rng.standard_normal((n, c, h, w)) * case['scale']
    main = rng.standard_normal((n, c, h, w)) * case['scale']
    d = rng.standard_normal((n, 1, h, w)) * 3.0
    label = rng.integers(0, c, (n, H, W))
    label[:, :3] = 255
    edge = (rng.random((n, H, W)) < 0.15).astype(np.float64)
    weights = np.array([0.8, 1.2, 1.0, 0.9, 1.1])
    expected = np_pidnet_loss(p, main, d, label, edge, weights, min_kept=case['min_kept'])
    t = [torch.tensor(a) for a in (p, main, d)]
    terms = R.pidnet_loss_terms(t, torch.tensor(label), torch.tensor(edge), weights, min_kept=case['min_kept'])
    assert set(terms) == set(expected)
    for k in expected:
        assert abs(float(terms[k]) - expected[k]) <= 1e-9 * max(1.0, abs(expected[k])), (k, float(terms[k]), expected[k])
    total = R.pidnet_loss(t, torch.tensor(label), torch.tensor(edge), weights, min_kept=case['min_kept'])
    assert abs(float(total) - sum(expected.values())) < 1e-9 * sum(expected.values())
    assert expected['boundary_aware'] > 0  # the boundary-aware term selected pixels


def test_loss_term_details():
    """The P term counts ignored pixels in its mean (not PyTorch's weighted mean); the
    boundary-aware term is 0 when no pixel is confidently on a boundary (the release raises)."""
    torch.manual_seed(0)
    n, c, H, W = 1, 3, 8, 8
    outs = [torch.randn(n, c, H, W), torch.randn(n, c, H, W), torch.full((n, 1, H, W), -5.0)]
    label = torch.randint(0, c, (n, H, W))
    label[:, :4] = 255
    weights = torch.tensor([1.0, 2.0, 0.5])
    terms = R.pidnet_loss_terms(outs, label, torch.zeros(n, H, W), weights)
    half = torch.nn.functional.cross_entropy(outs[0], label, weight=weights, ignore_index=255, reduction='sum') / (H * W)
    assert torch.allclose(terms['p'], 0.4 * half)
    assert float(terms['boundary_aware']) == 0.0
