"""Models registered in PaddleSeg's ``manager.MODELS``; :mod:`.variants` is the table generic
code reads, :mod:`.blocks` the family-neutral layers, :mod:`.reparameterize` the deploy-time fusion."""
from ..utils.imports import import_submodules
from .ddrnet import DDRNet23, DDRNet23Slim, DDRNet39, DualResNet, DualResNetClassifier, imagenet_classifier
from .reparameterize import reparameterize
from .variants import Variant, create_model, get_variant, list_variants

import_submodules(__name__, __path__)  # every file registers its own components: new files need no edit here
