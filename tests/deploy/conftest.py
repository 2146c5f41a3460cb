import paddle
import pytest

from paddleseg_ddr.models import DDRNet23Slim


@pytest.fixture(scope='session')
def trained_like_model():
    paddle.seed(3)
    model = DDRNet23Slim(num_classes=19)
    model.train()  # a few batches through BN give non-trivial running statistics
    with paddle.no_grad():
        for _ in range(3):
            model(paddle.randn([2, 3, 64, 64]) * 2 + 0.5)
    model.eval()
    return model
