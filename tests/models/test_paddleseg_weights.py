"""PaddleSeg's built-in DDRNet_23 -> DDRNet23: the same logits (both are Paddle; no torch)."""

import numpy as np
import paddle
from paddleseg.models import DDRNet_23

from paddleseg_ddr.models import DDRNet23
import convert_weights  # tools/, on pytest's pythonpath


def randomize_bn(model):
    rng = np.random.default_rng(0)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            n = layer.weight.shape[0]
            for p, lo, hi in ((layer.weight, 0.5, 1.5), (layer.bias, -0.2, 0.2), (layer._mean, -0.2, 0.2), (layer._variance, 0.5, 2.0)):
                p.set_value(rng.uniform(lo, hi, n).astype(np.float32))


def test_paddleseg_ddrnet23_converts_to_identical_logits(tmp_path):
    paddle.seed(5)
    theirs = DDRNet_23(num_classes=19, enable_auxiliary_loss=True)
    randomize_bn(theirs)
    theirs.eval()
    src = str(tmp_path / 'model.pdparams')
    paddle.save(theirs.state_dict(), src)
    dst = str(tmp_path / 'ours.pdparams')
    report = convert_weights.main(['--src', src, '--from', 'paddleseg_ddrnet23', '--dst', dst])
    assert report['left_at_init'] == [] and report['dropped'] == []
    # PaddleSeg's DDRNet_23 departs from the official model in DAPPM pooling and down3 padding
    ours = DDRNet23(num_classes=19, paddleseg_layout=True)
    official_pooling = DDRNet23(num_classes=19)
    for model in (ours, official_pooling):
        model.set_state_dict(paddle.load(dst))
        model.eval()
    rng = np.random.default_rng(2)
    for size in [(128, 256), (200, 328)]:
        x = paddle.to_tensor(rng.normal(size=(1, 3, *size)).astype(np.float32))
        with paddle.no_grad():
            ref = theirs(x)[0].numpy()
            out = ours(x)[0].numpy()
            other = official_pooling(x)[0].numpy()
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max(), size
        assert np.abs(other - ref).max() > 1e-2 * np.abs(ref).max()  # the differences are real


def test_convert_writes_safetensors_that_load_like_pdparams(tmp_path):
    """--dst x.safetensors: the same weights, loadable wherever .pdparams load (issue 10)."""
    from paddleseg_ddr.utils.weights import load_model_weights, read_params
    paddle.seed(6)
    src = str(tmp_path / 'model.pdparams')
    paddle.save(DDRNet_23(num_classes=19).state_dict(), src)
    for dst in ('ours.pdparams', 'ours.safetensors'):
        convert_weights.main(['--src', src, '--from', 'paddleseg_ddrnet23', '--dst', str(tmp_path / dst)])
    _, a = read_params(str(tmp_path / 'ours.pdparams'))
    _, b = read_params(str(tmp_path / 'ours.safetensors'))
    assert sorted(a) == sorted(b) and all((a[k].numpy() == b[k].numpy()).all() for k in a)
    model = DDRNet23(num_classes=19, aux_head=False)
    load_model_weights(model, str(tmp_path / 'ours.safetensors'))
    assert all((model.state_dict()[k].numpy() == a[k].numpy()).all() for k in model.state_dict())
