"""Issue 10 (deploy part): deploy.yaml schema, result names that cannot collide, damaged
images and export files, inference options. CLI-level cases are in tests/error_cases_deploy.py."""
import os

import cv2
import numpy as np
import paddle
import pytest
import yaml

from paddleseg_ddr.deploy import PaddleInferencePredictor, export_inference_model, predict_files
from paddleseg_ddr.deploy.deploy_config import read_deploy_config, validate_deploy
from paddleseg_ddr.deploy.paddle_inference import check_params_file
from paddleseg_ddr.deploy.predict import list_images, read_image
from paddleseg_ddr.engine.inference import aug_predict, check_infer_options
from paddleseg_ddr.errors import UserError
from deploy_helpers import NORMALIZE


@pytest.fixture(scope='module')
def export(tmp_path_factory, trained_like_model):
    return export_inference_model(trained_like_model, str(tmp_path_factory.mktemp('checks') / 'export'), NORMALIZE)


def image(path, ext='.png', size=(48, 64)):
    rng = np.random.default_rng(len(str(path)))
    ok, data = cv2.imencode(ext, rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    return str(path)


def test_paddleseg_28_deploy_yaml_still_loads_and_runs(export, tmp_path):
    """The document PaddleSeg 2.8's tools/export.py writes (yaml.dump: null dynamic dims,
    model.pdmodel, output_dtype) is valid; null dims become -1 and the export runs."""
    folder = tmp_path / 'ps'
    folder.mkdir()
    for name in ('model.json', 'model.pdiparams'):
        os.symlink(os.path.join(export, name), folder / name)
    doc = {'Deploy': {'model': 'model.pdmodel', 'params': 'model.pdiparams',
                      'transforms': [{'type': 'Normalize'}], 'input_shape': [None, 3, None, None],
                      'output_op': 'argmax', 'output_dtype': 'int32'}}
    (folder / 'deploy.yaml').write_text(yaml.dump(doc))
    deploy = read_deploy_config(str(folder))
    assert deploy['input_shape'] == [-1, 3, -1, -1] and deploy['output_op'] == 'argmax'
    done, failed = predict_files(PaddleInferencePredictor(str(folder), enable_mkldnn=False),
                                 image(tmp_path / 'in' / 'a.jpg', '.jpg'), str(tmp_path / 'out'))
    assert (done, failed) == (1, []) and os.path.isfile(tmp_path / 'out' / 'label' / 'a.png')
    # older PaddleSeg exports: no input_shape / output_op at all (argmax graphs)
    assert validate_deploy({'model': 'm', 'params': 'p', 'transforms': []}, 'd.yaml')['output_op'] == 'argmax'


@pytest.mark.parametrize('section, message', [
    ({'transfroms': []}, "unknown key 'transfroms'.*did you mean 'transforms'"),
    ({'output_op': 'argmaks'}, "output_op 'argmaks'.*did you mean 'argmax'"),
    ({'output_dtype': 'int8'}, "output_dtype 'int8'"),
    ({'model': ['model.json']}, "'model' must name a file"),
    ({'transforms': None}, "'transforms' must be a list"),
    ({'transforms': ['Normalize']}, "transform 1 must be a mapping with a 'type'"),
    ({'transforms': [{'type': 'Normalize'}, {'type': 'Resise', 'target_size': [8, 8]}]},
     "transform 2 has the unknown type 'Resise'.*did you mean 'Resize'"),
    ({'transforms': [{'type': 'Resize', 'target_sise': [8, 8]}]}, "no argument 'target_sise'.*did you mean 'target_size'"),
    ({'transforms': [{'type': 'Resize', 'target_size': 'big'}]}, r'\(Resize\) refuses its arguments'),
    ({'input_shape': [1, 3, 64]}, r"'input_shape' must be \[N, 3, H, W\]"),
    ({'input_shape': [1, 1, 64, 64]}, "'input_shape' must be"),
    ({'input_shape': [1, 3, 0, 64]}, "'input_shape' must be"),
    ({'input_shape': [True, 3, 64, 64]}, "'input_shape' must be"),
    ({'class_names': ['a', 'b'], 'palette': [[0, 0, 0]]}, 'differ in length'),
    ({'class_names': ['a'], 'palette': [[0, 0, 300]]}, "'palette' must be a list of"),
    ({'class_names': ['a'], 'palette': [[0, 0, 0]], 'label_ids': [-1]}, "'label_ids' must be"),
])
def test_deploy_section_is_checked_against_its_schema(section, message):
    deploy = {'model': 'model.json', 'params': 'model.pdiparams', 'transforms': NORMALIZE}
    deploy.update(section)
    if 'transfroms' in section:
        deploy.pop('transforms')
    with pytest.raises(UserError, match=r"'/x/deploy\.yaml'.*" + message):
        validate_deploy(deploy, '/x/deploy.yaml')


def test_unknown_top_level_key_and_misspelt_deploy_section(tmp_path, export):
    folder = tmp_path / 'e'
    folder.mkdir()
    doc = yaml.safe_load(open(os.path.join(export, 'deploy.yaml')))
    (folder / 'deploy.yaml').write_text(yaml.safe_dump({**doc, 'Extra': 1}))
    with pytest.raises(UserError, match="unknown top-level key 'Extra'"):
        read_deploy_config(str(folder), required=())
    (folder / 'deploy.yaml').write_text(yaml.safe_dump({'Deplyo': doc['Deploy']}))
    with pytest.raises(UserError, match="no 'Deploy' section \\('Deplyo': did you mean 'Deploy'\\?\\)"):
        read_deploy_config(str(folder), required=())


def test_results_that_would_overwrite_each_other_are_refused(tmp_path):
    """a.png and a.jpg both write label/a.png (PaddleSeg names results <stem>.png): refused
    with the pair named, before anything is predicted; so are two list entries with the same
    file name from different folders. The same file listed twice is predicted once."""
    image(tmp_path / 'd' / 'sub' / 'a.png')
    image(tmp_path / 'd' / 'sub' / 'a.jpg', '.jpg')
    image(tmp_path / 'd' / 'b.png')
    with pytest.raises(UserError, match=r"1 pair\(s\).*'.*/d/sub/a\.jpg' and '.*/d/sub/a\.png' -> label/sub/a\.png"):
        list_images(str(tmp_path / 'd'))
    one, two = image(tmp_path / 'x' / 'c.png'), image(tmp_path / 'y' / 'c.png')
    (tmp_path / 'abs.txt').write_text(f'{one}\n{two}\n')
    with pytest.raises(UserError, match="-> label/c.png"):
        list_images(str(tmp_path / 'abs.txt'))
    (tmp_path / 'twice.txt').write_text('d/b.png\n\nd/b.png\n./d/b.png\n')
    assert list_images(str(tmp_path / 'twice.txt')) == [(str(tmp_path / 'd' / 'b.png'), 'd/b.png')]


def test_damaged_images_are_named_and_the_rest_predicted(tmp_path):
    """A truncated JPEG decodes in OpenCV without an error (grey rows): it is refused, as are
    truncated PNGs and empty files; complete JPEGs with bytes after their end marker are kept."""
    class Constant:
        def predict_batch(self, images):
            return [np.full(bgr.shape[:2], 3, np.uint8) for bgr in images]
    good = image(tmp_path / 'in' / 'good.jpg', '.jpg')
    data = open(good, 'rb').read()
    (tmp_path / 'in' / 'cut.jpg').write_bytes(data[:len(data) * 3 // 4])
    (tmp_path / 'in' / 'tail.jpg').write_bytes(data + b'\0' * 16)
    (tmp_path / 'in' / 'empty.png').write_bytes(b'')
    png = open(image(tmp_path / 'in' / 'cutpng.png'), 'rb').read()
    (tmp_path / 'in' / 'cutpng.png').write_bytes(png[:len(png) // 2])
    assert read_image(str(tmp_path / 'in' / 'tail.jpg'))[0] is not None
    assert read_image(str(tmp_path / 'nowhere.png')) == (None, 'does not exist')
    done, failed = predict_files(Constant(), str(tmp_path / 'in'), str(tmp_path / 'out'))
    assert done == 2 and sorted(os.path.basename(p) for p, _ in failed) == ['cut.jpg', 'cutpng.png', 'empty.png']
    assert dict((os.path.basename(p), w) for p, w in failed)['cut.jpg'].startswith('is a truncated JPEG')
    assert sorted(os.listdir(tmp_path / 'out' / 'label')) == ['good.png', 'tail.png']


def test_params_file_is_walked_to_its_end(export, tmp_path):
    """Paddle Inference loads a .pdiparams cut inside its last tensor and runs it; every cut
    is refused here (the genuine file passes)."""
    params = os.path.join(export, 'model.pdiparams')
    check_params_file(params)
    data = open(params, 'rb').read()
    for keep in (0, 3, 20, len(data) // 3, len(data) - 4, len(data) - 1):
        (tmp_path / 'p.pdiparams').write_bytes(data[:keep])
        with pytest.raises(UserError, match='is not a complete parameters file'):
            check_params_file(str(tmp_path / 'p.pdiparams'))


@pytest.mark.parametrize('options, message', [
    (dict(aug=True, scales=[1.0, 0]), '--scales 1 0: scales must be positive'),
    (dict(aug=True, scales=[]), '--scales : scales must be positive'),
    (dict(aug=True, scales=[float('nan')]), 'scales must be positive'),
    (dict(aug=True, scales='big'), 'scales must be positive'),
    (dict(is_slide=True, crop_size=[64, 64]), '--is_slide needs'),
    (dict(is_slide=True, crop_size=[64, 64], stride=[0, 32]), '--stride 0 32: .*two positive whole numbers'),
    (dict(is_slide=True, crop_size=[64.5, 64], stride=[32, 32]), '--crop_size 64.5 64'),
    (dict(is_slide=True, crop_size=64, stride=[32, 32]), '--crop_size 64: .*test_config.crop_size'),
    (dict(is_slide=True, crop_size=[64, 64], stride=[32, 65]), '--stride 32 65 is larger than --crop_size 64 64'),
])
def test_inference_options_are_checked(options, message):
    with pytest.raises(UserError, match=message):
        check_infer_options(**options)


def test_valid_options_pass_and_scales_without_aug_are_ignored():
    check_infer_options(aug=True, scales=1.0, is_slide=True, crop_size=(64, 64), stride=(64, 32))
    check_infer_options(aug=False, scales=[0])


def test_a_scale_that_leaves_no_pixel_is_refused():
    model = lambda x: [x[:, :2]]  # noqa: E731
    with pytest.raises(UserError, match=r'--scales 0.01 shrinks a 16x16 image to 0x0'):
        aug_predict(model, paddle.zeros([1, 3, 16, 16]), scales=[1.0, 0.01])
