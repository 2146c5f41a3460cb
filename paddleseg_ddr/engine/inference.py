"""Whole-image, sliding-window and multi-scale + flip inference on a dygraph model.

The model follows PaddleSeg's convention: it returns a list whose first entry holds the
logits at the input size.
"""
import math
import numbers

import paddle
import paddle.nn.functional as F

from ..errors import UserError


def _shown(value):
    """A value as it is typed on the command line: ``[0, 0]`` -> ``0 0``, ``[0.0]`` -> ``0``."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return ' '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in items)


def _pair(name, value):
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value))
    if not ok:
        raise UserError(f'--{name} {_shown(value)}: the sliding window needs two positive whole numbers W H (pixels), '
                        f'e.g. --{name} 1024 1024 (on the command line, or test_config.{name} in the YAML config).')
    return list(value)


def check_infer_options(aug=False, scales=None, is_slide=False, crop_size=None, stride=None, **_):
    """The one check of inference options (predict.py and val.py, and the functions below):
    a :class:`UserError` naming the value and the fix for scales that are not positive numbers,
    and for a sliding window without a positive crop and stride, or a stride larger than the
    crop. ``aug`` (--aug_pred / --aug_eval) says whether ``scales`` are used."""
    if aug and scales is not None:
        values = [scales] if isinstance(scales, numbers.Number) else scales
        bad = (not isinstance(values, (list, tuple)) or not values
               or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0
                      for v in values))
        if bad:
            raise UserError(f'--scales {_shown(scales)}: scales must be positive numbers (factors of the image size), '
                            'e.g. --scales 0.75 1.0 1.25 (or test_config.scales in the YAML config).')
    if is_slide:
        if crop_size is None or stride is None:
            raise UserError('--is_slide needs --crop_size W H and --stride W H (or test_config entries).')
        crop, step = _pair('crop_size', crop_size), _pair('stride', stride)
        if step[0] > crop[0] or step[1] > crop[1]:
            raise UserError(f'--stride {step[0]} {step[1]} is larger than --crop_size {crop[0]} {crop[1]}: the '
                            'windows would leave pixels between them unpredicted; use a stride no larger than the '
                            'crop (e.g. 2/3 of it).')


def _logits(model, image):
    return model(image)[0]


def slide_inference(model, image, crop_size, stride):
    """Average the logits of overlapping ``crop_size`` windows, ``stride`` apart ((w, h) pairs).

    Windows at the right/bottom edge are shifted inwards so that all have the crop size
    when the image is large enough.
    """
    check_infer_options(is_slide=True, crop_size=crop_size, stride=stride)
    height, width = image.shape[2:]
    crop_w, crop_h = crop_size
    stride_w, stride_h = stride
    rows = max(math.ceil((height - crop_h) / stride_h), 0) + 1
    cols = max(math.ceil((width - crop_w) / stride_w), 0) + 1
    total, count = None, paddle.zeros([1, 1, height, width])
    for r in range(rows):
        for c in range(cols):
            y1 = max(min(r * stride_h, height - crop_h), 0)
            x1 = max(min(c * stride_w, width - crop_w), 0)
            y2, x2 = min(y1 + crop_h, height), min(x1 + crop_w, width)
            logit = _logits(model, image[:, :, y1:y2, x1:x2])
            if total is None:
                total = paddle.zeros([image.shape[0], logit.shape[1], height, width])
            total[:, :, y1:y2, x1:x2] += logit
            count[:, :, y1:y2, x1:x2] += 1
    return total / count


def predict_logits(model, image, is_slide=False, crop_size=None, stride=None):
    """Logits [N, C, H, W] of one view."""
    if is_slide:
        return slide_inference(model, image, crop_size, stride)
    return _logits(model, image)


def aug_predict(model, image, scales=(1.0,), flip_horizontal=False, flip_vertical=False,
                is_slide=False, crop_size=None, stride=None):
    """Mean softmax probability over scales x flips, at the input size."""
    check_infer_options(True, scales, is_slide, crop_size, stride)
    height, width = image.shape[2:]
    flips = [()]
    if flip_horizontal:
        flips.append((3,))
    if flip_vertical:
        flips.append((2,))
        if flip_horizontal:
            flips.append((2, 3))
    total = 0
    for scale in scales:
        size = [int(height * scale + 0.5), int(width * scale + 0.5)]
        if min(size) < 1:
            raise UserError(f'--scales {scale} shrinks a {height}x{width} image to {size[0]}x{size[1]} pixels: use '
                            'scales that keep at least one pixel (e.g. 0.5 to 2.0).')
        scaled = image if scale == 1.0 else F.interpolate(image, size, mode='bilinear', align_corners=False)
        for axes in flips:
            view = paddle.flip(scaled, axes) if axes else scaled
            logit = predict_logits(model, view, is_slide, crop_size, stride)
            if axes:
                logit = paddle.flip(logit, axes)
            if scale != 1.0:
                logit = F.interpolate(logit, [height, width], mode='bilinear', align_corners=False)
            total = total + F.softmax(logit, axis=1)
    return total / (len(scales) * len(flips))
