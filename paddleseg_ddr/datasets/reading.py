"""Reading an image and its label honestly: a file that is empty, cut short or not what a
label must be is refused with a message naming it, never decoded into wrong pixels.

- Images are decoded by OpenCV exactly as PaddleSeg's ``Compose`` does (same pixels), after
  checking the file is complete: OpenCV decodes a truncated JPEG into grey without an error.
- Labels are decoded by Pillow as PaddleSeg does (a palette PNG gives its indices), but as
  integers of any width: PaddleSeg hands a 16-bit PNG on as ``uint16``, which Paddle takes
  for bfloat16, so every class became 0. A label must be single-channel, hold only
  ``[0, num_classes)`` or the ignore index, and is returned as ``uint8`` when its values fit
  (``int32`` otherwise).
"""
import os

import cv2
import numpy as np
from PIL import Image

from ..errors import UserError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SIGNATURE = b'\xff\xd8\xff'
TAIL = 1024  # the end marker must lie within the last TAIL bytes (room for trailing padding)


def _check_complete(path, what, fix):
    """Refuse a missing, unreadable, empty or visibly truncated PNG/JPEG file."""
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(8)
            f.seek(max(0, size - TAIL))
            tail = f.read()
    except OSError as e:
        raise UserError(f"cannot read {what} '{path}': {e.strerror or e}. {fix}") from None
    if size == 0:
        raise UserError(f"{what} '{path}' is empty (0 bytes): the download, copy or conversion that wrote it "
                        f"was interrupted. {fix}")
    if head.startswith(PNG_SIGNATURE) and b'IEND' not in tail:
        raise UserError(f"{what} '{path}' is a truncated PNG ({size} bytes, no end chunk): the file was cut "
                        f"short. {fix}")
    if head.startswith(JPEG_SIGNATURE) and b'\xff\xd9' not in tail:
        raise UserError(f"{what} '{path}' is a truncated JPEG ({size} bytes, no end marker): the file was cut "
                        f"short. {fix}")


def read_image(path, flag=cv2.IMREAD_COLOR, fix=''):
    """The image as PaddleSeg's ``Compose`` reads it (``cv2.imread(path, flag)``, float32, BGR)."""
    _check_complete(path, 'image file', fix)
    image = cv2.imread(path, flag)
    if image is None:
        raise UserError(f"image file '{path}' cannot be decoded as an image (corrupt or not an image format "
                        f"OpenCV reads). {fix}")
    return image.astype('float32')


def read_label(path, num_classes, ignore_index=255, fix='', values_fix=None):
    """The label map of ``path`` as a 2-D integer array (uint8 when the values fit, else int32).

    Raises :class:`UserError` naming the file if it cannot be decoded, is not single-channel
    integer data, or holds a value outside ``[0, num_classes)`` other than ``ignore_index``
    (``fix`` ends the messages; ``values_fix``, when given, ends that of the values).
    """
    _check_complete(path, 'label file', fix)
    try:
        with Image.open(path) as im:
            im.load()
            mode, bands = im.mode, im.getbands()
            label = np.array(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"label file '{path}' cannot be decoded as an image ({e}): it is corrupt or cut short. "
                        f"{fix}") from None
    if len(bands) != 1 or label.ndim != 2:
        raise UserError(
            f"label file '{path}' has {len(bands)} channels (mode {mode}), but a label must be a single-channel "
            f"map of class ids (a colour rendering such as *_gtFine_color.png is not a label). {fix}")
    if label.dtype == bool:
        label = label.astype(np.uint8)
    if not np.issubdtype(label.dtype, np.integer):
        raise UserError(f"label file '{path}' holds {label.dtype} values (mode {mode}), but a label must hold "
                        f"integer class ids. {fix}")
    check_label_values(label, path, num_classes, ignore_index, fix if values_fix is None else values_fix)
    if label.dtype == np.uint8:
        return label
    fits = label.size == 0 or (int(label.min()) >= 0 and int(label.max()) <= 255)
    return label.astype(np.uint8 if fits else np.int32)


def bad_label_values(label, num_classes, ignore_index):
    """The sorted distinct values of ``label`` outside ``[0, num_classes)`` other than the ignore index."""
    label = np.asarray(label)
    bad = ((label < 0) | (label >= num_classes)) & (label != ignore_index)
    return np.unique(label[bad]) if bad.any() else np.zeros(0, label.dtype)


def label_values_message(where, values, num_classes, ignore_index, fix=''):
    values = [int(v) for v in values[:10]]
    return (f'label file {where} holds values {values} outside [0, {num_classes}) that are not the ignore '
            f'index {ignore_index}. {fix}').rstrip()


def check_label_values(label, path, num_classes, ignore_index=255, fix=''):
    values = bad_label_values(label, num_classes, ignore_index)
    if values.size:
        raise UserError(label_values_message(f"'{path}'", values, num_classes, ignore_index, fix))
