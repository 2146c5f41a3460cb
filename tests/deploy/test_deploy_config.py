"""deploy.yaml of a PaddleSeg 2.8 export made on Paddle 3: it names model.pdmodel but the
file written is model.json."""
import glob
import os
import shutil

import pytest
import yaml

from paddleseg_ddr.cli import predict_main
from paddleseg_ddr.deploy import export_inference_model
from paddleseg_ddr.deploy.deploy_config import read_deploy_config
from paddleseg_ddr.errors import UserError
from deploy_helpers import NORMALIZE


def paddleseg_like(folder):
    """Rewrite deploy.yaml as PaddleSeg 2.8's export writes it on Paddle 3."""
    path = os.path.join(folder, 'deploy.yaml')
    doc = yaml.safe_load(open(path))
    doc['Deploy'].update(model='model.pdmodel', params='model.pdiparams')
    yaml.safe_dump(doc, open(path, 'w'))


def test_model_json_beside_a_named_pdmodel_is_used_with_a_warning(tmp_path, trained_like_model, mini_root, capsys):
    folder = export_inference_model(trained_like_model, str(tmp_path / 'ps'), NORMALIZE)
    paddleseg_like(folder)
    capsys.readouterr()
    assert read_deploy_config(folder)['model'] == os.path.join(folder, 'model.json')
    assert 'model.pdmodel' in capsys.readouterr().out
    image = sorted(glob.glob(os.path.join(mini_root, 'leftImg8bit', 'val', '*', '*.png')))[0]
    shutil.copy(image, tmp_path / 'a.png')
    done = predict_main(['--config', os.path.join(folder, 'deploy.yaml'), '--image_path', str(tmp_path / 'a.png'),
                         '--save_dir', str(tmp_path / 'out'), '--enable_mkldnn', 'False'])
    out = capsys.readouterr().out
    assert done == 1 and os.path.isfile(tmp_path / 'out' / 'label' / 'a.png')
    assert 'WARNING' in out and "names the model file 'model.pdmodel'" in out and 'model.json' in out


def test_missing_model_file_without_model_json_is_a_user_error(tmp_path, trained_like_model):
    folder = export_inference_model(trained_like_model, str(tmp_path / 'ps'), NORMALIZE)
    paddleseg_like(folder)
    os.remove(os.path.join(folder, 'model.json'))
    with pytest.raises(UserError, match=r"lacks model\.pdmodel, named as 'model' in deploy\.yaml, and there is no "
                                        r"model\.json beside it.*export\.py --save_dir"):
        read_deploy_config(folder)
    with pytest.raises(UserError, match=r'lacks model\.pdmodel'):
        predict_main(['--model_dir', folder, '--image_path', str(tmp_path), '--save_dir', str(tmp_path / 'o')])
