"""GALD-Net: sizes equal to the release's, a checkpoint in the release's layout converts to the
same logits as an independent PyTorch re-implementation of the release (itself checked once
bit-equal against the release's own GALDNet.py), inputs too small for the GALD block are a
clear error, and a few training iterations + evaluation run through the tools."""
import collections
import os

import numpy as np
import paddle
import pytest

from paddleseg_ddr.cli import train_main, val_main
from paddleseg_ddr.errors import UserError
from paddleseg_ddr.models import create_model, get_variant
from paddleseg_ddr.models.complexity import count_parameters

MINI = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'quickstart', 'galdnet_r50_mini_cityscapes.yml')
# Measured on the release's model (libs/models/GALDNet.py, 19 classes), with / without dsn.
RELEASE = {'galdnet_r50': (52_402_662, 47_672_787), 'galdnet_r101': (71_394_790, 66_664_915)}


@pytest.mark.parametrize('name', sorted(RELEASE))
def test_parameter_counts_equal_the_release(name):
    torch = pytest.importorskip('torch')  # noqa: F841
    import torch_galdnet
    ref = torch_galdnet.GALDNet(torch_galdnet.VARIANTS[name])
    ours_full, ours_deployed = count_parameters(create_model(name)), count_parameters(create_model(name, aux_head=False))
    assert (ours_full, ours_deployed) == (torch_galdnet.count_parameters(ref),
                                          torch_galdnet.count_parameters(ref, aux=False)) == RELEASE[name]
    assert get_variant(name).params == RELEASE[name][1] and get_variant(name).family == 'GALD-Net'


def test_converted_release_checkpoint_gives_the_release_logits(tmp_path):
    """Random weights, BN statistics and GroupNorm affine; the .pth saved as the release's
    DataParallel training does (``module.`` prefix); odd input 241x249 (GALD needs >= 239)."""
    torch = pytest.importorskip('torch')
    import torch.nn.functional as TF
    from torch_galdnet import randomized
    reference = randomized('galdnet_r50')
    src = str(tmp_path / 'gald.pth')
    torch.save(collections.OrderedDict(('module.' + k, v) for k, v in reference.state_dict().items()), src)
    model = create_model('galdnet_r50')
    report = get_variant('galdnet_r50').convert(model, src)
    assert report['left_at_init'] == [] and report['dropped'] == []
    model.eval()
    x = np.random.default_rng(0).normal(size=(1, 3, 241, 249)).astype(np.float32)
    with torch.no_grad():
        ref = TF.interpolate(reference(torch.from_numpy(x))[0], size=x.shape[2:], mode='bilinear',
                             align_corners=True).numpy()
    with paddle.no_grad():
        ours = model(paddle.to_tensor(x))[0].numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_input_smaller_than_the_gald_block_accepts_is_a_user_error():
    model = create_model('galdnet_r50', aux_head=False)
    model.eval()
    with pytest.raises(UserError, match=r'at least 239x239 pixels.*larger crop_size'):
        with paddle.no_grad():
            model(paddle.zeros([1, 3, 200, 300]))


@pytest.mark.slow
def test_a_few_training_iterations_then_evaluation(tmp_path, mini_config, mini_root):
    """OHEM main + 0.4 CE dsn at the smallest crop GALD accepts; the tools' train and val."""
    cfg = mini_config(tmp_path, batch_size=1, crop=240, iters=2, _base_=MINI, model={'type': 'GALDNet_R50'},
                      loss={'types': [{'type': 'DDROhemCrossEntropyLoss', 'thresh': 0.7, 'min_kept': 7200, 'weight': None},
                                      {'type': 'DDRCrossEntropyLoss', 'weight': None}], 'coef': [1, 0.4]})
    out = train_main(['--config', cfg, '--save_interval', '2', '--save_dir', str(tmp_path / 'o'), '--num_workers', '0'])
    assert len(out['history']) >= 1 and all(np.isfinite(h['loss']) for h in out['history'])
    metrics = val_main(['--config', cfg, '--model_path', str(tmp_path / 'o' / 'iter_2' / 'model.pdparams')])
    assert 0.0 <= metrics['miou'] <= 1.0
