import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import tiny_models  # noqa: F401  (registers TinySeg and RecordDraws, as in dist_train_step.py)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NORMALIZE = {'type': 'Normalize', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}


@pytest.fixture(scope='module')
def launched(tmp_path_factory, mini_root):
    """ONE `paddle.distributed.launch --nproc_per_node 2` run of dist_train_step.py (~40-60 s);
    the tests below check its results."""
    import yaml
    tmp = tmp_path_factory.mktemp('dist')
    common = {'_base_': os.path.join(ROOT, 'configs', 'quickstart', 'ddrnet23_slim_mini_cityscapes.yml'), 'batch_size': 2, 'val_dataset': {'dataset_root': mini_root}}
    config_a = {**common, 'iters': 2,
                'train_dataset': {'dataset_root': mini_root, 'transforms': [
                    {'type': 'RecordDraws'}, {'type': 'RandomPaddingCrop', 'crop_size': [64, 64]},
                    {'type': 'RandomHorizontalFlip'}, NORMALIZE]},
                'loss': {'types': [{'type': 'DDROhemCrossEntropyLoss', 'min_kept': 1024, 'weight': None}],
                         'coef': [1, 0.4]}}
    config_b = {**common, 'iters': 1, 'model': {'type': 'TinySeg', 'num_classes': 19, 'pretrained': None},
                'train_dataset': {'dataset_root': mini_root, 'transforms': [
                    {'type': 'Resize', 'target_size': [64, 32]}, NORMALIZE]}}
    paths = []
    for name, dic in (('a', config_a), ('b', config_b)):
        paths.append(str(tmp / f'config_{name}.yml'))
        with open(paths[-1], 'w') as f:
            yaml.safe_dump(dic, f)
    cmd = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2', '--log_dir', str(tmp / 'log'),
           os.path.join(ROOT, 'tests', 'engine', 'dist_train_step.py'), *paths, str(tmp)]
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900, env=env)
    logs = ''.join(open(os.path.join(tmp, 'log', f)).read() for f in sorted(os.listdir(tmp / 'log')))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-5000:]
    ranks = [dict(np.load(tmp / f'rank{r}.npz')) for r in range(2)]
    assert int(ranks[0]['nranks']) == 2
    return {'dir': tmp, 'ranks': ranks, 'configs': paths, 'logs': logs}


def _group(rank, prefix):
    return {k[len(prefix):]: v for k, v in rank.items() if k.startswith(prefix)}


def _is_bn_stat(name):
    return name.endswith(('._mean', '._variance'))


@pytest.mark.slow
def test_ranks_start_identical_and_stay_in_sync(launched):
    """The product's seeding (same seed on every rank) gives identical initial weights;
    after two steps every trainable weight is identical (gradient all-reduce)."""
    r0, r1 = launched['ranks']
    assert int(r0['a_iters']) == 2
    init0, init1 = _group(r0, 'a_init/'), _group(r1, 'a_init/')
    assert len(init0) > 100
    for k in init0:
        np.testing.assert_array_equal(init0[k], init1[k], err_msg=k)
    final0, final1 = _group(r0, 'a_final/'), _group(r1, 'a_final/')
    assert any(not np.array_equal(final0[k], init0[k]) for k in final0 if not _is_bn_stat(k))
    for k in final0:
        if not _is_bn_stat(k):
            np.testing.assert_array_equal(final0[k], final1[k], err_msg=k)


@pytest.mark.slow
def test_ranks_draw_their_own_augmentations(launched):
    """Issue 9 (4): with one --seed for all ranks and no data workers, the ranks used to
    draw the same augmentation stream. Every sample now has its own draws."""
    d0, d1 = (r['a_draws'] for r in launched['ranks'])
    assert len(d0) == len(d1) == 4  # 2 iterations x 2 images per rank
    draws = [tuple(x) for x in np.concatenate([d0, d1])]
    assert len(set(draws)) == len(draws), draws


@pytest.mark.slow
def test_do_eval_scores_the_saved_model(launched):
    """Issue 9 (5): before evaluating, every rank takes rank 0's BN statistics, so the
    distributed mIoU is the mIoU of best_model/ (rank 0's weights) evaluated alone."""
    from paddleseg_ddr.engine import Builder, evaluate, load_config, load_model_weights
    r0, r1 = launched['ranks']
    final0, final1 = _group(r0, 'a_final/'), _group(r1, 'a_final/')
    stats = [k for k in final0 if _is_bn_stat(k)]
    assert len(stats) > 20
    for k in stats:  # the last thing training did was the evaluation
        np.testing.assert_array_equal(final0[k], final1[k], err_msg=k)
    best = launched['dir'] / 'a' / 'best_model'
    builder = Builder(load_config(launched['configs'][0]))
    load_model_weights(builder.model, str(best / 'model.pdparams'))
    alone = evaluate(builder.model, builder.val_dataset, print_detail=False)
    # (1e-4: a pixel whose argmax flips with another CPU thread count must not fail the test)
    assert float(r0['a_best_miou']) == pytest.approx(alone['miou'], abs=1e-4)
    with open(best / 'score.json') as f:
        assert json.load(f) == {'miou': pytest.approx(float(r0['a_best_miou']), abs=1e-9), 'iter': 2}


@pytest.mark.slow
def test_two_process_step_equals_one_process_step_on_the_joint_batch(launched):
    """Each rank reads its own shard, gradients are averaged (not summed): one SGD step of
    two ranks on batches of 2 equals one step of one process on the 4 images together."""
    from paddleseg_ddr.engine import Builder, load_config
    r0, r1 = launched['ranks']
    builder = Builder(load_config(launched['configs'][1]))
    dataset = builder.train_dataset
    shards = []
    for rank, result in enumerate(launched['ranks']):
        sampler = paddle.io.DistributedBatchSampler(dataset, 2, num_replicas=2, rank=rank, shuffle=True, drop_last=True)
        sampler.set_epoch(0)
        shards.append(next(iter(sampler)))
        expected = np.stack([dataset[i]['img'] for i in shards[-1]])
        np.testing.assert_allclose(result['b_img'], expected, rtol=0, atol=1e-6, err_msg=f'rank {rank} batch')
    assert not set(shards[0]) & set(shards[1])

    init0, init1 = _group(r0, 'b_init/'), _group(r1, 'b_init/')
    for k in init0:
        np.testing.assert_array_equal(init0[k], init1[k], err_msg=k)
    model, optimizer = builder.model, builder.optimizer
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in init0.items()})
    model.train()
    img = paddle.to_tensor(np.concatenate([r0['b_img'], r1['b_img']]))
    label = paddle.to_tensor(np.concatenate([r0['b_label'], r1['b_label']])).astype('int64')
    loss, _ = model.compute_loss(model(img), {'img': img, 'label': label}, builder.loss)
    loss.backward()
    optimizer.step()
    final0, final1 = _group(r0, 'b_final/'), _group(r1, 'b_final/')
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(final0[k], final1[k], err_msg=k)
        step = np.abs(final0[k] - init0[k]).max()
        assert step > 1e-4, k  # a real step, so that a summed gradient (2x step) could not pass
        np.testing.assert_allclose(final0[k], v.numpy(), rtol=1e-5, atol=1e-4 * step, err_msg=k)


@pytest.mark.slow
def test_distributed_evaluation_equals_one_process(launched):
    from paddleseg_ddr.engine import Builder, evaluate, load_config
    r0, r1 = launched['ranks']
    builder = Builder(load_config(launched['configs'][1]))
    builder.model.set_state_dict({k: paddle.to_tensor(v) for k, v in _group(r0, 'b_final/').items()})
    alone = evaluate(builder.model, builder.val_dataset, print_detail=False)['confusion']
    assert alone.sum() > 0
    np.testing.assert_array_equal(r0['b_conf'], alone)
    np.testing.assert_array_equal(r1['b_conf'], alone)
