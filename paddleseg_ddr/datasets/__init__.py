"""Datasets registered in PaddleSeg's ``manager.DATASETS``, each declaring its ``METAINFO``."""
from ..utils.imports import import_submodules
from .metainfo import DatasetMeta, dataset_meta
from .cityscapes import CLASS_NAMES, DDRCityscapes
from .cityscapes_labels import convert_cityscapes
from .mini_cityscapes import generate_mini_cityscapes

import_submodules(__name__, __path__)  # every file registers its own components: new files need no edit here
