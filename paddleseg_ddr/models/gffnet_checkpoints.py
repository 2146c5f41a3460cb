"""Checkpoint adapter: PyTorch state dicts of GFF-Net on the deep-stem ResNet-101 -> :class:`.gffnet.GFFNet`.

No GFF-Net on ResNet is released (only a WideResNet-38 one, github.com/lxtGH/DecoupleSegNets,
whose backbone differs). What converts: a model trained in the layout of
``tools/reference/torch_gffnet.py`` (the GALD-DGCNet trunk names ``conv1 bn1 layer1-4``, the
release head names ``gff_head.d_in*/gate*/dense_*/cls``, ``ppm``, ``dsn``) and the GALD-DGCNet
release's ImageNet ``resnet101-deep.pth`` (``--kind imagenet``). The rules are GALD-Net's
(backbone keys under ``backbone.``, BN buffers renamed), so the loader is shared.
"""
from .galdnet_checkpoints import convert, release_to_ours  # noqa: F401  (the same trunk, the same rules)
