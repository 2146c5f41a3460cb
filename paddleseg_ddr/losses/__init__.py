"""Losses registered in PaddleSeg's ``manager.LOSSES``."""
from ..utils.imports import import_submodules
from .boundary import BoundaryBCELoss
from .cross_entropy import DDRCrossEntropyLoss
from .ohem_cross_entropy import DDROhemCrossEntropyLoss

import_submodules(__name__, __path__)  # every file registers its own components: new files need no edit here
