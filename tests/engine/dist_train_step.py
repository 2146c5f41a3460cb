"""Run under `python -m paddle.distributed.launch --nproc_per_node 2` (one launch, several checks):

A. ``train_main`` exactly as a user runs it (the product's own seeding: the same --seed on
   every rank), DDRNet with plain BN, ``--do_eval``. The config's ``RecordDraws`` transform
   records each sample's augmentation draws.
B. ``train`` on ``TinySeg`` (no BN, deterministic transforms) for one step, then a
   distributed ``evaluate``, for the exact comparisons with one process made by the test.

Every rank writes <out>/rank<N>.npz.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

import paddle  # noqa: E402
import paddle.distributed as dist  # noqa: E402

import paddleseg_ddr.engine as engine  # noqa: E402
import tiny_models  # noqa: E402  (registers TinySeg and RecordDraws)
from paddleseg_ddr.cli import train_main  # noqa: E402
from paddleseg_ddr.engine import Builder, evaluate, load_config, train  # noqa: E402


def state_of(model, prefix):
    return {prefix + k: v.numpy() for k, v in model.state_dict().items()}


def phase_a(config, out_dir):
    seen = {}
    original = engine.train

    def recording_train(model, *args, **kwargs):
        seen['init'] = state_of(model, 'a_init/')
        seen['model'] = model
        return original(model, *args, **kwargs)

    engine.train = recording_train  # train_main looks it up at call time
    try:
        summary = train_main(['--config', config, '--device', 'cpu', '--save_dir', os.path.join(out_dir, 'a'),
                              '--save_interval', '2', '--log_iters', '1', '--do_eval'])
    finally:
        engine.train = original
    return {**seen['init'], **state_of(seen['model'], 'a_final/'), 'a_draws': np.array(tiny_models.DRAWS),
            'a_best_miou': summary['best_miou'], 'a_iters': summary['iter']}


def phase_b(config, out_dir):
    paddle.seed(0)
    cfg = load_config(config)
    builder = Builder(cfg)
    model = builder.model
    init = state_of(model, 'b_init/')
    train(model, builder.train_dataset, builder.optimizer, builder.loss, cfg.iters, cfg.batch_size,
          save_dir=os.path.join(out_dir, 'b'), save_interval=1000, log_iters=1)
    conf = evaluate(model, builder.val_dataset, print_detail=False)['confusion']
    return {**init, **state_of(model, 'b_final/'), 'b_img': model.last_batch['img'],
            'b_label': model.last_batch['label'], 'b_conf': conf}


def main(config_a, config_b, out_dir):
    results = phase_a(config_a, out_dir)
    results.update(phase_b(config_b, out_dir))
    np.savez(os.path.join(out_dir, f'rank{dist.get_rank()}.npz'), nranks=dist.get_world_size(), **results)


if __name__ == '__main__':
    main(*sys.argv[1:4])
