"""Checkpoint adapter: the PIDNet release (PyTorch) -> :class:`PIDNet`.

The model keeps the release's names, so the mapping is a renaming: the Cityscapes/CamVid
``.pt`` files prefix every key with ``model.`` (and carry the loss's class weights,
``sem_loss.criterion.weight``, which are dropped), the ImageNet ``.pth.tar`` files keep them
under ``state_dict``; BN buffers are renamed and the parallel pyramid pooling's processing
layer is ``processes`` here (``scale_process`` in the release).
"""
import os
import re

from ..errors import UserError
from .conversion import load_converted, paddle_names, unwrap_state_dict
from .torch_checkpoint import read_torch_checkpoint

_RULES = [(r'^spp\.scale_process\.', 'spp.processes.')]


def release_to_ours(key):
    for pattern, repl in _RULES:
        key = re.sub(pattern, repl, key)
    return key


def release_state_dict(obj):
    """Paddle-named arrays of a release checkpoint object (as read from its .pt/.pth.tar)."""
    state = paddle_names(unwrap_state_dict(obj), strip_prefixes=('module.', 'model.'))
    return {release_to_ours(k): v for k, v in state.items()}


def convert_release(model, path):
    """Load a release checkpoint (Cityscapes/CamVid ``.pt`` or ImageNet ``.pth.tar``) into a
    :class:`PIDNet`; returns the report of :func:`.conversion.load_converted`."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = release_state_dict(read_torch_checkpoint(path))
    return load_converted(model, state, path, 'wrong --model? is it a PIDNet checkpoint of the release?',
                          other_classifier_ok=True)
