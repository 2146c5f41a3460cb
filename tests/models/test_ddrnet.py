import numpy as np
import paddle
import pytest
from paddleseg.cvlibs import manager

import paddleseg_ddr  # noqa: F401  (registers the models)
from paddleseg_ddr.models import DDRNet23, DDRNet23Slim, DDRNet39
from paddleseg_ddr.models.complexity import count_parameters

# Published sizes for 19 classes without the auxiliary head (FACTS.md §2).
PUBLISHED = {DDRNet23Slim: 5_695_987, DDRNet23: 20_148_947, DDRNet39: 32_360_275}


@pytest.mark.parametrize('factory', list(PUBLISHED), ids=lambda f: f.__name__)
def test_parameter_count_matches_paper(factory):
    n = count_parameters(factory(num_classes=19, aux_head=False))
    assert n == PUBLISHED[factory]


def test_aux_head_adds_a_segmentation_head_on_the_high_branch():
    with_aux = count_parameters(DDRNet23Slim(aux_head=True))
    without = count_parameters(DDRNet23Slim(aux_head=False))
    # seghead_extra: BN(64) + conv3x3 64->64 + BN(64) + conv1x1 64->19 with bias
    assert with_aux - without == 2 * 64 + 64 * 64 * 9 + 2 * 64 + 64 * 19 + 19


def test_registered_under_own_names_next_to_paddleseg_ddrnet23():
    for name, factory in (('DDRNet23Slim', DDRNet23Slim), ('DDRNet23', DDRNet23), ('DDRNet39', DDRNet39)):
        assert manager.MODELS[name] is factory
    builtin = manager.MODELS['DDRNet_23']
    assert builtin.__module__.startswith('paddleseg.models')


@pytest.mark.parametrize('size', [(64, 128), (72, 100)])
def test_train_mode_returns_main_and_aux_logits_at_input_size(size):
    paddle.seed(0)
    model = DDRNet23Slim(num_classes=5)
    x = paddle.randn([2, 3, *size])
    model.train()
    outs = model(x)
    assert len(outs) == 2
    assert all(o.shape == [2, 5, *size] for o in outs)
    model.eval()
    outs = model(x)
    assert len(outs) == 1 and outs[0].shape == [2, 5, *size]


def test_eval_mode_uses_running_statistics_train_mode_batch_statistics():
    paddle.seed(0)
    model = DDRNet23Slim(num_classes=4, aux_head=False)
    x = paddle.randn([2, 3, 64, 64])
    model.eval()
    with paddle.no_grad():
        batch = model(x)[0].numpy()
        single = model(x[:1])[0].numpy()
    np.testing.assert_allclose(batch[:1], single, rtol=1e-4, atol=1e-4)  # independent of the batch
    model.train()
    with paddle.no_grad():
        batch_train = model(x)[0].numpy()
        single_train = model(x[:1])[0].numpy()
    assert np.abs(batch_train[:1] - single_train).max() > 1e-3  # batch statistics differ


def test_every_parameter_gets_a_gradient_in_training():
    paddle.seed(0)
    model = DDRNet23Slim(num_classes=3)
    model.train()
    main, aux = model(paddle.randn([2, 3, 64, 64]))
    (main.mean() + aux.mean()).backward()
    no_grad = [n for n, p in model.named_parameters() if not p.stop_gradient and p.grad is None]
    assert no_grad == []


def test_official_layer_names():
    keys = set(DDRNet23Slim().state_dict())
    for k in ['conv1.0.weight', 'conv1.0.bias', 'conv1.1._mean', 'layer1.0.conv1.weight',
              'layer2.0.downsample.0.weight', 'layer3_.1.bn2._variance', 'compression3.1.weight',
              'down3.0.weight', 'down4.3.weight', 'down4.4._mean', 'layer5_.0.conv3.weight',
              'layer5.0.downsample.1.weight', 'spp.scale1.1.weight', 'spp.scale4.3.weight',
              'spp.process4.2.weight', 'spp.compression.2.weight', 'spp.shortcut.2.weight',
              'final_layer.bn1.weight', 'final_layer.conv2.bias', 'seghead_extra.conv1.weight']:
        assert k in keys, k
    keys39 = set(DDRNet39(aux_head=False).state_dict())
    for k in ['layer3_1.2.conv1.weight', 'layer3_2.2.conv1.weight', 'layer3_1_.0.conv1.weight',
              'layer3_2_.2.bn2.weight', 'compression3_1.0.weight', 'compression3_2.0.weight',
              'down3_1.0.weight', 'down3_2.0.weight', 'layer4.2.conv2.weight', 'layer4_.2.conv2.weight']:
        assert k in keys39, k
    assert not any(k.startswith(('layer3.', 'seghead_extra')) for k in keys39)


def test_dappm_pooling_counts_padding_like_pytorch():
    from paddleseg_ddr.models.blocks import DAPPM
    pools = [layer for layer in DAPPM(8, 4, 8).sublayers() if isinstance(layer, paddle.nn.AvgPool2D)]
    x = paddle.ones([1, 1, 4, 4])
    # count_include_pad: corner value of a 5x5 window over a 4x4 ones map = 9/25
    out = pools[0](x).numpy()
    assert len(pools) == 3 and abs(out[0, 0, 0, 0] - 9 / 25) < 1e-6


def test_variant_table_carries_the_published_figures():
    from paddleseg_ddr.models import create_model, get_variant, list_variants
    assert [v.model_type for v in list_variants('DDRNet')] == ['DDRNet23Slim', 'DDRNet23', 'DDRNet39']
    for factory, params in PUBLISHED.items():
        variant = get_variant(factory.__name__)
        assert variant.params == params and variant.factory is factory
        assert get_variant(variant.name) is variant
    assert type(create_model('ddrnet23_slim', aux_head=False)).TRAIN_ONLY_PREFIXES == ('seghead_extra.',)


def test_unknown_variant_suggests_the_close_ones():
    from paddleseg_ddr.errors import UserError
    from paddleseg_ddr.models import get_variant
    with pytest.raises(UserError, match="unknown model variant 'ddrnet23_slm'.*Did you mean 'ddrnet23_slim'"):
        get_variant('ddrnet23_slm')
