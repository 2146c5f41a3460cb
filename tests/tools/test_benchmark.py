import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CONFIG = os.path.join(ROOT, 'configs', 'ddrnet', 'ddrnet23_slim_cityscapes_1024x1024_120k.yml')


def test_benchmark_prints_one_table_and_writes_json(tmp_path):
    """Every engine runs (in its own process) on a small input; the paper config needs no
    pretrained file here."""
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), '--config', CONFIG,
                           '--input_shape', '1', '3', '128', '256', '--warmup', '1', '--repeats', '2',
                           '--json', str(out)], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['params'] == 5695987 and result['model'] == 'DDRNet23Slim'
    engines = {row['engine']: row for row in result['engines']}
    assert sorted(engines) == sorted(['dygraph', 'paddle', 'paddle_onednn', 'onnxruntime', 'torch'])
    for name, row in engines.items():
        assert 'error' not in row, (name, row)
        assert len(row['times']) == 2 and row['median_s'] > 0 and row['peak_rss_mb'] > 50
        assert f"| {name} | {row['median_s']:.3f} |" in proc.stdout
    assert result['sgemm_peak_gflops']['numpy'] > 1


def test_benchmark_runs_both_graphs_of_a_reparameterisable_model(tmp_path):
    """RDRNet-S-Simple: the fused graph has the deployed size and the same work as the paper
    counts (41.0 GFLOPs at 1024x2048 scales with the pixels), the training graph more of both;
    each Paddle engine runs once per graph."""
    config = os.path.join(ROOT, 'configs', 'rdrnet', 'rdrnet_s_simple_cityscapes_1024x1024_120k.yml')
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), '--config', config,
                           '--input_shape', '1', '3', '128', '256', '--warmup', '0', '--repeats', '1',
                           '--engines', 'dygraph', 'onnxruntime', '--graphs', 'fused', 'train',
                           '--json', str(out)], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['params'] > result['params_fused'] and result['gmacs_train_graph'] > result['gmacs']
    assert abs(result['gmacs'] * 64 - 41.0) < 0.02 * 41.0  # 128x256 is 1/64 of 1024x2048
    rows = {(r['engine'], r['graph']) for r in result['engines'] if 'error' not in r}
    assert rows == {('dygraph', 'fused'), ('onnxruntime', 'fused'),
                    ('dygraph (training graph)', 'train'), ('onnxruntime (training graph)', 'train')}


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
