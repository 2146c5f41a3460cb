"""DGCNet (the GALD-DGCNet release's Dual-Seg): sizes equal the release's, a released-format
checkpoint converts and gives the release's logits (an independent PyTorch re-implementation,
tools/reference/torch_dgcnet.py, with random weights and BN statistics; that reference was
checked key for key and output for output against the release's own code, see
tools/reference/DGCNET_FACTS.md), and wrong files are refused before anything is loaded."""
import collections

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch')
import torch.nn.functional as TF  # noqa: E402

import torch_dgcnet  # noqa: E402  (tools/reference/)

from paddleseg_ddr.errors import UserError  # noqa: E402
from paddleseg_ddr.models import create_model, get_variant, list_variants  # noqa: E402
from paddleseg_ddr.models.complexity import count_macs, count_parameters  # noqa: E402

# The issue's figures (19 classes): (without dsn, with dsn), in millions.
ISSUE = {'dgcnet_r50': (48.78, 53.51), 'dgcnet_r101': (67.78, 72.51)}
SIZES = [(63, 98), (65, 97)]  # 63 -> stem 32: ceil_mode adds a row; odd widths


def trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.mark.parametrize('name', list(ISSUE))
def test_parameters_equal_the_releases(name):
    """Counted on the torch reference (meta device) and on ours built lazily (shapes only)."""
    counts = []
    for aux, issue in zip((False, True), ISSUE[name]):
        with torch.device('meta'):
            reference = torch_dgcnet.DualSeg(torch_dgcnet.DEPTHS[name], 19, dsn=aux)
        with paddle.LazyGuard():
            ours = create_model(name, 19, aux_head=aux)
        counts.append(trainable(ours))
        assert counts[-1] == torch_dgcnet.count_params(reference), (name, aux)
        assert round(counts[-1] / 1e6, 2) == issue, (name, aux)
    assert get_variant(name).params == counts[0]


def test_registered_variants():
    assert [(v.name, v.model_type) for v in list_variants('DGCNet')] == [
        ('dgcnet_r50', 'DGCNet_R50'), ('dgcnet_r101', 'DGCNet_R101')]
    for v in list_variants('DGCNet'):
        assert v.convert is not None and v.reference == ('torch_dgcnet', v.name) and v.gmacs
    assert get_variant('dgcnet_r101').published['cityscapes_test_miou'] == 82.0


@pytest.fixture(scope='module')
def release():
    """(reference model, path of its checkpoint saved as the release saves it + module. prefix)."""
    return torch_dgcnet.randomized('dgcnet_r50', augment=True)


@pytest.fixture(scope='module')
def checkpoint(release, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('dgcnet') / 'DualSeg_res50_final.pth')
    torch.save(collections.OrderedDict(('module.' + k, v) for k, v in release.state_dict().items()), path)
    return path


@pytest.fixture(scope='module')
def model():
    paddle.seed(0)
    return create_model('dgcnet_r50', 19, aux_head=True)


def test_converted_checkpoint_gives_the_releases_logits(release, checkpoint, model):
    """Main logits (upsampled with align_corners=True, as the release's loss and eval.py) and the
    dsn branch (no ReLU after its BN) within 1e-4 relative; outputs do depend on the input."""
    report = get_variant('dgcnet_r50').convert(model, checkpoint)
    assert report['dropped'] == [] and report['left_at_init'] == []
    model.eval()
    rng = np.random.default_rng(0)
    outs = []
    for size in SIZES:
        x = rng.normal(size=(1, 3, *size)).astype(np.float32)
        with torch.no_grad():
            _, _, layer3, layer4 = release.features(torch.from_numpy(x))  # release(x)[0] is head(layer4)
            ref = TF.interpolate(release.head(layer4), size=size, mode='bilinear', align_corners=True).numpy()
            ref_dsn = release.dsn(layer3).numpy()
        with paddle.no_grad():
            ours = model(paddle.to_tensor(x))[0].numpy()
            ours_dsn = model.dsn(paddle.to_tensor(layer3.numpy())).numpy()
        assert ours.shape == ref.shape == (1, 19, *size)
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), size
        assert np.abs(ours_dsn - ref_dsn).max() <= 1e-4 * np.abs(ref_dsn).max(), size
        outs.append(ref[..., :63, :97])
    assert np.abs(outs[0] - outs[1]).max() > 100 * 1e-4 * np.abs(outs[0]).max()


def test_training_returns_main_and_dsn_logits_at_input_size(model):
    model.train()
    x = paddle.randn([2, 3, 40, 56])
    out = model(x)
    assert len(out) == 2 and all(o.shape == [2, 19, 40, 56] for o in out)
    model.eval()
    with paddle.no_grad():
        assert len(model(x)) == 1


@pytest.mark.parametrize('name', list(ISSUE))
def test_registered_gmacs_are_the_releases_conv_macs_at_1024x2048(name):
    """Counted on the torch reference on the meta device (shapes only, so 1024x2048 is free).
    The max-pool's ceil_mode makes layer2-4 129x257 there, not 128x256."""
    with torch.device('meta'):
        reference = torch_dgcnet.DualSeg(torch_dgcnet.DEPTHS[name], 19, dsn=False).eval()
    assert round(torch_dgcnet.conv_macs(reference, (1, 3, 1024, 2048)) / 1e9, 1) == get_variant(name).gmacs


def test_complexity_counts_what_the_reference_counts(model):
    """models/complexity.py on ours equals the reference's count at a small size (the dsn head,
    training only, is not run in eval mode and not counted)."""
    assert count_parameters(model) == 53_514_470  # on a built model, dsn included
    with torch.device('meta'):
        reference = torch_dgcnet.DualSeg(torch_dgcnet.DEPTHS['dgcnet_r50'], 19, dsn=True).eval()
    assert count_macs(model, (1, 3, 63, 98)) == torch_dgcnet.conv_macs(reference, (1, 3, 63, 98))


def test_other_class_count_keeps_the_rest(release, checkpoint, model, tmp_path):
    """A 7-class checkpoint converts into the 19-class model: both classifiers are dropped and
    left at init, everything else loads (fine-tuning on another dataset)."""
    sd = collections.OrderedDict(release.state_dict())
    for key in ('head.bottleneck.3.weight', 'head.bottleneck.3.bias', 'dsn.3.weight', 'dsn.3.bias'):
        sd[key] = sd[key][:7].clone()
    path = str(tmp_path / 'seven.pth')
    torch.save({'state_dict': sd}, path)
    report = get_variant('dgcnet_r50').convert(model, path)
    assert sorted(report['left_at_init']) == sorted(report['dropped']) == sorted(
        ['head.bottleneck.3.weight', 'head.bottleneck.3.bias', 'dsn.3.weight', 'dsn.3.bias'])


def test_wrong_files_are_refused_before_loading(release, model, tmp_path):
    before = model.state_dict()['backbone.layer1.0.conv1.weight'].numpy().copy()
    convert = get_variant('dgcnet_r50').convert
    sd = release.state_dict()
    # the R101 layout (more layer3 blocks): refused, nothing loaded
    r101_like = collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith('layer1.0.'))
    r101_like['layer3.6.conv1.weight'] = torch.zeros(256, 1024, 1, 1)
    path = str(tmp_path / 'resnet101-deep.pth')
    torch.save(r101_like, path)
    with pytest.raises(UserError, match=r'does not fit the ResNet-50 backbone.*it has 1 the model lacks '
                                        r'\(backbone.layer3.6.conv1.weight.*other depth'):
        convert(model, path)
    assert np.array_equal(model.state_dict()['backbone.layer1.0.conv1.weight'].numpy(), before)
    # not a checkpoint at all
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(UserError):
        convert(model, str(text))
    # a checkpoint of another family (DDRNet also has conv1.* and layer1.* keys)
    from torch_ddrnet import randomized as ddrnet
    path = str(tmp_path / 'ddrnet.pth')
    torch.save(ddrnet('ddrnet23_slim', False).state_dict(), path)
    with pytest.raises(UserError, match='does not fit|GALD-DGCNet'):
        convert(model, path)
    with pytest.raises(UserError, match='checkpoint not found'):
        convert(model, str(tmp_path / 'missing.pth'))
    assert np.array_equal(model.state_dict()['backbone.layer1.0.conv1.weight'].numpy(), before)


@pytest.mark.parametrize('config, model_type, iters', [
    ('dgcnet/dgcnet_r101_cityscapes_832x832_60k.yml', 'DGCNet_R101', 60000),
    ('dgcnet/dgcnet_r50_cityscapes_832x832_50k.yml', 'DGCNet_R50', 50000),
    ('quickstart/dgcnet_r50_mini_cityscapes.yml', 'DGCNet_R50', 100)])
def test_configs_are_the_releases_recipe(config, model_type, iters):
    """exp/train_dualseg_r_{50,101}_city_finetrain.sh, train_distribute.py and libs/core/loss.py:
    OHEM (0.7, 100000 per card of 1 image) on the main logits + 0.4 CE on dsn, SGD 0.01 poly 0.9,
    weight decay 5e-4, crop 832, scale 0.7-2.1; the config builds its model."""
    import os

    from paddleseg_ddr.engine import Builder, load_config
    root = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
    cfg = load_config(os.path.join(root, config), opts=['model.pretrained=None'])
    dic = cfg.dic
    assert dic['model']['type'] == model_type and dic['iters'] == iters and dic['model']['aux_head']
    (ohem, ce), coef = dic['loss']['types'], dic['loss']['coef']
    assert (ohem['type'], ohem['thresh'], ce['type'], coef) == ('DDROhemCrossEntropyLoss', 0.7,
                                                                  'DDRCrossEntropyLoss', [1, 0.4])
    assert ohem['weight'] is None and ce['weight'] is None
    if not config.startswith('quickstart'):
        assert dic['batch_size'] == 1 and ohem['min_kept'] == 100000
        scale, crop = dic['train_dataset']['transforms'][:2]
        assert (scale['min_scale_factor'], scale['max_scale_factor'], scale['scale_step_size']) == (0.7, 2.1, 0.1)
        assert crop['crop_size'] == [832, 832]
        assert (dic['lr_scheduler']['learning_rate'], dic['lr_scheduler']['power'], dic['optimizer']['weight_decay'],
                dic['optimizer']['momentum']) == (0.01, 0.9, 5.0e-4, 0.9)
    with paddle.LazyGuard():
        assert type(Builder(cfg).model).__name__ == 'DGCNet'
