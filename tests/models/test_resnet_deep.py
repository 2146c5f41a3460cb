"""The dilated deep-stem ResNet of GALD-DGCNet: its size equals the release's (counted on an
independent PyTorch re-implementation, tools/reference/torch_dgcnet.py, itself checked key for
key against the release), its feature maps equal the release's after converting an ImageNet
``resnet*-deep.pth`` through tools/convert_weights.py, and odd input sizes give the release's
sizes (max-pool with ceil_mode)."""
import numpy as np
import paddle
import pytest
from paddleseg.cvlibs import manager

torch = pytest.importorskip('torch')

import convert_weights  # noqa: E402  (tools/)
import torch_dgcnet  # noqa: E402  (tools/reference/)

from paddleseg_ddr.models.blocks import ResNetBottleneck, make_stage  # noqa: E402


def trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.mark.parametrize('depth, expected', [(50, 23_631_808), (101, 42_623_936)])
def test_parameters_equal_the_releases(depth, expected):
    """Issue figures 23.63 M / 42.62 M; the exact count is the torch reference's (no fc)."""
    with torch.device('meta'):
        reference = torch_dgcnet.DeepResNet(torch_dgcnet.DEPTHS[f'dgcnet_r{depth}'])
    assert torch_dgcnet.count_params(reference) == expected
    with paddle.LazyGuard():  # shapes only: building with weights costs seconds
        backbone = manager.BACKBONES[f'DeepStemResNet{depth}']()
    assert trainable(backbone) == expected
    assert backbone.feat_channels == [256, 512, 1024, 2048] and backbone.feat_strides == [4, 8, 8, 8]


def test_layer4_multi_grid_and_layer3_dilation():
    with paddle.LazyGuard():
        backbone = manager.BACKBONES['DeepStemResNet101']()
    assert [b.conv2._dilation for b in backbone.layer4] == [[4, 4], [8, 8], [16, 16]]
    assert [b.conv2._padding for b in backbone.layer4] == [4, 8, 16]
    assert {tuple(b.conv2._dilation) for b in backbone.layer3} == {(2, 2)} and len(backbone.layer3) == 23
    assert all(not b.no_relu for stage in (backbone.layer1, backbone.layer4) for b in stage)
    assert backbone.maxpool.ceil_mode


def test_make_stage_refuses_a_wrong_dilation_list():
    with pytest.raises(ValueError, match='2 dilations for 3 blocks'):
        make_stage(ResNetBottleneck, 64, 16, 3, dilations=[1, 2])


def test_imagenet_weights_convert_and_give_the_releases_features(tmp_path):
    """resnet50-deep.pth (plain state dict with ``fc``) -> --kind imagenet: every backbone tensor
    loaded, ``fc`` dropped, the DGCNet heads left at init; the backbone then loaded from the
    written file through ``pretrained=`` gives the reference's four stages within 1e-4
    relative at odd sizes (63 -> stem 32, where ceil_mode adds a row; 98 -> 49)."""
    reference = torch_dgcnet.randomized_imagenet('dgcnet_r50')
    src = str(tmp_path / 'resnet50-deep.pth')
    torch.save(reference.state_dict(), src)
    dst = str(tmp_path / 'r50_imagenet.pdparams')
    report = convert_weights.main(['--src', src, '--model', 'dgcnet_r50', '--kind', 'imagenet', '--dst', dst])
    assert report['dropped'] == ['fc.bias', 'fc.weight']
    assert {k.split('.')[0] for k in report['left_at_init']} == {'head', 'dsn'}
    assert len(report['loaded']) == len([k for k in reference.state_dict()
                                         if not k.startswith('fc.') and not k.endswith('num_batches_tracked')])
    backbone = manager.BACKBONES['DeepStemResNet50'](pretrained=dst)
    backbone.eval()
    rng = np.random.default_rng(0)
    for size in [(63, 98), (65, 97)]:
        x = rng.normal(size=(1, 3, *size)).astype(np.float32)
        with torch.no_grad():
            expected = [f.numpy() for f in reference.features(torch.from_numpy(x))]
        with paddle.no_grad():
            ours = [f.numpy() for f in backbone(paddle.to_tensor(x))]
        for stage, (a, b) in enumerate(zip(ours, expected), start=1):
            assert a.shape == b.shape, (size, stage)
            assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), (size, stage)
    assert [f.shape[2:] for f in ours] == [(17, 25), (9, 13), (9, 13), (9, 13)]  # 65x97
