"""Official DDRNet checkpoints -> Paddle: exact numerical parity with an independent
PyTorch re-implementation of the official layout (torch is a test-only dependency)."""
import collections
import os
import sys

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch')
import torch.nn.functional as TF  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from torch_ddrnet import randomized  # noqa: E402

from paddleseg_ddr.models.ddrnet import _variant  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import convert_weights  # noqa: E402

SIZES = [(128, 256), (200, 328)]  # the second is not a multiple of 64


def save_forms(model, folder):
    """The forms the released checkpoints come in."""
    sd = model.state_dict()
    forms = {
        'plain': sd,
        'module_prefix': collections.OrderedDict(('module.' + k, v) for k, v in sd.items()),
        'state_dict_entry': {'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in sd.items()), 'epoch': 484},
    }
    paths = {}
    for name, obj in forms.items():
        paths[name] = os.path.join(folder, f'{name}.pth')
        torch.save(obj, paths[name])
    paths['legacy_format'] = os.path.join(folder, 'legacy.pth')
    torch.save(sd, paths['legacy_format'], _use_new_zipfile_serialization=False)
    return paths


@pytest.mark.parametrize('name', ['ddrnet23_slim', 'ddrnet23', 'ddrnet39'])
@pytest.mark.parametrize('augment', [True, False], ids=['with_aux', 'no_aux'])
def test_converted_cityscapes_weights_give_the_official_logits(tmp_path, name, augment):
    reference = randomized(name, augment)
    paths = save_forms(reference, str(tmp_path))
    forms = paths if (name == 'ddrnet23_slim' and augment) else {'module_prefix': paths['module_prefix']}
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 3, *s)).astype(np.float32) for s in SIZES]
    with torch.no_grad():
        expected = []
        for x in inputs:
            out = reference(torch.from_numpy(x))
            out = out[0] if augment else out
            expected.append(TF.interpolate(out, size=x.shape[2:], mode='bilinear', align_corners=False).numpy())
    for form, path in forms.items():
        dst = str(tmp_path / f'{form}.pdparams')
        report = convert_weights.main(['--src', path, '--model', name, '--kind', 'cityscapes', '--dst', dst])
        assert report['dropped'] == [] and all(k.startswith('seghead_extra') for k in report['left_at_init']) \
            and bool(report['left_at_init']) != augment, form
        model = _variant(name, 19, aux_head=augment)
        model.set_state_dict(paddle.load(dst))
        model.eval()
        for x, ref in zip(inputs, expected):
            with paddle.no_grad():
                ours = model(paddle.to_tensor(x))[0].numpy()
            diff = np.abs(ours - ref).max()
            assert diff <= 1e-4 * np.abs(ref).max(), f'{name} {form} {x.shape}: max diff {diff}'
