"""GFF-Net R101: sizes equal to the PyTorch reference's (tools/reference/torch_gffnet.py: the
GFF+DFP head of the authors' gffnets.py on the ResNet-101 with PPM of the paper), and a
checkpoint in that layout converts to the same logits at an odd input size, where PPM's bins
3 and 6 do not divide the 1/8 map."""
import collections
import os

import numpy as np
import paddle
import pytest

from paddleseg_ddr.models import create_model, get_variant
from paddleseg_ddr.models.complexity import count_parameters

MEASURED = (63_703_379, 58_973_504)  # with / without dsn, 19 classes (no published count)


def test_parameter_counts_equal_the_reference():
    pytest.importorskip('torch')
    import torch_gffnet
    ref = torch_gffnet.GFFNet(torch_gffnet.VARIANTS['gffnet_r101'])
    ours = (count_parameters(create_model('gffnet_r101')), count_parameters(create_model('gffnet_r101', aux_head=False)))
    assert ours == (torch_gffnet.count_parameters(ref), torch_gffnet.count_parameters(ref, aux=False)) == MEASURED
    assert get_variant('gffnet_r101').params == MEASURED[1] and get_variant('GFFNet_R101').family == 'GFF-Net'


def test_converted_checkpoint_gives_the_reference_logits(tmp_path):
    torch = pytest.importorskip('torch')
    import torch.nn.functional as TF
    from torch_gffnet import randomized
    reference = randomized('gffnet_r101')
    src = str(tmp_path / 'gff.pth')
    torch.save({'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in reference.state_dict().items())}, src)
    model = create_model('gffnet_r101')
    report = get_variant('gffnet_r101').convert(model, src)
    assert report['left_at_init'] == [] and report['dropped'] == []
    model.eval()
    x = np.random.default_rng(0).normal(size=(1, 3, 65, 97)).astype(np.float32)
    with torch.no_grad():
        ref = TF.interpolate(reference(torch.from_numpy(x))[0], size=x.shape[2:], mode='bilinear',
                             align_corners=True).numpy()
    with paddle.no_grad():
        ours = model(paddle.to_tensor(x))[0].numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.slow
def test_a_few_training_iterations_then_evaluation(tmp_path, mini_config):
    """The tools train GFF-Net (main OHEM + 0.4 CE on the auxiliary head) and evaluate it; on
    the deep-stem ResNet-50 to keep CI short (the head is the one of GFFNet_R101)."""
    from paddleseg_ddr.cli import train_main, val_main
    mini = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'quickstart', 'gffnet_r101_mini_cityscapes.yml')
    cfg = mini_config(tmp_path, batch_size=1, crop=96, iters=2, _base_=mini, model={'type': 'GFFNet', 'depth': 50},
                      loss={'types': [{'type': 'DDROhemCrossEntropyLoss', 'thresh': 0.7, 'min_kept': 1152, 'weight': None},
                                      {'type': 'DDRCrossEntropyLoss', 'weight': None}], 'coef': [1, 0.4]})
    out = train_main(['--config', cfg, '--save_interval', '2', '--save_dir', str(tmp_path / 'o'), '--num_workers', '0'])
    assert len(out['history']) >= 1 and all(np.isfinite(h['loss']) for h in out['history'])
    metrics = val_main(['--config', cfg, '--model_path', str(tmp_path / 'o' / 'iter_2' / 'model.pdparams')])
    assert 0.0 <= metrics['miou'] <= 1.0
