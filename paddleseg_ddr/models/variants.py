"""One table of model variants that generic code reads (as timm's per-variant configs).

Each family module registers its variants here next to its factories; the engine, deploy
and tools ask this table instead of knowing any family: which variants exist, how to build
one by name, its published size and cost, and which reference implementation it has for
parity tests and benchmarks. Layer-level facts that loaders need (training-only and
class-count-dependent layers) are attributes of the model class itself:
``TRAIN_ONLY_PREFIXES`` and ``CLASSIFIER_PREFIXES``.
"""
import difflib
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import UserError


@dataclass(frozen=True)
class Variant:
    """What is known of one model variant.

    Attributes:
        name: Short name used by tools (``ddrnet23_slim``).
        family: Family name (``DDRNet``).
        model_type: Name registered in PaddleSeg's ``manager.MODELS`` (the config's ``type``).
        factory: ``factory(num_classes=19, **kwargs)`` builds the segmentation model.
        params: Published trainable parameters for 19 classes, inference graph.
        gmacs: Published multiply-accumulates at 1024x2048 (the papers' "GFLOPs").
        reference: (module under tools/reference, its variant name) of an independent
            implementation with a ``randomized(name, augment)`` function, or None.
        published: Published scores, e.g. {'cityscapes_val_miou': 77.8}.
        convert: ``convert(model, path) -> report`` loading the release's own checkpoint
            file into the segmentation model (tools/convert_weights.py), or None.
    """
    name: str
    family: str
    model_type: str
    factory: Callable
    params: Optional[int] = None
    gmacs: Optional[float] = None
    reference: Optional[tuple] = None
    published: dict = field(default_factory=dict)
    convert: Optional[Callable] = None


_VARIANTS = {}


def register_variant(variant):
    """Add ``variant`` to the table (names and model types are unique)."""
    for known in _VARIANTS.values():
        if variant.name == known.name or variant.model_type == known.model_type:
            raise ValueError(f'variant {variant.name} ({variant.model_type}) is registered twice')
    _VARIANTS[variant.name] = variant
    return variant


def list_variants(family=None):
    """Registered variants, optionally of one family, in registration order."""
    return [v for v in _VARIANTS.values() if family is None or v.family.lower() == family.lower()]


def get_variant(name):
    """The variant called ``name`` (its short name or its registered model type, any case)."""
    for v in _VARIANTS.values():
        if name.lower() in (v.name.lower(), v.model_type.lower()):
            return v
    known = [v.name for v in _VARIANTS.values()] + [v.model_type for v in _VARIANTS.values()]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ''
    raise UserError(f"unknown model variant '{name}'.{hint} Known: {', '.join(v.name for v in _VARIANTS.values())}.")


def create_model(name, num_classes=19, **kwargs):
    """Build the segmentation model of variant ``name`` (short name or model type)."""
    return get_variant(name).factory(num_classes=num_classes, **kwargs)
