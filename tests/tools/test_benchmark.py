import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONFIG = os.path.join(ROOT, 'configs', 'ddrnet', 'ddrnet23_slim_cityscapes_1024x1024_120k.yml')
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import benchmark  # noqa: E402


def run_benchmark(tmp_path, *extra):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), *extra,
                           '--peak_sizes', '128', '256', '--json', str(out)],
                          capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope='module')
def engines_run(tmp_path_factory):
    """One run of Paddle Inference + oneDNN and OpenVINO at fp32 and bf16, OpenVINO with both
    heads, and PyTorch, on a 64x128 street scene; label maps kept. (dygraph and ONNX Runtime:
    the RDRNet test below.)"""
    tmp_path = tmp_path_factory.mktemp('bench')
    labels = tmp_path / 'labels'
    images = tmp_path / 'images'  # two small images of other sizes for --agreement_images
    images.mkdir()
    import cv2
    for i, (h, w) in enumerate(((40, 56), (48, 40))):
        cv2.imwrite(str(images / f'{i}.png'), (np.random.default_rng(i).random((h, w, 3)) * 255).astype(np.uint8))
    result, stdout = run_benchmark(tmp_path, '--config', CONFIG, '--input_shape', '1', '3', '64', '128',
                                   '--warmup', '0', '--repeats', '2', '--precisions', 'fp32', 'bf16',
                                   '--heads', 'runtime', 'fast', '--save_labels', str(labels),
                                   '--agreement_images', str(images),
                                   '--engines', 'paddle_onednn', 'openvino', 'torch')
    return result, stdout, labels


def test_one_table_per_engine_precision_and_head(engines_run):
    result, stdout, _ = engines_run
    assert result['params'] == 5695987 and result['model'] == 'DDRNet23Slim'
    rows = {(r['engine'], r['precision'], r['head']): r for r in result['engines']}
    expected = {('paddle_onednn', 'fp32', 'runtime'), ('paddle_onednn', 'bf16', 'runtime'),
                ('openvino', 'fp32', 'runtime'), ('openvino', 'fp32', 'fast'),
                ('openvino', 'bf16', 'runtime'), ('openvino', 'bf16', 'fast'), ('torch', 'fp32', 'runtime')}
    assert set(rows) == expected
    for key, row in rows.items():
        assert 'error' not in row, (key, row)
        assert len(row['times']) == 2 and row['median_s'] > 0 and row['peak_rss_mb'] > 50
        assert row['median_s'] == pytest.approx(float(np.median(row['times'])))
        assert f"| {row['path']} | {row['precision']} | {row['median_s']:.3f} | {row['p90_s']:.3f} |" in stdout
    # PyTorch runs fp32 only: skipped with the reason, not run
    assert {'path': 'torch', 'precision': 'bf16', 'why': 'torch runs fp32 only here'} in result['skipped']
    assert result['reference'] == 'paddle_onednn fp32'  # without ONNX Runtime: the first fp32 path
    assert '| reference |' in stdout


def test_agreement_and_percent_of_peak_recomputed_independently(engines_run):
    result, _, labels = engines_run
    reference = np.load(labels / 'paddle_onednn_fp32_runtime_fused.npy')
    assert reference.shape == (1, 64, 128)
    reference_set = np.load(labels / 'paddle_onednn_fp32_runtime_fused.set.npy')
    peaks = result['matmul_peaks']
    assert set(peaks) == {'fp32', 'bf16', 'int8'} and peaks['fp32']['numpy'] > 1
    assert result['sgemm_peak_gflops'] == peaks['fp32']
    flops = 2 * result['gmacs'] * 1e9
    for row in result['engines']:
        if row['engine'] == 'torch':
            assert 'agreement_with_fp32' not in row and 'percent_of_peak' not in row
            continue
        mine = np.load(labels / f"{row['engine']}_{row['precision']}_{row['head']}_fused.npy")
        assert row['agreement_with_fp32'] == pytest.approx(np.mean(mine == reference), abs=1e-12)
        # over --agreement_images: every pixel of the two images (40x56 + 48x40)
        mine_set = np.load(labels / f"{row['engine']}_{row['precision']}_{row['head']}_fused.set.npy")
        assert mine_set.shape == (40 * 56 + 48 * 40,)
        assert row['agreement_images_with_fp32'] == pytest.approx(np.mean(mine_set == reference_set), abs=1e-12)
        peak = max(peaks[row['precision']].values())
        assert row['percent_of_peak'] == pytest.approx(100 * flops / row['median_s'] / 1e9 / peak)
    rows = {(r['engine'], r['precision'], r['head']): r for r in result['engines']}
    assert rows[('paddle_onednn', 'fp32', 'runtime')]['agreement_with_fp32'] == 1.0
    # the fast head is exact: OpenVINO's fp32 label map whichever head finishes it (in bf16 the
    # runtime's head computes the upsample in bf16 too, the fast head in fp32: they may differ)
    np.testing.assert_array_equal(np.load(labels / 'openvino_fp32_fast_fused.npy'),
                                  np.load(labels / 'openvino_fp32_runtime_fused.npy'))


def test_stage_breakdown_and_goals(engines_run):
    result, stdout, _ = engines_run
    stages = {b['precision']: b for b in result['breakdown']}
    assert set(stages) == {'fp32', 'bf16'}
    for b in stages.values():
        assert 'error' not in b, b
        assert all(b[k] >= 0 for k in ('preprocess', 'network', 'upsample_argmax', 'postprocess'))
        assert b['network'] > 0 and 0 <= b['boundary_pixel_share'] <= 1
        if b['path'].endswith('fast head'):  # the engine's own head timed beside it
            assert b['runtime_upsample_argmax'] >= 0 and b['runtime_head_whole_run'] > 0
    goals = result['goals']
    timed = [r for r in result['engines'] if r['engine'] != 'torch']
    fastest = min((r for r in timed if r['precision'] == 'fp32'), key=lambda r: r['median_s'])
    torch_s = next(r['median_s'] for r in result['engines'] if r['engine'] == 'torch')
    assert goals['fp32_fastest']['path'] == fastest['path']
    assert goals['fp32_fastest']['speedup_vs_torch'] == pytest.approx(torch_s / fastest['median_s'])
    bf16 = min((r for r in timed if r['precision'] == 'bf16'), key=lambda r: r['median_s'])
    assert goals['bf16_fastest']['agreement_with_fp32'] == bf16['agreement_with_fp32']
    assert 'Goals (issue 15): fp32 fastest' in stdout and 'Where the time goes' in stdout


def test_goal_ratios_and_skips_from_rows():
    """The pure functions on hand-made rows: plan_paths skips what cannot run, goal_ratios picks
    the fastest path per precision and divides by PyTorch eager's median."""
    class Args:
        graphs, engines, precisions, heads = ['fused'], ['paddle', 'onnxruntime', 'torch'], ['fp32', 'int8'], \
            ['runtime', 'fast']
    paths, skipped = benchmark.plan_paths(Args, {'fused': set()})
    assert paths == [('fused', 'paddle', 'fp32', 'runtime'), ('fused', 'onnxruntime', 'fp32', 'runtime'),
                     ('fused', 'onnxruntime', 'fp32', 'fast'), ('fused', 'torch', 'fp32', 'runtime')]
    assert [(p, q) for p, q, _ in skipped] == [('paddle', 'int8'), ('onnxruntime', 'int8'), ('torch', 'int8')]
    rows = [{'engine': 'torch', 'path': 'torch', 'precision': 'fp32', 'graph': 'fused', 'median_s': 0.6},
            {'engine': 'onnxruntime', 'path': 'onnxruntime', 'precision': 'fp32', 'graph': 'fused', 'median_s': 0.4,
             'percent_of_peak': 81.0},
            {'engine': 'openvino', 'path': 'openvino + fast head', 'precision': 'bf16', 'graph': 'fused',
             'median_s': 0.15, 'agreement_with_fp32': 0.999},
            {'engine': 'openvino', 'path': 'openvino', 'precision': 'bf16', 'graph': 'fused', 'median_s': 0.2,
             'agreement_with_fp32': 0.998}]
    goals = benchmark.goal_ratios(rows)
    assert goals['fp32_fastest']['speedup_vs_torch'] == pytest.approx(1.5)
    assert goals['bf16_fastest'] == {'path': 'openvino + fast head', 'median_s': 0.15,
                                     'agreement_with_fp32': 0.999, 'speedup_vs_torch': pytest.approx(4.0)}
    # an int8 model ONNX Runtime can read, but no Paddle int8 graph
    Args.precisions = ['int8']
    paths, skipped = benchmark.plan_paths(Args, {'fused': {'onnx_model'}})
    assert paths == [('fused', 'onnxruntime', 'int8', 'runtime'), ('fused', 'onnxruntime', 'int8', 'fast')]
    assert [(p, q) for p, q, _ in skipped] == [('paddle', 'int8'), ('torch', 'int8')]
    assert benchmark.agreement(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [0, 4]])) == 0.75


def test_benchmark_runs_both_graphs_of_a_reparameterisable_model(tmp_path):
    """RDRNet-S-Simple: the fused graph has the deployed size and the same work as the paper
    counts (41.0 GFLOPs at 1024x2048 scales with the pixels), the training graph more of both;
    each Paddle engine runs once per graph."""
    config = os.path.join(ROOT, 'configs', 'rdrnet', 'rdrnet_s_simple_cityscapes_1024x1024_120k.yml')
    result, _ = run_benchmark(tmp_path, '--config', config, '--input_shape', '1', '3', '128', '256',
                              '--warmup', '0', '--repeats', '1', '--engines', 'dygraph', 'onnxruntime',
                              '--graphs', 'fused', 'train')
    assert result['params'] > result['params_fused'] and result['gmacs_train_graph'] > result['gmacs']
    assert abs(result['gmacs'] * 64 - 41.0) < 0.02 * 41.0  # 128x256 is 1/64 of 1024x2048
    rows = {(r['path'], r['graph']) for r in result['engines'] if 'error' not in r}
    assert rows == {('dygraph', 'fused'), ('onnxruntime', 'fused'),
                    ('dygraph (training graph)', 'train'), ('onnxruntime (training graph)', 'train')}
    # the same weights in every path: the training and fused graphs give the same labels
    assert all(r['agreement_with_fp32'] > 0.99 for r in result['engines'])


def test_comparison_table_over_registered_models_and_plot(tmp_path):
    out, png = tmp_path / 'table.json', tmp_path / 'plot.png'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), '--models', 'ddrnet23_slim',
                           'pidnet_s', '--input_shape', '1', '3', '128', '256', '--warmup', '0', '--repeats', '1',
                           '--json', str(out), '--plot', str(png)], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r['model']: r for r in json.loads(out.read_text())['models']}
    assert rows['ddrnet23_slim']['params'] == 5_695_987 and rows['pidnet_s']['params'] == 7_625_715
    assert all(r['onnxruntime_s'] > 0 for r in rows.values())
    assert '| pidnet_s | 7.63 |' in proc.stdout and '| 77.8 | 131.7 |' in proc.stdout
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
