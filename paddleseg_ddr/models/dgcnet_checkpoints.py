"""Checkpoint adapter: the GALD-DGCNet release (PyTorch) -> :class:`.dgcnet.DGCNet`.

Two kinds of release files convert with the same rules:

- the trained Cityscapes models (``DualSeg_res50_final.pth``, ``DualSeg_res101_final.pth``,
  saved by ``torch.save(model.state_dict())``; a ``module.`` prefix or a ``state_dict`` entry
  is accepted too): keys ``conv1.* bn1.* layer1-4.* head.* dsn.*``;
- the ImageNet deep ResNets (``resnet50-deep.pth``, ``resnet101-deep.pth``): the backbone keys
  and a classifier ``fc.*``, which the segmentation model lacks (reported as dropped, as the
  release's ``train_distribute.py`` skips ``fc``).

Our models hold the backbone as ``backbone`` and keep the release's head names and
``nn.Sequential`` indices, so the mapping is: BN buffers renamed, ``num_batches_tracked``
dropped, the backbone's keys put under ``backbone.``.
"""
import os

from ..errors import UserError
from .conversion import load_converted, paddle_names, rename, unwrap_state_dict
from .torch_checkpoint import read_torch_checkpoint

_RULES = [(r'^(conv1|bn1|layer[1-4])\.', r'backbone.\1.')]


def release_to_ours(key):
    """Name in :class:`.dgcnet.DGCNet` of a release key (after BN renaming)."""
    return rename(key, _RULES)


def convert(model, path):
    """Load a release ``.pth`` (trained DGCNet, or ImageNet ``resnet*-deep.pth``) into ``model``.

    Returns the report {'loaded', 'left_at_init', 'dropped'}. Every backbone tensor must be
    in the file (a ResNet-50 file for a ResNet-101 model, or the reverse, is refused rather
    than half-loaded); a classifier trained for another class count is dropped.
    """
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = {release_to_ours(k): v for k, v in paddle_names(unwrap_state_dict(read_torch_checkpoint(path))).items()}
    # Checked before anything is loaded, so a refused file leaves the model as it was.
    target = model.state_dict()
    missing = [k for k in target if k.startswith('backbone.') and k not in state]
    extra = [k for k in state if k.startswith('backbone.') and k not in target]
    if (missing or extra) and len(missing) < len([k for k in target if k.startswith('backbone.')]):
        depth = getattr(model.backbone, 'depth', '?')
        raise UserError(f"'{path}' does not fit the ResNet-{depth} backbone of {type(model).__name__}: "
                        + '; '.join(([f"it lacks {len(missing)} of its tensors ({', '.join(missing[:3])} ...)"]
                                     if missing else [])
                                    + ([f"it has {len(extra)} the model lacks ({', '.join(extra[:3])} ...)"]
                                       if extra else []))
                        + '. Is it the file of the other depth (resnet50-deep.pth vs resnet101-deep.pth, '
                          'DualSeg_res50 vs DualSeg_res101: pick the matching --model), or not a GALD-DGCNet '
                          'release file at all?')
    hint = 'is it a GALD-DGCNet release checkpoint (DualSeg_res*.pth or resnet*-deep.pth)?'
    return load_converted(model, state, path, hint, other_classifier_ok=True)
