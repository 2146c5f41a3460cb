"""Transforms the project adds to PaddleSeg's (registered in ``manager.TRANSFORMS``)."""
import cv2
import numpy as np
from paddleseg.cvlibs import manager


@manager.TRANSFORMS.add_component
class AddEdgeLabel:
    """Boundary labels from the segmentation label, as the PIDNet release makes them: Canny
    on the label (every change of class is an edge), a ``border``-pixel frame cleared, then
    dilated by a ``width`` x ``width`` kernel; 1 on boundaries, 0 elsewhere, in ``data['edge']``.

    Put it first in the training transforms: the edge map is then scaled, padded, cropped and
    flipped with the label (it joins ``gt_fields``; padding writes 255, which losses read as
    "not an edge", as the release pads with 0).

    Args:
        width (int, optional): Dilation kernel size. Default: 4.
        border (int, optional): Width of the cleared frame. Default: 6.
    """

    def __init__(self, width=4, border=6):
        self.width, self.border = int(width), int(border)

    def __call__(self, data):
        label = np.asarray(data['label'])
        edge = cv2.Canny(label.astype(np.uint8), 0.1, 0.2)
        b = self.border
        if b > 0:
            edge[:b, :], edge[-b:, :], edge[:, :b], edge[:, -b:] = 0, 0, 0, 0
        edge = cv2.dilate(edge, np.ones((self.width, self.width), np.uint8))
        data['edge'] = (edge > 50).astype(np.uint8)
        if 'edge' not in data.setdefault('gt_fields', []):
            data['gt_fields'].append('edge')
        return data
