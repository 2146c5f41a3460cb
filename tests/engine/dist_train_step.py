"""Run under `python -m paddle.distributed.launch --nproc_per_node 2`: one training step
through the project's engine, then every rank writes its parameters to <out>/rank<N>.npz."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

from paddleseg_ddr.engine import Builder, load_config, train  # noqa: E402
from paddleseg_ddr.engine.runtime import setup  # noqa: E402


def main(config, out_dir, iters):
    _, nranks, rank = setup('cpu', seed=rank_seed())
    cfg = load_config(config, iters=iters)
    builder = Builder(cfg)
    summary = train(builder.model, builder.train_dataset, builder.optimizer, builder.loss, cfg.iters,
                    cfg.batch_size, save_dir=os.path.join(out_dir, 'ckpt'), save_interval=1000, log_iters=1)
    params = {name: p.numpy() for name, p in builder.model.named_parameters()}
    np.savez(os.path.join(out_dir, f'rank{rank}.npz'), nranks=nranks, iters=summary['iter'], **params)


def rank_seed():
    # Different seeds per rank: identical weights afterwards must come from DataParallel
    # (parameter broadcast at start, gradient all-reduce), not from identical initialisation.
    return 100 + int(os.environ.get('PADDLE_TRAINER_ID', '0'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
