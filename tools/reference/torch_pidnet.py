"""PyTorch re-implementation of the PIDNet release (Xu, Xiong, Bhattacharyya, CVPR 2023;
github.com/XuJiacong/PIDNet: ``models/pidnet.py``, ``models/model_utils.py``, the loss of
``utils/criterion.py`` + ``utils/utils.py:FullModel`` and the edge label of
``datasets/base_dataset.py:gen_sample``), written here from the release's structure. Module
and parameter names follow the release exactly, so ``model.state_dict()`` has the keys of its
checkpoints (Cityscapes/CamVid ``.pt``: the same keys prefixed ``model.``; ImageNet
``.pth.tar``: under ``'state_dict'``). See PIDNET_FACTS.md.

For tests (weight-conversion and loss parity) and tools/benchmark.py only: torch is an
optional, test-only dependency and the product never imports this.

Outputs are the heads' logits before any resize, at (H // 8, W // 8) -- the release's
``x.shape[-2] // 8``; the network only runs when H and W are multiples of 8 (otherwise the
D branch, at ceil(H/8), cannot be added to the resized I-branch features at floor(H/8): the
release raises, and so does this). In training mode with ``augment`` the model returns
``[p_logits, main_logits, boundary_logits]`` (num_classes, num_classes, 1 channels), in eval
mode ``main_logits``; ``forward(x, all_heads=True)`` returns the three in any mode (the
release's own rule is ``augment`` alone, whatever the mode). The loss (``pidnet_loss``)
resizes them to the label size with align_corners=True.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (m, n, planes, ppm_planes, head_planes), as get_seg_model / get_pred_model build them
VARIANTS = {
    'pidnet_s': (2, 3, 32, 96, 128),
    'pidnet_m': (2, 3, 64, 96, 128),
    'pidnet_l': (3, 4, 64, 112, 256),
}
BN = dict(momentum=0.1, eps=1e-5)  # every BatchNorm of the release (bn_mom = 0.1 or the default)
# Cityscapes class weights (datasets/cityscapes.py), used by every CE/OHEM term
CITYSCAPES_CLASS_WEIGHTS = [0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
                            0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507]


def up(x, size):
    """Every resize inside the network: bilinear, align_corners=False."""
    return F.interpolate(x, size=list(size), mode='bilinear', align_corners=False)


def conv_bn(cin, cout, k=1, stride=1, padding=0):
    """Sequential(conv no bias, BN): keys ``0.weight``, ``1.*``."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout, **BN))


def bn_relu_conv(cin, cout, k=1, padding=0, groups=1, pool=None):
    """Sequential([pool,] BN(cin), ReLU, conv no bias): keys ``[1|0].*`` (BN), ``[3|2].weight``."""
    mods = [] if pool is None else [pool]
    mods += [nn.BatchNorm2d(cin, **BN), nn.ReLU(), nn.Conv2d(cin, cout, k, 1, padding, groups=groups, bias=False)]
    return nn.Sequential(*mods)


class BasicBlock(nn.Module):
    """3x3(stride)+BN+ReLU, 3x3+BN, + identity or downsample(x), ReLU unless ``no_relu``."""
    expansion = 1

    def __init__(self, cin, c, stride=1, downsample=None, no_relu=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c, **BN)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c, **BN)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = y + (x if self.downsample is None else self.downsample(x))
        return y if self.no_relu else F.relu(y)


class Bottleneck(nn.Module):
    """1x1+BN+ReLU, 3x3(stride)+BN+ReLU, 1x1 (c -> 2c)+BN, + shortcut; ``no_relu`` defaults to
    True, and every Bottleneck the release builds has no output ReLU."""
    expansion = 2

    def __init__(self, cin, c, stride=1, downsample=None, no_relu=True):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c, **BN)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c, **BN)
        self.conv3 = nn.Conv2d(c, c * 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c * 2, **BN)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y)) + (x if self.downsample is None else self.downsample(x))
        return y if self.no_relu else F.relu(y)


def _downsample(block, cin, c, stride):
    if stride != 1 or cin != c * block.expansion:
        return conv_bn(cin, c * block.expansion, 1, stride)
    return None


def make_layer(block, cin, c, blocks, stride=1):
    """The release's ``_make_layer``: first block (stride, downsample) with the block's default
    ``no_relu`` (BasicBlock: ReLU; Bottleneck: none), middle blocks ReLU, the last (if more than
    one) ``no_relu=True``."""
    layers = [block(cin, c, stride, _downsample(block, cin, c, stride))]
    for i in range(1, blocks):
        layers.append(block(c * block.expansion, c, 1, no_relu=(i == blocks - 1)))
    return nn.Sequential(*layers)


def make_single_layer(block, cin, c, stride=1):
    """The release's ``_make_single_layer``: ONE block (not in a Sequential), ``no_relu=True``."""
    return block(cin, c, stride, _downsample(block, cin, c, stride), no_relu=True)


class SegmentHead(nn.Module):
    """``segmenthead``: BN(cin) -> ReLU -> 3x3 conv (no bias) -> BN -> ReLU -> 1x1 conv WITH bias."""

    def __init__(self, cin, cmid, cout):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, **BN)
        self.conv1 = nn.Conv2d(cin, cmid, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cmid, **BN)
        self.conv2 = nn.Conv2d(cmid, cout, 1, 1, 0, bias=True)

    def forward(self, x):
        return self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))


def _pool_scales(cin, cb):
    pools = [nn.AvgPool2d(5, 2, 2), nn.AvgPool2d(9, 4, 4), nn.AvgPool2d(17, 8, 8), nn.AdaptiveAvgPool2d((1, 1))]
    return [bn_relu_conv(cin, cb, pool=p) for p in pools]


class DAPPM(nn.Module):
    """DDRNet's DAPPM as the release has it (PIDNet-L): scale0..4, process1..4 (3x3), the
    cascade process_i(up(scale_i(x)) + previous), compression (1x1) + shortcut (1x1)."""

    def __init__(self, cin, cb, cout):
        super().__init__()
        self.scale1, self.scale2, self.scale3, self.scale4 = _pool_scales(cin, cb)
        self.scale0 = bn_relu_conv(cin, cb)
        self.process1 = bn_relu_conv(cb, cb, 3, 1)
        self.process2 = bn_relu_conv(cb, cb, 3, 1)
        self.process3 = bn_relu_conv(cb, cb, 3, 1)
        self.process4 = bn_relu_conv(cb, cb, 3, 1)
        self.compression = bn_relu_conv(cb * 5, cout)
        self.shortcut = bn_relu_conv(cin, cout)

    def forward(self, x):
        size = x.shape[2:]
        feats = [self.scale0(x)]
        for scale, process in zip((self.scale1, self.scale2, self.scale3, self.scale4),
                                  (self.process1, self.process2, self.process3, self.process4)):
            feats.append(process(up(scale(x), size) + feats[-1]))
        return self.compression(torch.cat(feats, 1)) + self.shortcut(x)


class PAPPM(nn.Module):
    """Parallel PPM (PIDNet-S/M): every pooled scale upsampled and added to scale0 (no cascade),
    the four sums concatenated into ONE grouped 3x3 conv (groups 4, ``scale_process``), then
    compression(cat[scale0, that]) + shortcut."""

    def __init__(self, cin, cb, cout):
        super().__init__()
        self.scale1, self.scale2, self.scale3, self.scale4 = _pool_scales(cin, cb)
        self.scale0 = bn_relu_conv(cin, cb)
        self.scale_process = bn_relu_conv(cb * 4, cb * 4, 3, 1, groups=4)
        self.compression = bn_relu_conv(cb * 5, cout)
        self.shortcut = bn_relu_conv(cin, cout)

    def forward(self, x):
        size = x.shape[2:]
        x0 = self.scale0(x)
        feats = [up(s(x), size) + x0 for s in (self.scale1, self.scale2, self.scale3, self.scale4)]
        return self.compression(torch.cat([x0, self.scale_process(torch.cat(feats, 1))], 1)) + self.shortcut(x)


class PagFM(nn.Module):
    """Pixel-attention-guided fusion (after_relu=False, with_channel=False as built):
    x = P-branch features (full size), y = compressed I-branch features (smaller);
    sigma = sigmoid(sum_c(f_x(x) * up(f_y(y)))), out = (1 - sigma) * x + sigma * up(y)."""

    def __init__(self, cin, cmid):
        super().__init__()
        self.f_x = conv_bn(cin, cmid)
        self.f_y = conv_bn(cin, cmid)

    def forward(self, x, y):
        size = x.shape[2:]
        y_q = up(self.f_y(y), size)
        x_k = self.f_x(x)
        sim = torch.sigmoid(torch.sum(x_k * y_q, dim=1, keepdim=True))
        return (1 - sim) * x + sim * up(y, size)


class LightBag(nn.Module):
    """``Light_Bag`` (S/M): conv_p((1 - s) * i + p) + conv_i(i + s * p), s = sigmoid(d); both
    1x1 conv + BN, no activation."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv_p = conv_bn(cin, cout)
        self.conv_i = conv_bn(cin, cout)

    def forward(self, p, i, d):
        s = torch.sigmoid(d)
        return self.conv_p((1 - s) * i + p) + self.conv_i(i + s * p)


class Bag(nn.Module):
    """``Bag`` (L): conv(s * p + (1 - s) * i), conv = BN(cin) -> ReLU -> 3x3 conv (no bias)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = bn_relu_conv(cin, cout, 3, 1)

    def forward(self, p, i, d):
        s = torch.sigmoid(d)
        return self.conv(s * p + (1 - s) * i)


class PIDNet(nn.Module):
    def __init__(self, m=2, n=3, num_classes=19, planes=64, ppm_planes=96, head_planes=128, augment=True):
        super().__init__()
        p = planes
        self.augment = augment
        # I branch (attribute order = the release's registration order = its state_dict order)
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, p, 3, 2, 1, bias=True), nn.BatchNorm2d(p, **BN), nn.ReLU(),
            nn.Conv2d(p, p, 3, 2, 1, bias=True), nn.BatchNorm2d(p, **BN), nn.ReLU())
        self.relu = nn.ReLU()
        self.layer1 = make_layer(BasicBlock, p, p, m)
        self.layer2 = make_layer(BasicBlock, p, p * 2, m, 2)
        self.layer3 = make_layer(BasicBlock, p * 2, p * 4, n, 2)
        self.layer4 = make_layer(BasicBlock, p * 4, p * 8, n, 2)
        self.layer5 = make_layer(Bottleneck, p * 8, p * 8, 2, 2)
        # P branch
        self.compression3 = conv_bn(p * 4, p * 2)
        self.compression4 = conv_bn(p * 8, p * 2)
        self.pag3 = PagFM(p * 2, p)
        self.pag4 = PagFM(p * 2, p)
        self.layer3_ = make_layer(BasicBlock, p * 2, p * 2, m)
        self.layer4_ = make_layer(BasicBlock, p * 2, p * 2, m)
        self.layer5_ = make_layer(Bottleneck, p * 2, p * 2, 1)
        # D branch
        if m == 2:
            self.layer3_d = make_single_layer(BasicBlock, p * 2, p)
            self.layer4_d = make_layer(Bottleneck, p, p, 1)
            self.diff3 = conv_bn(p * 4, p, 3, 1, 1)
            self.diff4 = conv_bn(p * 8, p * 2, 3, 1, 1)
            self.spp = PAPPM(p * 16, ppm_planes, p * 4)
            self.dfm = LightBag(p * 4, p * 4)
        else:
            self.layer3_d = make_single_layer(BasicBlock, p * 2, p * 2)
            self.layer4_d = make_single_layer(BasicBlock, p * 2, p * 2)
            self.diff3 = conv_bn(p * 4, p * 2, 3, 1, 1)
            self.diff4 = conv_bn(p * 8, p * 2, 3, 1, 1)
            self.spp = DAPPM(p * 16, ppm_planes, p * 4)
            self.dfm = Bag(p * 4, p * 4)
        self.layer5_d = make_layer(Bottleneck, p * 2, p * 2, 1)
        # heads
        if augment:
            self.seghead_p = SegmentHead(p * 2, head_planes, num_classes)
            self.seghead_d = SegmentHead(p * 2, p, 1)
        self.final_layer = SegmentHead(p * 4, head_planes, num_classes)
        # the release's initialisation (conv biases keep torch's default)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.constant_(mod.weight, 1)
                nn.init.constant_(mod.bias, 0)

    def forward(self, x, all_heads=None):
        size = (x.shape[-2] // 8, x.shape[-1] // 8)
        relu = F.relu
        x = self.layer1(self.conv1(x))              # 1/4, layer1's last block: no ReLU
        x = relu(self.layer2(relu(x)))              # 1/8
        x_p = self.layer3_(x)                       # P: 1/8, no output ReLU
        x_d = self.layer3_d(x)                      # D: 1/8, no output ReLU
        x = relu(self.layer3(x))                    # I: 1/16
        x_p = self.pag3(x_p, self.compression3(x))
        x_d = x_d + up(self.diff3(x), size)
        temp_p = x_p                                # P head input (see below: its ReLU)
        x = relu(self.layer4(x))                    # I: 1/32
        x_p = self.layer4_(relu(x_p))
        x_d = self.layer4_d(relu(x_d))
        x_p = self.pag4(x_p, self.compression4(x))
        x_d = x_d + up(self.diff4(x), size)
        temp_d = x_d                                # D head input (see below: its ReLU)
        x_p = self.layer5_(relu(x_p))
        x_d = self.layer5_d(relu(x_d))
        x = up(self.spp(self.layer5(x)), size)      # I: layer5 at 1/64 (no ReLU before spp)
        main = self.final_layer(self.dfm(x_p, x, x_d))
        if all_heads is None:
            all_heads = self.training and self.augment
        if all_heads:
            # The release keeps ``temp_p = x_`` / ``temp_d = x_d`` as aliases and then applies its
            # in-place ReLU (nn.ReLU(inplace=True)) to x_ / x_d before layer4_ / layer5_d: the
            # P and D heads therefore read the ReLU of those features (mmseg and PaddleSeg 2.9.1
            # clone them first and read the features before the ReLU).
            return [self.seghead_p(relu(temp_p)), main, self.seghead_d(relu(temp_d))]
        return main


def build(name, augment=True, num_classes=19):
    """The release's model for variant ``name`` (keys of VARIANTS) with its initialisation
    (kaiming_normal fan_out on conv weights, BN 1/0, conv biases torch's default);
    ``augment=True`` is get_seg_model (training graph: seghead_p, seghead_d), False is
    get_pred_model (inference graph)."""
    m, n, planes, ppm_planes, head_planes = VARIANTS[name]
    return PIDNet(m, n, num_classes, planes, ppm_planes, head_planes, augment)


def randomized(name, augment=True, seed=0, num_classes=19):
    """A reference model with random weights, random conv biases and non-trivial BN
    statistics/affine terms, in eval mode."""
    torch.manual_seed(seed)
    model = build(name, augment, num_classes)
    _randomize_bn(model)
    return model.eval()


def _randomize_bn(model):
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.uniform_(-0.1, 0.1)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def count_macs(model, input_shape=(1, 3, 1024, 2048)):
    """Convolution multiply-accumulates of one eval forward (output elements x input channels
    per group x kernel area), as paddleseg_ddr.models.complexity.count_macs counts them.
    Runs on the 'meta' device (shapes only, no arithmetic)."""
    import copy
    meta = copy.deepcopy(model).to('meta').eval()
    macs = []

    def hook(mod, inputs, output):
        macs.append(output.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1])

    for mod in meta.modules():
        if isinstance(mod, nn.Conv2d):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        meta(torch.zeros(input_shape, device='meta'))
    return sum(macs)


# ----------------------------------------------------------------------------------------
# Edge (boundary) label, as datasets/base_dataset.py:gen_sample makes it

EDGE_BORDER = 6  # y_k_size = x_k_size = 6
EDGE_SIZE = 4  # bd_dilate_size / edge_size: the dilation kernel is 4x4 ones


def edge_label(label_uint8, edge_size=EDGE_SIZE, border=EDGE_BORDER):
    """The boundary target of one label map (H x W uint8 train ids, 255 = ignore, before any
    scale/crop/flip): Canny(label, 0.1, 0.2) (any label change; the ignore value counts as a
    label), edges within ``border`` pixels of the image border cleared, then a 4x4 dilation
    (OpenCV anchor (2, 2): a pixel lights if an edge lies 2 above/left .. 1 below/right of it,
    so the dilated band may re-enter the cleared frame), thresholded > 50 -> float64 0/1."""
    import cv2
    label = np.ascontiguousarray(label_uint8, dtype=np.uint8)
    edge = cv2.Canny(label, 0.1, 0.2)
    cleared = np.zeros_like(edge)
    h, w = edge.shape
    cleared[border:h - border, border:w - border] = edge[border:h - border, border:w - border]
    dilated = cv2.dilate(cleared, np.ones((edge_size, edge_size), np.uint8), iterations=1)
    return (dilated > 50).astype(np.float64)


# ----------------------------------------------------------------------------------------
# Loss: utils/utils.py FullModel + utils/criterion.py (OhemCrossEntropy, BondaryLoss)

def _ohem(logits, label, weight, ignore_index, thresh, min_kept):
    """OhemCrossEntropy._ohem_forward: per-pixel weighted CE (w[y] * -log p_y); among the
    non-ignored pixels sorted by p_y ascending, threshold = max(p_(min(min_kept, n - 1)), thresh);
    the mean (a plain count mean) of the losses of pixels with p_y < threshold. With no valid
    pixel the release raises IndexError; here the term is 0."""
    pixel = F.cross_entropy(logits, label, weight=weight, ignore_index=ignore_index, reduction='none').reshape(-1)
    valid = label.reshape(-1) != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    target = torch.where(label == ignore_index, torch.zeros_like(label), label)
    prob = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).reshape(-1)[valid]
    prob_sorted, order = prob.sort()
    min_value = prob_sorted[min(min_kept, prob_sorted.numel() - 1)]
    threshold = max(float(min_value), thresh)
    return pixel[valid][order][prob_sorted < threshold].mean()


def _boundary_bce(logits, edge):
    """weighted_bce: positives (edge == 1) weighted neg/(pos+neg), negatives pos/(pos+neg)
    (other values weight 0), BCE-with-logits averaged over ALL pixels of the batch."""
    x = logits.reshape(-1)
    t = edge.reshape(-1).to(x.dtype)
    pos, neg = (t == 1), (t == 0)
    n_pos, n_neg = pos.sum().to(x.dtype), neg.sum().to(x.dtype)
    total = n_pos + n_neg
    w = torch.zeros_like(x)
    w[pos] = n_neg / total
    w[neg] = n_pos / total
    return F.binary_cross_entropy_with_logits(x, t, w, reduction='mean')


def pidnet_loss_terms(outputs, label, edge, class_weights=None, ignore_index=255, thresh=0.9, min_kept=131072,
                      coefs=(0.4, 1.0, 20.0, 1.0), align_corners=True):
    """The four weighted terms of the release's training loss, as a dict of scalars.

    ``outputs`` = [p, main, d] logits (N, C, h, w), (N, C, h, w), (N, 1, h, w); ``label`` (N, H, W)
    int64 train ids; ``edge`` (N, H, W) 0/1 (``edge_label``); ``class_weights`` (C,) or None.
    All three logits are first resized to (H, W), bilinear, align_corners=True (FullModel; only
    when the P logits' size differs from the label's).

    - ``p``: 0.4 x the per-pixel weighted CE averaged over ALL N*H*W pixels (ignored pixels
      count as 0 in the mean: the release's CE term is an unreduced map reduced by the final
      ``losses.mean()``), i.e. 0.4 * sum(w[y] * ce) / (N*H*W) -- not PyTorch's weighted mean.
    - ``main``: 1.0 x OHEM(thresh 0.9, min_kept 131072, class weights) on the main logits.
    - ``boundary``: 20 x class-balanced BCE of the boundary logits against ``edge``.
    - ``boundary_aware``: 1.0 x the same OHEM on the main logits against the label with every
      pixel whose sigmoid(boundary logit) <= 0.8 set to ignore.
    """
    p, main, d = outputs
    h, w = label.shape[-2:]
    if tuple(p.shape[-2:]) != (h, w):
        p, main, d = [F.interpolate(o, size=(h, w), mode='bilinear', align_corners=align_corners) for o in (p, main, d)]
    if class_weights is not None:
        class_weights = torch.as_tensor(class_weights, dtype=main.dtype)
    ce_p = F.cross_entropy(p, label, weight=class_weights, ignore_index=ignore_index, reduction='none')
    bd_label = torch.where(torch.sigmoid(d[:, 0]) > 0.8, label, torch.full_like(label, ignore_index))
    return {
        'p': coefs[0] * ce_p.mean(),
        'main': coefs[1] * _ohem(main, label, class_weights, ignore_index, thresh, min_kept),
        'boundary': coefs[2] * _boundary_bce(d, edge),
        'boundary_aware': coefs[3] * _ohem(main, bd_label, class_weights, ignore_index, thresh, min_kept),
    }


def pidnet_loss(outputs, label, edge, class_weights=None, **kwargs):
    """The release's total training loss for one batch (one GPU's share; FullModel under
    DataParallel averages the per-GPU values): the sum of ``pidnet_loss_terms``."""
    return sum(pidnet_loss_terms(outputs, label, edge, class_weights, **kwargs).values())
