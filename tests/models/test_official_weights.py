"""Official DDRNet checkpoints -> Paddle: exact numerical parity with an independent
PyTorch re-implementation of the official layout (torch is a test-only dependency)."""
import collections
import os

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch')
import torch.nn.functional as TF  # noqa: E402

import convert_weights  # noqa: E402  (tools/, on pytest's pythonpath)
from torch_ddrnet import randomized  # noqa: E402  (tools/reference/)

from paddleseg_ddr.models import create_model  # noqa: E402

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
        model = create_model(name, 19, aux_head=augment)
        model.set_state_dict(paddle.load(dst))
        model.eval()
        for x, ref in zip(inputs, expected):
            with paddle.no_grad():
                ours = model(paddle.to_tensor(x))[0].numpy()
            diff = np.abs(ours - ref).max()
            assert diff <= 1e-4 * np.abs(ref).max(), f'{name} {form} {x.shape}: max diff {diff}'


@pytest.mark.parametrize('name', ['ddrnet23_slim', 'ddrnet23', 'ddrnet39'])
def test_imagenet_checkpoints_give_the_official_class_scores(tmp_path, name):
    from torch_ddrnet import randomized_classifier
    reference = randomized_classifier(name)
    src = str(tmp_path / 'imagenet.pth')
    torch.save({'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in reference.state_dict().items())}, src)
    dst = str(tmp_path / 'cls.pdparams')
    report = convert_weights.main(['--src', src, '--model', name, '--kind', 'imagenet_classifier', '--dst', dst])
    assert report['left_at_init'] == [] and report['dropped'] == []
    from paddleseg_ddr.models import imagenet_classifier
    model = imagenet_classifier(name)
    model.set_state_dict(paddle.load(dst))
    model.eval()
    rng = np.random.default_rng(1)
    for size in [(224, 224), (200, 328)]:
        x = rng.normal(size=(2, 3, *size)).astype(np.float32)
        with torch.no_grad():
            ref = reference(torch.from_numpy(x)).numpy()
        with paddle.no_grad():
            ours = model(paddle.to_tensor(x)).numpy()
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), f'{name} {size}'


def test_imagenet_checkpoint_initialises_both_branches_of_the_segmentation_model(tmp_path):
    from torch_ddrnet import randomized_classifier
    reference = randomized_classifier('ddrnet23_slim')
    src = str(tmp_path / 'imagenet.pth')
    torch.save(reference.state_dict(), src)
    dst = str(tmp_path / 'seg_init.pdparams')
    report = convert_weights.main(['--src', src, '--model', 'ddrnet23_slim', '--kind', 'imagenet', '--dst', dst])
    tops = lambda keys: sorted({k.split('.')[0] for k in keys})
    assert tops(report['left_at_init']) == ['final_layer', 'seghead_extra', 'spp']
    assert tops(report['dropped']) == ['down5', 'last_layer', 'linear']
    loaded = tops(report['loaded'])
    for part in ['conv1', 'layer1', 'layer2', 'layer3', 'layer3_', 'layer4', 'layer4_', 'layer5', 'layer5_',
                 'compression3', 'compression4', 'down3', 'down4']:
        assert part in loaded, part
    params = paddle.load(dst)
    torch_sd = reference.state_dict()
    np.testing.assert_array_equal(params['layer4_.1.bn2._variance'].numpy(), torch_sd['layer4_.1.bn2.running_var'].numpy())
    np.testing.assert_array_equal(params['layer5.0.downsample.0.weight'].numpy(), torch_sd['layer5.0.downsample.0.weight'].numpy())
    # the converted file initialises a model through the configs' `pretrained:` key
    from paddleseg_ddr.models import DDRNet23Slim
    model = DDRNet23Slim(pretrained=dst)
    np.testing.assert_array_equal(model.state_dict()['down3.0.weight'].numpy(), torch_sd['down3.0.weight'].numpy())


def test_parity_holds_through_the_exported_graph(tmp_path):
    from paddle import inference

    from paddleseg_ddr.deploy import export_inference_model
    reference = randomized('ddrnet23_slim', augment=True)
    src = str(tmp_path / 'best_val_smaller.pth')
    torch.save({'state_dict': reference.state_dict()}, src)
    dst = str(tmp_path / 'converted.pdparams')
    convert_weights.main(['--src', src, '--model', 'ddrnet23_slim', '--dst', dst])
    model = create_model('ddrnet23_slim', 19)
    model.set_state_dict(paddle.load(dst))
    out_dir = export_inference_model(model, str(tmp_path / 'inference'), [], output_op='none')
    config = inference.Config(os.path.join(out_dir, 'model.json'), os.path.join(out_dir, 'model.pdiparams'))
    config.disable_gpu()
    config.disable_mkldnn()
    predictor = inference.create_predictor(config)
    for size in SIZES:
        x = np.random.default_rng(3).normal(size=(1, 3, *size)).astype(np.float32)
        with torch.no_grad():
            ref = TF.interpolate(reference(torch.from_numpy(x))[0], size=size, mode='bilinear', align_corners=False).numpy()
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(x.shape)
        handle.copy_from_cpu(x)
        predictor.run()
        ours = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), size
