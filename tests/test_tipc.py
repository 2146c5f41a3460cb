"""The TIPC harness (test_tipc/): config files parse line for line as PaddleSeg's parser reads
them, the lite chain of DDRNet-23-slim runs end to end and reproduces the expected results,
and a broken step makes the script fail and name the step."""
import glob
import os
import shutil
import subprocess

import paddle
import pytest

from paddleseg_ddr.engine import load_config
from paddleseg_ddr.models import DDRNet23Slim

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'test_tipc', 'configs', '*', 'train_infer_python.txt')))
MODES = ('lite_train_lite_infer', 'lite_train_whole_infer', 'whole_infer', 'whole_train_whole_infer')
# the key on each line, as PaddleSeg's test_train_inference_python.sh indexes them
KEYS = {1: 'model_name', 2: 'python', 3: 'gpu_list', 6: '--iters', 7: '--save_dir', 8: '--batch_size',
        10: 'train_model_name', 11: 'train_infer_img_dir', 14: 'trainer', 15: 'norm_train', 16: 'pact_train',
        17: 'fpgm_train', 18: 'distill_train', 23: 'eval', 27: '--save_dir', 28: '--model_path',
        29: 'norm_export', 30: 'quant_export', 31: 'fpgm_export', 32: 'distill_export', 33: 'export1',
        34: 'export2', 36: 'infer_model', 37: 'infer_export', 38: 'infer_quant', 39: 'inference',
        40: '--device', 41: '--enable_mkldnn', 42: '--cpu_threads', 43: '--batch_size', 44: '--use_trt',
        45: '--precision', 46: '--config', 47: '--image_path', 48: '--save_log_path', 49: '--benchmark',
        50: '--save_dir', 51: '--model_name'}
HEADERS = {0: 'train_params', 22: 'eval_params', 26: 'export_params', 35: 'infer_params'}


def shell(script, cwd=ROOT):
    return subprocess.run(['bash', '-c', script], capture_output=True, text=True, cwd=cwd)


def test_there_is_a_config_per_model():
    assert [os.path.basename(os.path.dirname(c)) for c in CONFIGS] == ['ddrnet23', 'ddrnet23_slim', 'ddrnet39']


@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: os.path.basename(os.path.dirname(c)))
def test_config_parses_line_for_line(config):
    with open(config) as f:
        lines = f.read().splitlines()
    name = os.path.basename(os.path.dirname(config))
    for i, header in HEADERS.items():
        assert lines[i].startswith('=') and header in lines[i], (i, lines[i])
    for i, key in KEYS.items():
        assert lines[i].split(':', 1)[0] == key, (i, lines[i])
    assert lines[1] == f'model_name:{name}' and lines[51] == f'--model_name:{name}'
    # the commands name scripts and a training config that exist and load
    for i in (15, 23, 29, 37, 39):
        script = lines[i].split(':', 1)[1].split()[0]
        assert os.path.isfile(os.path.join(ROOT, script)), lines[i]
    train_config = lines[15].split('--config ')[1].split()[0]
    assert load_config(os.path.join(ROOT, train_config)).dic['model']['type'].lower() == name.replace('_', '')
    # the shell helpers read every training mode's iterations and batch size
    for mode in MODES:
        if mode == 'whole_infer':  # no training
            continue
        out = shell(f'source test_tipc/common_func.sh; MODE={mode}; mapfile -t lines < {config}; '
                    'echo "$(func_parser_params "${lines[6]}") $(func_parser_params "${lines[8]}") '
                    '$(func_parser_value "${lines[15]}")"')
        iters, batch, train = out.stdout.split(maxsplit=2)
        assert int(iters) > 0 and int(batch) > 0 and train.startswith('train.py'), (mode, out.stdout, out.stderr)


def test_set_params_leaves_out_null():
    out = shell('source test_tipc/common_func.sh; echo "[$(func_set_params --iters 20)]'
                '[$(func_set_params null 3)][$(func_set_params --precision null)]"')
    assert out.stdout.strip() == '[--iters=20][ ][ ]'


@pytest.fixture
def repo_copy(tmp_path):
    """The repository without data and outputs: the harness writes into its working tree."""
    dst = tmp_path / 'repo'
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns('.git', 'data', 'output', '__pycache__', '.pytest_cache'))
    return dst


@pytest.mark.slow
def test_lite_chain_runs_and_reproduces_the_expected_results(repo_copy):
    config = 'test_tipc/configs/ddrnet23_slim/train_infer_python.txt'
    prep = shell(f'bash test_tipc/prepare.sh {config} lite_train_lite_infer', cwd=repo_copy)
    assert prep.returncode == 0, prep.stderr[-2000:]
    run = shell(f'bash test_tipc/test_train_inference_python.sh {config} lite_train_lite_infer', cwd=repo_copy)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (repo_copy / 'test_tipc' / 'output' / 'ddrnet23_slim' / 'results_python.log').read_text()
    assert 'Run failed' not in log
    succeeded = [line for line in log.splitlines() if 'Run successfully with command - ddrnet23_slim - ' in line]
    steps = ['train.py', 'val.py', 'export.py'] + ['deploy/python/infer.py'] * 4
    assert [next(s for s in steps if s in line) for line in succeeded] == steps
    assert '--enable_mkldnn=True' in succeeded[3] and '--enable_mkldnn=False' in succeeded[5]
    mode_dir = repo_copy / 'test_tipc' / 'output' / 'ddrnet23_slim' / 'lite_train_lite_infer'
    assert 'skip gpu_list entry' in run.stdout or paddle.is_compiled_with_cuda()
    compare = shell('python test_tipc/compare_results.py --gt_dir test_tipc/results/ddrnet23_slim/lite_train_lite_infer '
                    f'--log_dir {mode_dir}', cwd=repo_copy)
    assert compare.returncode == 0 and compare.stdout.count('PASS') == 4, compare.stdout + compare.stderr


@pytest.mark.slow
def test_a_broken_step_fails_the_run_and_is_named(repo_copy):
    """whole_infer with an export flag that does not exist: the export and the inference
    after it are logged as failed, and the script exits non-zero."""
    src = repo_copy / 'test_tipc' / 'configs' / 'ddrnet23_slim' / 'train_infer_python.txt'
    lines = src.read_text().splitlines()
    assert lines[37].startswith('infer_export:export.py')
    lines[37] += ' --no_such_flag'
    broken = repo_copy / 'broken.txt'
    broken.write_text('\n'.join(lines) + '\n')
    prep = shell(f'bash test_tipc/prepare.sh {broken} lite_train_lite_infer', cwd=repo_copy)
    assert prep.returncode == 0, prep.stderr[-2000:]
    weights = repo_copy / 'test_tipc' / 'output' / 'ddrnet23_slim' / 'whole_infer' / 'model.pdparams'
    os.makedirs(weights.parent)
    paddle.save(DDRNet23Slim(num_classes=19).state_dict(), str(weights))
    run = shell(f'bash test_tipc/test_train_inference_python.sh {broken} whole_infer', cwd=repo_copy)
    assert run.returncode != 0
    log = (repo_copy / 'test_tipc' / 'output' / 'ddrnet23_slim' / 'results_python.log').read_text()
    failed = [line for line in log.splitlines() if 'Run failed with command - ddrnet23_slim - ' in line]
    assert 'export.py' in failed[0] and '--no_such_flag' in failed[0]
    assert 'step(s) of ddrnet23_slim whole_infer failed' in run.stderr


def test_unknown_mode_is_refused():
    out = shell('bash test_tipc/test_train_inference_python.sh test_tipc/configs/ddrnet23_slim/train_infer_python.txt lite')
    assert out.returncode == 2 and "unknown mode 'lite'" in out.stderr
