"""Loading weights into a model: strictly (trained weights) or leniently (pretrained ones),
with readable reports of what did not fit.

Here rather than in the engine because models load their ``pretrained`` file themselves and
must not depend on the engine. Which keys may be absent is the model's own knowledge: its
class attribute ``TRAIN_ONLY_PREFIXES`` (e.g. DDRNet's auxiliary head ``seghead_extra.``).
"""
import os

import paddle
from paddleseg.utils import logger

from ..errors import UserError

MODEL_FILE = 'model.pdparams'


def _unwrap(model):
    return model._layers if isinstance(model, paddle.DataParallel) else model


def read_params(path, what='weights'):
    """(path, state dict) of a ``.pdparams`` file or of a checkpoint directory holding one."""
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: '{path}'. Pass the path of a .pdparams file "
                        "(or of a checkpoint directory holding model.pdparams).")
    try:
        params = paddle.load(path)
    except Exception as e:  # a corrupt or foreign file: say which
        raise UserError(f"cannot read {what} '{path}' as a Paddle parameter file: {e}") from None
    if not isinstance(params, dict):
        raise UserError(f"{what} '{path}' holds a {type(params).__name__}, not a state dict.")
    return path, params


def compare_keys(model_state, params):
    """(missing, unexpected, mismatched) keys of ``params`` against ``model_state``."""
    missing = [k for k in model_state if k not in params]
    unexpected = [k for k in params if k not in model_state]
    mismatched = [(k, list(params[k].shape), list(v.shape)) for k, v in model_state.items()
                  if k in params and list(params[k].shape) != list(v.shape)]
    return missing, unexpected, mismatched


def mismatch_report(missing, unexpected, mismatched, limit=20):
    lines = []
    for title, items in (('missing from the checkpoint', missing), ('not in the model', unexpected)):
        if items:
            lines.append(f'  {len(items)} key(s) {title}: ' + ', '.join(items[:limit]) + (' ...' if len(items) > limit else ''))
    if mismatched:
        lines.append(f'  {len(mismatched)} shape mismatch(es) (key: checkpoint vs model):')
        lines += [f'    {k}: {a} vs {b}' for k, a, b in mismatched[:limit]]
    return '\n'.join(lines)


def load_model_weights(model, path):
    """Load trained weights strictly: every key must be present with its shape.

    Only the model's training-only layers (``TRAIN_ONLY_PREFIXES``) may be absent or extra.
    Raises ``UserError`` listing mismatching keys and shapes otherwise.
    """
    path, params = read_params(path)
    model = _unwrap(model)
    optional = tuple(getattr(model, 'TRAIN_ONLY_PREFIXES', ()))
    missing, unexpected, mismatched = compare_keys(model.state_dict(), params)
    missing = [k for k in missing if not k.startswith(optional)]
    unexpected = [k for k in unexpected if not k.startswith(optional)]
    if missing or unexpected or mismatched:
        raise UserError(f"checkpoint '{path}' does not fit {type(model).__name__}:\n"
                        + mismatch_report(missing, unexpected, mismatched)
                        + '\nCheck that the config (model type, num_classes) is the one it was trained with.')
    model.set_state_dict({k: v for k, v in params.items() if k in model.state_dict()})
    logger.info(f"Loaded weights from '{path}'.")
    return path


def load_pretrained(model, path):
    """Initialise from pretrained weights: load every key whose name and shape match and
    report what was loaded, left at initialisation, or dropped."""
    if not os.path.exists(path):
        raise UserError(
            f"pretrained weights not found: '{path}'. Download the official ImageNet checkpoint of this "
            "model (README, 'Pretrained weights') and convert it with `python tools/convert_weights.py --src "
            f"<file>.pth --model <variant> --kind imagenet --dst {path}`, or train from scratch with "
            "`--opts model.pretrained=None`.")
    path, params = read_params(path, 'pretrained')
    model_state = model.state_dict()
    missing, unexpected, mismatched = compare_keys(model_state, params)
    skipped = {k for k, _, _ in mismatched}
    loaded = {k: v for k, v in params.items() if k in model_state and k not in skipped}
    if not loaded:
        raise UserError(f"pretrained file '{path}' shares no key with {type(model).__name__}:\n"
                        + mismatch_report(missing, unexpected, mismatched))
    model.set_state_dict(loaded)
    logger.info(f"Loaded {len(loaded)}/{len(model_state)} tensors from '{path}'.")
    if missing or unexpected or mismatched:
        logger.info('Not loaded:\n' + mismatch_report(missing, unexpected, mismatched))
    return {'loaded': sorted(loaded), 'missing': missing, 'unexpected': unexpected, 'mismatched': mismatched}
