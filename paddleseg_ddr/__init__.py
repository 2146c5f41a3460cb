"""Real-time road-scene segmentation (DDRNet and its neighbours) on PaddleSeg. Importing this package registers the project's models, losses and
datasets in ``paddleseg.cvlibs.manager`` under names of their own."""
from . import models, losses, datasets  # noqa: F401  (registration side effects)

__version__ = '0.2.0'
