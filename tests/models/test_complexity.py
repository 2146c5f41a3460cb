import pytest

from paddleseg_ddr.engine.runtime import setup
from paddleseg_ddr.models import DDRNet23, DDRNet23Slim, DDRNet39
from paddleseg_ddr.models.complexity import count_macs


@pytest.mark.parametrize('factory,paper_gmacs', [(DDRNet23Slim, 36.3), (DDRNet23, 143.1), (DDRNet39, 281.1)],
                         ids=['23-slim', '23', '39'])
def test_macs_at_1024x2048_match_the_paper(factory, paper_gmacs):
    """The paper's "GFLOPs" (convolution MACs, Table of arXiv 2101.06085) within 1%."""
    setup('cpu')
    model = factory(num_classes=19)
    gmacs = count_macs(model) / 1e9
    assert abs(gmacs - paper_gmacs) <= 0.01 * paper_gmacs, gmacs
    assert model.training  # counting leaves the model as it was


def test_macs_scale_with_the_input_and_skip_the_aux_head():
    model = DDRNet23Slim(num_classes=19, aux_head=True)
    small, large = count_macs(model, (1, 3, 128, 256)), count_macs(model, (2, 3, 256, 512))
    # 8x the pixels; the global-pooling branch of DAPPM does not grow with the input
    assert 7.9 * small < large < 8.0 * small
    assert small == count_macs(DDRNet23Slim(num_classes=19, aux_head=False), (1, 3, 128, 256))
