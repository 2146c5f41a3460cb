from .metainfo import DatasetMeta, dataset_meta
from .cityscapes import CLASS_NAMES, DDRCityscapes
from .cityscapes_labels import convert_cityscapes
from .mini_cityscapes import generate_mini_cityscapes
