from .ddrnet import (VARIANTS, DDRNet23, DDRNet23Slim, DDRNet39, DualResNet, DualResNetClassifier,
                     imagenet_classifier)
