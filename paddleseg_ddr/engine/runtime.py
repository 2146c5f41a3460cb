"""Process set-up shared by the entry points: device, distributed environment, seeds."""
import random

import numpy as np
import paddle
import paddle.distributed as dist

from ..errors import UserError


def setup(device=None, seed=None):
    """Select the device, join the distributed group under ``paddle.distributed.launch``,
    and seed every generator. Returns (device, world_size, rank)."""
    if device is None:
        device = 'gpu' if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 'cpu'
    if device.startswith('gpu') and not paddle.is_compiled_with_cuda():
        raise UserError("--device gpu: this Paddle build has no CUDA support. Install a GPU build of "
                        "Paddle 3.x (see README, 'Installation') or use --device cpu.")
    paddle.set_device(device)
    if dist.get_world_size() > 1:
        dist.init_parallel_env()
    if seed is not None:
        paddle.seed(seed)
        np.random.seed(seed)
        random.seed(seed)
    return paddle.get_device(), dist.get_world_size(), dist.get_rank()
