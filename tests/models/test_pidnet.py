"""PIDNet against an independent PyTorch re-implementation of the release
(tools/reference/torch_pidnet.py, checked once against the release's own code): converted
weights give the release's three heads, the model-owned loss equals the release's formula,
the edge transform equals the release's recipe; sizes exact."""
import copy

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch')
import torch.nn.functional as TF  # noqa: E402

import convert_weights  # noqa: E402  (tools/)
import torch_pidnet  # noqa: E402  (tools/reference/)

from paddleseg_ddr.datasets.transforms import AddEdgeLabel  # noqa: E402
from paddleseg_ddr.losses import BoundaryBCELoss, DDRCrossEntropyLoss, DDROhemCrossEntropyLoss  # noqa: E402
from paddleseg_ddr.models import create_model, reparameterize  # noqa: E402
from paddleseg_ddr.models.complexity import count_parameters  # noqa: E402
from paddleseg_ddr.utils.weights import load_model_weights  # noqa: E402

VARIANTS = ['pidnet_s', 'pidnet_m', 'pidnet_l']
SIZES = [(64, 128), (72, 104)]  # multiples of 8 (the release runs only on those); 72x104 not of 64
# Issue 12's figures (M): with the training heads / inference graph.
SIZES_M = {'pidnet_s': (7.72, 7.63), 'pidnet_m': (28.76, 28.54), 'pidnet_l': (37.31, 36.94)}


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def close(ours, ref, rel=1e-4):
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= rel * np.abs(ref).max(), np.abs(ours - ref).max() / np.abs(ref).max()


def up(t, size):
    return TF.interpolate(t, size=size, mode='bilinear', align_corners=True).numpy()


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """Each variant's random release model, saved as the release saves Cityscapes checkpoints
    (``model.``-prefixed keys and the loss's class weights), converted with the tool."""
    out = {}
    folder = tmp_path_factory.mktemp('pidnet')
    for name in VARIANTS:
        reference = torch_pidnet.randomized(name, augment=True)
        state = {'model.' + k: v for k, v in reference.state_dict().items()}
        state['sem_loss.criterion.weight'] = torch.ones(19)
        src, dst = str(folder / f'{name}.pt'), str(folder / f'{name}.pdparams')
        torch.save(state, src)
        report = convert_weights.main(['--src', src, '--model', name, '--kind', 'cityscapes', '--dst', dst])
        assert report['left_at_init'] == [] and report['dropped'] == ['sem_loss.criterion.weight']
        out[name] = (reference, dst)
    return out


@pytest.mark.parametrize('name', VARIANTS)
def test_sizes_equal_the_release(name):
    with_heads, inference = create_model(name, aux_head=True), create_model(name, aux_head=False)
    assert count_parameters(with_heads) == torch_pidnet.count_parameters(torch_pidnet.build(name, augment=True))
    assert count_parameters(inference) == torch_pidnet.count_parameters(torch_pidnet.build(name, augment=False))
    assert (round(count_parameters(with_heads) / 1e6, 2), round(count_parameters(inference) / 1e6, 2)) == SIZES_M[name]


@pytest.mark.parametrize('name', VARIANTS)
def test_converted_weights_give_the_release_heads(converted, name):
    """Eval: the main logits at two sizes, then fused; training mode (batch statistics): all
    three heads (main, P, boundary), within 1e-4 relative."""
    reference, dst = converted[name]
    model = create_model(name, 19, aux_head=True)
    load_model_weights(model, dst)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 3, *s)).astype(np.float32) for s in SIZES]
    model.eval()
    reference.eval()
    with torch.no_grad():
        expected = [up(reference(torch.from_numpy(x)), x.shape[2:]) for x in inputs]
    fused = reparameterize(copy.deepcopy(model))  # export's fused graph: the same main logits
    with paddle.no_grad():
        for x, ref in zip(inputs, expected):
            close(model(paddle.to_tensor(x))[0].numpy(), ref)
            close(fused(paddle.to_tensor(x))[0].numpy(), ref)
    # 128x192: the I branch keeps 2x3 pixels at 1/64, enough for its batch statistics (at 64x96
    # its 1x2 maps make BN amplify float rounding to ~3e-4 on the main head; P and D stay ~1e-5)
    x = rng.normal(size=(2, 3, 128, 192)).astype(np.float32)
    reference.train()
    model.train()
    with torch.no_grad():
        p, main, d = (up(o, x.shape[2:]) for o in reference(torch.from_numpy(x)))
    with paddle.no_grad():
        ours = [o.numpy() for o in model(paddle.to_tensor(x))]
    for a, b in zip(ours, (main, p, d)):
        close(a, b)


def test_edge_label_is_the_releases(mini_root):
    import glob

    import cv2
    path = sorted(glob.glob(f'{mini_root}/gtFine/train/*/*_gtFine_labelTrainIds.png'))[0]
    label = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    data = AddEdgeLabel()({'img': np.zeros(label.shape + (3,), np.float32), 'label': label, 'gt_fields': ['label']})
    expected = torch_pidnet.edge_label(label)
    assert data['gt_fields'] == ['label', 'edge'] and 0.01 < expected.mean() < 0.5
    np.testing.assert_array_equal(data['edge'], expected.astype(np.uint8))


def test_model_owned_loss_equals_the_release_formula():
    """compute_loss on a fixed batch (with the configs' four loss terms) equals the release's
    total computed by the reference from the same logits; min_kept below the pixel count so
    OHEM really selects; the boundary-aware term is non-trivial."""
    rng = np.random.default_rng(3)
    n, c, h, w = 2, 19, 32, 48
    weights = rng.uniform(0.8, 1.2, c).tolist()
    logits = [rng.normal(size=(n, c, h, w)) * 3, rng.normal(size=(n, c, h, w)) * 3, rng.normal(size=(n, 1, h, w)) * 3]
    logits = [x.astype(np.float32) for x in logits]
    label = rng.integers(0, c, (n, h, w))
    label[:, :4] = 255
    edge = (rng.random((n, h, w)) < 0.2).astype(np.uint8)
    min_kept = n * h * w // 4
    losses = {'types': [DDRCrossEntropyLoss(weight=weights, avg_non_ignore=False),
                        DDROhemCrossEntropyLoss(0.9, min_kept, weights), BoundaryBCELoss(),
                        DDROhemCrossEntropyLoss(0.9, min_kept, weights)],
              'coef': [0.4, 1.0, 20.0, 1.0]}
    model = create_model('pidnet_s', aux_head=True)
    total, terms = model.compute_loss([paddle.to_tensor(x) for x in (logits[1], logits[0], logits[2])],
                                      {'label': paddle.to_tensor(label), 'edge': paddle.to_tensor(edge)}, losses)
    ref = torch_pidnet.pidnet_loss_terms([torch.from_numpy(x) for x in logits], torch.from_numpy(label),
                                         torch.from_numpy(edge.astype(np.float64)), weights, min_kept=min_kept)
    for ours, key in zip(terms, ('p', 'main', 'boundary', 'boundary_aware')):
        assert float(ours) == pytest.approx(float(ref[key]), rel=1e-5), key
    assert float(total) == pytest.approx(sum(float(v) for v in ref.values()), rel=1e-5)
    assert float(ref['boundary_aware']) > 0


def test_imagenet_weights_initialise_the_shared_layers(tmp_path):
    """The release's ImageNet file (``state_dict`` of the classification network: the trunk
    without the D branch and the heads, plus its classifier) -> --kind imagenet: every layer
    they share loads, the D branch and heads stay at initialisation, the classifier is dropped."""
    reference = torch_pidnet.randomized('pidnet_s', augment=True)
    trunk = {k: v for k, v in reference.state_dict().items()
             if not k.startswith(('seghead_', 'final_layer', 'layer3_d', 'layer4_d', 'layer5_d', 'diff', 'dfm'))}
    trunk['linear.weight'] = torch.zeros(1000, 1024)
    src, dst = str(tmp_path / 'PIDNet_S_ImageNet.pth.tar'), str(tmp_path / 'imagenet.pdparams')
    torch.save({'state_dict': trunk, 'epoch': 120}, src)
    report = convert_weights.main(['--src', src, '--model', 'pidnet_s', '--kind', 'imagenet', '--dst', dst])
    assert report['dropped'] == ['linear.weight']
    assert {k.split('.')[0] for k in report['left_at_init']} == {
        'seghead_p', 'seghead_d', 'final_layer', 'layer3_d', 'layer4_d', 'layer5_d', 'diff3', 'diff4', 'dfm'}
    model = create_model('pidnet_s', pretrained=dst)
    np.testing.assert_array_equal(model.state_dict()['pag3.f_x.0.weight'].numpy(),
                                  reference.state_dict()['pag3.f_x.0.weight'].numpy())


def test_loss_configuration_mistakes_are_explained():
    from paddleseg_ddr.errors import UserError
    model = create_model('pidnet_s', aux_head=True)
    logits = [paddle.zeros([1, 19, 8, 8]), paddle.zeros([1, 19, 8, 8]), paddle.zeros([1, 1, 8, 8])]
    batch = {'label': paddle.zeros([1, 8, 8], 'int64')}
    two = {'types': [DDROhemCrossEntropyLoss(), DDROhemCrossEntropyLoss()], 'coef': [1, 0.4]}
    with pytest.raises(UserError, match='four loss terms'):
        model.compute_loss(logits, batch, two)
    four = {'types': [DDRCrossEntropyLoss(), DDROhemCrossEntropyLoss(), BoundaryBCELoss(), DDROhemCrossEntropyLoss()],
            'coef': [0.4, 1, 20, 1]}
    with pytest.raises(UserError, match='AddEdgeLabel'):
        model.compute_loss(logits, batch, four)
