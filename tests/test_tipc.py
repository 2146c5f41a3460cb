"""The TIPC harness (test_tipc/).

- Config files parse line for line as PaddleSeg's parser reads them.
- The script's logic, fast, with stand-in commands: PaddleSeg's trainer names (norm_train,
  pact_train, ...) run, a run in which no step ran fails, an unknown trainer is refused, a
  broken step fails the run and is named.
- The lite chain of DDRNet-23-slim runs once for the module and is checked against what
  does not come from it: its exported model's label maps equal the dygraph model's on the
  same images, the mIoU it logs equals val_main's on the same checkpoint, and its logged
  accuracy and mIoU equal those of its label maps scored here against the ground truth.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import paddle
import pytest

from paddleseg_ddr.cli import val_main
from paddleseg_ddr.deploy import DygraphPredictor
from paddleseg_ddr.engine import Builder, load_config, load_model_weights

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
    assert [os.path.basename(os.path.dirname(c)) for c in CONFIGS] == [
        'ddrnet23', 'ddrnet23_slim', 'ddrnet23_slim_camvid', 'ddrnet39', 'rdrnet_s', 'rdrnet_s_simple_voc']


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
    assert lines[14] == 'trainer:norm_train'  # PaddleSeg's name: the key of line 15
    # the commands name scripts and a training config that exist and load
    for i in (15, 23, 29, 37, 39):
        script = lines[i].split(':', 1)[1].split()[0]
        assert os.path.isfile(os.path.join(ROOT, script)), lines[i]
    train_config = lines[15].split('--config ')[1].split()[0]
    model = re.sub(r'_(camvid|voc)$', '', name)  # a folder per model, suffixed by its dataset if not Cityscapes
    assert load_config(os.path.join(ROOT, train_config)).dic['model']['type'].lower() == model.replace('_', '')
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


# ---------------------------------------------------------------------------------------
# The script's own logic, fast: the harness alone in an empty tree, every command of the
# config a stand-in that records its arguments (no Paddle step runs).

FAKE_STEP = '''import sys
with open("calls.log", "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
sys.exit(1 if "--no_such_flag" in sys.argv else 0)
'''


@pytest.fixture
def harness(tmp_path):
    os.makedirs(tmp_path / 'test_tipc')
    for name in ('test_train_inference_python.sh', 'common_func.sh'):
        shutil.copy(os.path.join(ROOT, 'test_tipc', name), tmp_path / 'test_tipc' / name)
    (tmp_path / 'fake_step.py').write_text(FAKE_STEP)
    return tmp_path


def fake_config(harness, **changes):
    """DDRNet-23-slim's config with every command a fake_step.py call, on the CPU with one
    inference run; ``changes`` maps 'line<N>' (0-based, as the script counts) to a new line."""
    with open(os.path.join(ROOT, 'test_tipc', 'configs', 'ddrnet23_slim', 'train_infer_python.txt')) as f:
        lines = f.read().splitlines()
    lines[2] = f'python:{sys.executable}'
    lines[3], lines[4] = 'gpu_list:-1', '--device:cpu'
    lines[15] = 'norm_train:fake_step.py train'
    lines[23] = 'eval:fake_step.py eval'
    lines[29] = 'norm_export:fake_step.py export'
    lines[37] = 'infer_export:fake_step.py export'
    lines[39] = 'inference:fake_step.py infer'
    lines[40], lines[41], lines[43] = '--device:cpu', '--enable_mkldnn:False', '--batch_size:1'
    for key, line in changes.items():
        lines[int(key[len('line'):])] = line
    path = harness / 'config.txt'
    path.write_text('\n'.join(lines) + '\n')
    return path


def run_harness(harness, config, mode='lite_train_lite_infer'):
    run = shell(f'bash test_tipc/test_train_inference_python.sh {config} {mode}', cwd=harness)
    calls = (harness / 'calls.log').read_text().splitlines() if (harness / 'calls.log').exists() else []
    return run, calls


@pytest.mark.parametrize('trainers', ['norm_train', 'norm_train|pact_train', 'norm'])
def test_paddleseg_trainer_names_run_the_chain(harness, trainers):
    """PaddleSeg's configs say trainer:norm_train (the key of line 15); a trainer whose
    command is null (pact_train here) is skipped; 'norm' stays accepted."""
    run, calls = run_harness(harness, fake_config(harness, line14=f'trainer:{trainers}'))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert [c.split()[0] for c in calls] == ['train', 'eval', 'export', 'infer'], calls
    save_dir = f"--save_dir=./test_tipc/output/ddrnet23_slim/lite_train_lite_infer/{trainers.split('|')[0]}_gpus_-1_autocast_null"
    assert save_dir in calls[0] and '--iters=20' in calls[0] and '--batch_size=2' in calls[0], calls[0]
    if 'pact_train' in trainers:
        assert "skip trainer 'pact_train'" in run.stdout


def test_a_free_trainer_line_runs_with_its_export(harness):
    """Lines 19 and 20 name further trainers, exported by lines 33 and 34 (PaddleSeg's layout)."""
    config = fake_config(harness, line14='trainer:my_train', line19='my_train:fake_step.py train --mine',
                         line33='export1:fake_step.py export --mine')
    run, calls = run_harness(harness, config)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert [c.split()[:2] for c in calls] == [['train', '--mine'], ['eval', '--model_path=./test_tipc/output/'
                                              'ddrnet23_slim/lite_train_lite_infer/my_train_gpus_-1_autocast_null/'
                                              'iter_20/model.pdparams'], ['export', '--mine'], ['infer', '--device=cpu']]


NOTHING_RUNS = {
    'trainer_command_null': ({'line14': 'trainer:pact_train'}, 'lite_train_lite_infer',
                             "trainer 'pact_train': its command (line 17 of the file, 'pact_train:') is null"),
    'gpu_only_on_a_cpu': ({'line3': 'gpu_list:0', 'line4': '--device:gpu'}, 'lite_train_lite_infer',
                          "gpu_list entry '0' of ddrnet23_slim: no GPU visible"),
    'whole_infer_gpu_only': ({'line37': 'infer_export:null', 'line40': '--device:gpu'}, 'whole_infer',
                             'GPU inference of ddrnet23_slim: no GPU visible'),
}


@pytest.mark.parametrize('case', NOTHING_RUNS, ids=str)
def test_a_run_in_which_no_step_ran_fails(harness, case):
    changes, mode, reason = NOTHING_RUNS[case]
    if 'gpu' in case and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        pytest.skip('a GPU is visible: the GPU entries run')
    run, calls = run_harness(harness, fake_config(harness, **changes), mode)
    assert calls == []
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert f'no step of ddrnet23_slim {mode} ran, so nothing was tested' in run.stderr
    assert reason in run.stderr, run.stderr
    assert 'passed' not in run.stdout


def test_an_unknown_trainer_is_refused(harness):
    run, calls = run_harness(harness, fake_config(harness, line14='trainer:norm_train|quant_train'))
    assert run.returncode == 2 and calls == []
    assert "trainer 'quant_train' (line 15 of the file, 'trainer:') is not one of this config's trainers" in run.stderr
    assert 'norm_train pact_train fpgm_train distill_train' in run.stderr


def test_a_broken_step_fails_the_run_and_is_named(harness):
    """whole_infer whose export fails: logged as failed with its command, the inference after
    it still runs (and is logged), and the script exits 1 naming the count."""
    run, calls = run_harness(harness, fake_config(harness, line37='infer_export:fake_step.py export --no_such_flag'),
                             'whole_infer')
    assert run.returncode == 1
    assert [c.split()[0] for c in calls] == ['export', 'infer']
    log = (harness / 'test_tipc' / 'output' / 'ddrnet23_slim' / 'results_python.log').read_text()
    failed = [line for line in log.splitlines() if 'Run failed with command - ddrnet23_slim - ' in line]
    assert len(failed) == 1 and 'fake_step.py export --no_such_flag' in failed[0]
    assert '--model_path=./test_tipc/output/ddrnet23_slim/whole_infer/model.pdparams' in failed[0]
    assert '1 step(s) of ddrnet23_slim whole_infer failed' in run.stderr


def test_unknown_mode_is_refused():
    out = shell('bash test_tipc/test_train_inference_python.sh test_tipc/configs/ddrnet23_slim/train_infer_python.txt lite')
    assert out.returncode == 2 and "unknown mode 'lite'" in out.stderr


def test_whole_infer_without_an_export_command_infers_the_given_export(harness):
    """infer_export:null (PaddleSeg): infer_model already is an exported model."""
    run, calls = run_harness(harness, fake_config(harness, line36='infer_model:exported/model',
                                                  line37='infer_export:null'), 'whole_infer')
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(calls) == 1 and '--config=exported/model/deploy.yaml' in calls[0]


# ---------------------------------------------------------------------------------------
# The lite chain of DDRNet-23-slim, run once for the module, checked against computations
# that do not come from the chain: the dygraph model on the chain's checkpoint, val_main on
# it, and the exported label maps scored against the ground truth here with numpy.

LITE = 'lite_train_lite_infer'
# Exported (Paddle Inference, oneDNN on and off, batch 1 and 2) against dygraph label maps:
# measured 100% equal on every image of every run (4 runs x 4 images of 512x256). Kernels
# that sum in another order can flip a pixel whose two best classes tie, so 0.1% (131 pixels
# of an image) is allowed; a checkpoint 10 iterations away agrees on 48-63% only.
MIN_AGREEMENT = 0.999


def copy_repo(dst):
    """The repository without data and outputs: the harness writes into its working tree."""
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns('.git', 'data', 'output', '__pycache__', '.pytest_cache'))
    return dst


def flag(command, name):
    found = re.search(rf'{name}=([^\s!]+)', command)
    assert found, (name, command)
    return found.group(1)


@pytest.fixture(scope='module', params=['ddrnet23_slim', 'rdrnet_s'])
def lite_chain(request, tmp_path_factory):
    """The lite chain of one model, run once for all the checks below: DDRNet-23-slim, and
    RDRNet-S (trained as its training graph, evaluated and exported fused)."""
    name = request.param
    repo = copy_repo(tmp_path_factory.mktemp('tipc') / 'repo')
    config = f'test_tipc/configs/{name}/train_infer_python.txt'
    prep = shell(f'bash test_tipc/prepare.sh {config} {LITE}', cwd=repo)
    assert prep.returncode == 0, prep.stdout[-2000:] + prep.stderr[-2000:]
    run = shell(f'bash test_tipc/test_train_inference_python.sh {config} {LITE}', cwd=repo)
    out = repo / 'test_tipc' / 'output' / name
    commands = [line.split(f' - {name} - ', 1)[1] for line in (out / 'results_python.log').read_text().splitlines()
                if f' with command - {name} - ' in line]
    data = repo / 'test_tipc' / 'data' / 'mini_cityscapes'
    with open(data / 'infer.list') as f:  # the images inference ran on, and where their results went
        images = [(os.path.normpath(e), str(data / e)) for e in f.read().split()]
    step = lambda script: next(c for c in commands if f' {script} ' in c)
    return SimpleNamespace(
        name=name, repo=repo, run=run, log=(out / 'results_python.log').read_text(), commands=commands, images=images, data=data,
        mode_dir=out / LITE, train_config=step('train.py').split('--config ')[1].split()[0],
        exported_weights=flag(step('export.py'), '--model_path'), evaluated_weights=flag(step('val.py'), '--model_path'),
        eval_log=out / LITE / (os.path.basename(os.path.dirname(os.path.dirname(flag(step('val.py'), '--model_path'))))
                               + '_eval.log'),
        runs=sorted(p for p in (out / LITE).glob('*_results') if p.is_dir()))


def read_label(path):
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert label is not None, f'no label map {path}'
    return label


def exported_label_maps(chain, run):
    return {rel: read_label(run / 'label' / (os.path.splitext(rel)[0] + '.png')) for rel, _ in chain.images}


def dygraph_label_maps(chain, weights, monkeypatch):
    """The checkpoint's label maps from the project's Python API (dygraph, no export)."""
    monkeypatch.chdir(chain.repo)  # the config's paths are relative to the repository
    cfg = load_config(chain.train_config)
    model = Builder(cfg).model
    load_model_weights(model, weights)
    predictor = DygraphPredictor(model, cfg.val_dataset_cfg.get('transforms', []))
    return {rel: predictor(cv2.imread(path, cv2.IMREAD_COLOR)) for rel, path in chain.images}


def agreement(maps, reference):
    assert maps.keys() == reference.keys()
    for rel in maps:
        assert maps[rel].shape == reference[rel].shape, (rel, maps[rel].shape, reference[rel].shape)
    return {rel: float((maps[rel] == reference[rel]).mean()) for rel in maps}


def write_label_maps(maps, folder):
    for rel, label in maps.items():
        path = folder / 'label' / (os.path.splitext(rel)[0] + '.png')
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), label)
    return folder


def logged_metric(log_text, name):
    """The value the eval step logged for ``name`` ('mIoU', 'Acc'), the same wherever it appears."""
    values = set(re.findall(rf'\b{name}:\s*([0-9]+\.[0-9]+)', log_text))
    assert len(values) == 1, (name, values, log_text[-3000:])
    return values.pop()


@pytest.mark.slow
def test_lite_chain_runs_every_step(lite_chain):
    run = lite_chain.run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 'Run failed' not in lite_chain.log
    steps = ['train.py', 'val.py', 'export.py'] + ['deploy/python/infer.py'] * 4
    assert [next(s for s in steps if f' {s} ' in c) for c in lite_chain.commands] == steps
    assert '--enable_mkldnn=True' in lite_chain.commands[3] and '--enable_mkldnn=False' in lite_chain.commands[5]
    assert 'norm_train_gpus_-1_autocast_null' in lite_chain.commands[0]
    assert 'skip gpu_list entry' in run.stdout or paddle.is_compiled_with_cuda()
    assert len(lite_chain.runs) == 4 and len(lite_chain.images) == 4


@pytest.mark.slow
def test_exported_label_maps_equal_the_dygraph_models(lite_chain, monkeypatch, tmp_path):
    """Every inference run of the export gives, pixel for pixel, the dygraph model's label
    maps of the checkpoint that was exported (compare_results.py says the same)."""
    reference = dygraph_label_maps(lite_chain, lite_chain.exported_weights, monkeypatch)
    assert all(len(np.unique(label)) >= 3 for label in reference.values())  # not a constant map
    worst = {}
    for run in lite_chain.runs:
        found = agreement(exported_label_maps(lite_chain, run), reference)
        worst[run.name] = min(found.values())
        print(f'{run.name}: pixel agreement with dygraph min {min(found.values()):.6f} '
              f'mean {np.mean(list(found.values())):.6f}')
    assert min(worst.values()) >= MIN_AGREEMENT, worst
    compare = shell(f'{sys.executable} test_tipc/compare_results.py --gt_dir {write_label_maps(reference, tmp_path)} '
                    f'--log_dir {lite_chain.mode_dir}', cwd=lite_chain.repo)
    assert compare.returncode == 0 and compare.stdout.count('PASS') == 4, compare.stdout + compare.stderr


@pytest.mark.slow
def test_the_label_map_check_fails_on_another_checkpoint(lite_chain, monkeypatch, tmp_path):
    """The control: the chain's other checkpoint (10 iterations away) is caught."""
    exported = paddle.load(str(lite_chain.repo / lite_chain.exported_weights))
    others = sorted(lite_chain.repo.glob(f'test_tipc/output/{lite_chain.name}/{LITE}/*/iter_*/model.pdparams'))
    other = next(p for p in others if any(not np.array_equal(v.numpy(), exported[k].numpy())
                                          for k, v in paddle.load(str(p)).items()))
    reference = dygraph_label_maps(lite_chain, str(other), monkeypatch)
    found = agreement(exported_label_maps(lite_chain, lite_chain.runs[0]), reference)
    print(f'{other.parent.name} against the export: pixel agreement {sorted(found.values())}')
    assert max(found.values()) < MIN_AGREEMENT, found
    compare = shell(f'{sys.executable} test_tipc/compare_results.py --gt_dir {write_label_maps(reference, tmp_path)} '
                    f'--log_dir {lite_chain.mode_dir}', cwd=lite_chain.repo)
    assert compare.returncode == 1 and compare.stdout.count('FAIL') == 4, compare.stdout + compare.stderr


@pytest.mark.slow
def test_logged_miou_equals_val_main_on_the_same_checkpoint(lite_chain, monkeypatch):
    logged = logged_metric(lite_chain.eval_log.read_text(), 'mIoU')
    monkeypatch.chdir(lite_chain.repo)
    metrics = val_main(['--config', lite_chain.train_config, '--model_path', lite_chain.evaluated_weights,
                        '--device', 'cpu'])
    print(f'mIoU logged by the chain {logged}, val_main {metrics["miou"]:.6f}')
    assert f'{metrics["miou"]:.4f}' == logged


@pytest.mark.slow
def test_logged_metrics_equal_the_exported_label_maps_scored_here(lite_chain):
    """Pixel accuracy and mIoU of each inference run's label maps against the ground truth
    (labelTrainIds), counted with numpy, equal what the chain's eval step logged: the export
    and the evaluation agree with each other and with a confusion matrix made here."""
    val_images = sorted(str(p.relative_to(lite_chain.data)) for p in lite_chain.data.glob('leftImg8bit/val/*/*.png'))
    assert sorted(rel for rel, _ in lite_chain.images) == val_images  # inference ran on the whole val set
    eval_log = lite_chain.eval_log.read_text()
    num_classes = 19
    for run in lite_chain.runs:
        conf = np.zeros((num_classes, num_classes), np.int64)
        for rel, pred in exported_label_maps(lite_chain, run).items():
            gt = read_label(lite_chain.data / rel.replace('leftImg8bit', 'gtFine', 1)
                            .replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png'))
            keep = gt != 255
            conf += np.bincount(gt[keep].astype(np.int64) * num_classes + pred[keep],
                                minlength=num_classes**2).reshape(num_classes, num_classes)
        tp, union = np.diag(conf), conf.sum(0) + conf.sum(1) - np.diag(conf)
        acc, miou = tp.sum() / conf.sum(), np.mean(tp[union > 0] / union[union > 0])
        print(f'{run.name}: Acc {acc:.6f} mIoU {miou:.6f} (classes present: {int((union > 0).sum())})')
        assert (f'{acc:.4f}', f'{miou:.4f}') == (logged_metric(eval_log, 'Acc'), logged_metric(eval_log, 'mIoU'))
