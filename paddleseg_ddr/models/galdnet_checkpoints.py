"""Checkpoint adapter: PyTorch state dicts in the layout of the GALD-DGCNet release
(``libs/models/GALDNet.py``) -> :class:`.galdnet.GALDNet`, and of the GFF-Net re-implementation
on the same backbone (``tools/reference/torch_gffnet.py``) -> :class:`.gffnet.GFFNet`.

The release published no trained GALD-Net; what converts is a model trained with its code
(``torch.save(model.state_dict())``, a ``module.`` prefix or a ``state_dict`` entry accepted)
and its ImageNet backbones ``resnet50-deep.pth`` / ``resnet101-deep.pth`` (``--kind imagenet``;
their ``fc.*`` is dropped). Our models hold the backbone as ``backbone`` and keep the release's
head names and ``nn.Sequential`` indices, so the mapping is: BN buffers renamed,
``num_batches_tracked`` dropped, the backbone's keys (``conv1 bn1 layer1-4``) under ``backbone.``.
"""
import os

from ..errors import UserError
from .conversion import load_converted, paddle_names, rename, unwrap_state_dict
from .torch_checkpoint import read_torch_checkpoint

_RULES = [(r'^(conv1|bn1|layer[1-4])\.', r'backbone.\1.')]


def release_to_ours(key):
    """Name in our model of a release key (after BN renaming)."""
    return rename(key, _RULES)


def convert(model, path):
    """Load a ``.pth`` of the release's layout (trained model, or ImageNet ``resnet*-deep.pth``)
    into ``model`` (a GALDNet or GFFNet); returns the report {'loaded', 'left_at_init', 'dropped'}.

    Every backbone tensor must be in the file: a ResNet-50 file for a ResNet-101 model (or the
    reverse) is refused rather than half-loaded; a classifier of another class count is dropped.
    """
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = {release_to_ours(k): v for k, v in paddle_names(unwrap_state_dict(read_torch_checkpoint(path))).items()}
    name = type(model).__name__
    hint = f'is it a {name} checkpoint of this depth, or the release\'s resnet*-deep.pth?'
    report = load_converted(model, state, path, hint, other_classifier_ok=True)
    missing = [k for k in report['left_at_init'] if k.startswith('backbone.')]
    extra = [k for k in report['dropped'] if k.startswith('backbone.')]
    if missing or extra:
        depth = getattr(model.backbone, 'depth', '?')
        raise UserError(f"'{path}' does not fit the ResNet-{depth} backbone of {name}: "
                        + (f"it lacks {len(missing)} backbone tensors ({', '.join(missing[:3])} ...)" if missing else
                           f"it has {len(extra)} backbone tensors the model lacks ({', '.join(extra[:3])} ...)")
                        + '. Is it the file of the other depth (resnet50-deep.pth vs resnet101-deep.pth)? '
                          'Pick the matching --model.')
    return report
