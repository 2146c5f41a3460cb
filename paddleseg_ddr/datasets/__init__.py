from .cityscapes import CLASS_NAMES, DDRCityscapes
