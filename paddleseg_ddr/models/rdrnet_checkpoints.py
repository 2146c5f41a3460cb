"""Checkpoint adapter: the RDRNet release (mmsegmentation/mmengine, PyTorch) -> :class:`RDRNet`.

The released files are training graphs: ``{'meta', 'state_dict', ...}`` with keys under
``backbone.`` and ``decode_head.``, mmcv ``ConvModule``s (``.conv`` / ``.bn``) where this
project uses ``nn.Sequential`` indices, and the head split into ``head``/``conv_seg`` and
``aux_head``/``aux_cls_seg``. A file saved after the release's ``switch_to_deploy``
(``reparam_3x3``, ``spp.processes.reparam_parallel``) loads too: the model is fused first.
"""
import os

from ..errors import UserError
from .blocks import RepBlock, RepParallel
from .conversion import load_converted, paddle_names, rename, unwrap_state_dict
from .reparameterize import reparameterize
from .torch_checkpoint import read_torch_checkpoint

# Applied in order to each key after the 'backbone.'/'decode_head.' prefixes are removed.
_RULES = [
    (r'^semantic_branch_layers\.2\.0\.', 'semantic_branch_layers.2.'),  # the release nests stage 6 once more
    (r'\.path_3x3\.conv\.', '.path_3x3.0.'), (r'\.path_3x3\.bn\.', '.path_3x3.1.'),
    (r'\.path_1x1\.conv1\.conv\.', '.path_1x1.0.'), (r'\.path_1x1\.conv1\.bn\.', '.path_1x1.1.'),
    (r'\.path_1x1\.conv2\.conv\.', '.path_1x1.2.'), (r'\.path_1x1\.conv2\.bn\.', '.path_1x1.3.'),
    (r'\.conv([123])\.conv\.', r'.conv\1.'), (r'\.conv([123])\.bn\.', r'.bn\1.'),  # Bottleneck
    (r'^(compression_[12]|down_1)\.conv\.', r'\1.0.'), (r'^(compression_[12]|down_1)\.bn\.', r'\1.1.'),
    (r'^down_2\.0\.conv\.', 'down_2.0.'), (r'^down_2\.0\.bn\.', 'down_2.1.'),
    (r'^down_2\.1\.conv\.', 'down_2.3.'), (r'^down_2\.1\.bn\.', 'down_2.4.'),
    (r'^spp\.scales\.0\.bn\.', 'spp.scale0.0.'), (r'^spp\.scales\.0\.conv\.', 'spp.scale0.2.'),
    (r'^spp\.scales\.([1-4])\.1\.bn\.', r'spp.scale\1.1.'), (r'^spp\.scales\.([1-4])\.1\.conv\.', r'spp.scale\1.3.'),
    (r'^spp\.(compression|shortcut)\.bn\.', r'spp.\1.0.'), (r'^spp\.(compression|shortcut)\.conv\.', r'spp.\1.2.'),
    (r'^spp\.processes\.parallel([12])\.conv\.', r'spp.processes.parallel\1.0.'),
    (r'^spp\.processes\.parallel([12])\.bn\.', r'spp.processes.parallel\1.1.'),
    (r'^(head|aux_head)\.0\.bn\.', r'\1.bn1.'), (r'^(head|aux_head)\.0\.conv\.', r'\1.conv1.'),
    (r'^(head|aux_head)\.1\.', r'\1.bn2.'),
    (r'^conv_seg\.', 'head.conv2.'), (r'^aux_cls_seg\.', 'aux_head.conv2.'),
]


def release_to_ours(key):
    """Name in :class:`RDRNet` of a key of the release's checkpoints (prefixes removed)."""
    return rename(key, _RULES)


def release_state_dict(obj):
    """Paddle-named arrays of a release checkpoint object (as read from its .pth)."""
    state = paddle_names(unwrap_state_dict(obj), strip_prefixes=('module.', 'backbone.', 'decode_head.'))
    return {release_to_ours(k): v for k, v in state.items()}


def is_deploy_graph(state):
    return any('.reparam_3x3.' in k or 'reparam_parallel' in k for k in state)


def convert_release(model, path):
    """Load a release ``.pth`` (training or deployed graph) into an :class:`RDRNet`.

    A deployed-graph file is loaded into the same structure (the release merges only its
    re-parameterisable blocks), then the rest is fused too, so ``model`` ends as this
    project's fused graph (what export writes; val.py and predict.py accept its weights).
    Returns the report of :func:`.conversion.load_converted`.
    """
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: '{path}'.")
    state = release_state_dict(read_torch_checkpoint(path))
    deployed = is_deploy_graph(state)
    if deployed:
        reparameterize(model, only=(RepBlock, RepParallel))
    report = load_converted(model, state, path, 'wrong --model? is it an RDRNet checkpoint of the release?',
                            other_classifier_ok=True)
    if deployed:
        reparameterize(model)
    return report
