"""Whole-image, sliding-window and multi-scale + flip inference on a dygraph model.

The model follows PaddleSeg's convention: it returns a list whose first entry holds the
logits at the input size.
"""
import math

import paddle
import paddle.nn.functional as F


def _logits(model, image):
    return model(image)[0]


def slide_inference(model, image, crop_size, stride):
    """Average the logits of overlapping ``crop_size`` windows, ``stride`` apart ((w, h) pairs).

    Windows at the right/bottom edge are shifted inwards so that all have the crop size
    when the image is large enough.
    """
    height, width = image.shape[2:]
    crop_w, crop_h = crop_size
    stride_w, stride_h = stride
    if stride_w > crop_w or stride_h > crop_h:
        raise ValueError(f'slide inference: stride {stride} larger than crop {crop_size} leaves pixels unpredicted.')
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
