"""Prediction on image files with a trained checkpoint (dygraph) or an exported model
(Paddle Inference), writing label maps, pseudo-colour maps and overlays."""
import os
import time

import cv2
import numpy as np
import paddle
from paddleseg.cvlibs import manager
from paddleseg.transforms import Compose
from paddleseg.utils import logger
from tqdm import tqdm

from ..engine.inference import aug_predict, predict_logits
from ..errors import UserError
from ..utils.fileio import write_image

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(path):
    """[(file, relative name)] for one image, a folder (recursive) or a list file (one path a line).

    Results are written as ``<relative name without extension>.png``, as PaddleSeg does; two
    different images that would write the same results (``a.png`` and ``a.jpg``) are refused
    before anything is predicted. A file listed twice is predicted once.
    """
    if os.path.isdir(path):
        found = []
        for folder, _, files in sorted(os.walk(path)):
            found += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{path}'.")
        return _distinct_outputs(path, [(f, os.path.relpath(f, path)) for f in found])
    if not os.path.isfile(path):
        raise UserError(f"--image_path '{path}' is neither an image, a folder nor a list file.")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return [(path, os.path.basename(path))]
    base = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        entries = [line.split()[0] for line in f if line.strip()]
    if not entries:
        raise UserError(f"the list file '{path}' names no images (it is empty or holds only blank lines): put one "
                        "image path a line (relative to the list file's folder, or absolute), or pass an image or "
                        "a folder as --image_path.")
    files = [e if os.path.isabs(e) else os.path.join(base, e) for e in entries]
    return _distinct_outputs(path, [(f, _output_name(e)) for f, e in zip(files, entries)])


def result_name(rel):
    """The file name, inside each output folder, of the results for an input's relative name."""
    return os.path.normpath(os.path.splitext(rel)[0]) + '.png'


def _distinct_outputs(source, items):
    """``items`` without repeats of one file; a UserError naming the pairs of different files
    whose results would overwrite each other."""
    kept, owner, clashes = [], {}, []
    for file, rel in items:
        name = result_name(rel)
        if name not in owner:
            owner[name] = file
            kept.append((file, rel))
        elif os.path.realpath(owner[name]) != os.path.realpath(file):
            clashes.append((owner[name], file, name))
    if clashes:
        shown = '; '.join(f"'{a}' and '{b}' -> label/{n}" for a, b, n in clashes[:5])
        more = f' (and {len(clashes) - 5} more)' if len(clashes) > 5 else ''
        raise UserError(f"--image_path '{source}': {len(clashes)} pair(s) of images would write the same results "
                        f"(each image's results are saved as <name>.png, whatever its format): {shown}{more}. "
                        "Rename one image of each pair, or predict them in separate runs with different --save_dir; "
                        "nothing was predicted.")
    return kept


def _output_name(entry):
    """Where a list entry's results go, inside the output folder: the entry's relative path
    without leading '..' parts; an absolute path keeps its file name only."""
    if os.path.isabs(entry):
        return os.path.basename(entry)
    parts = [p for p in os.path.normpath(entry).split(os.sep) if p not in ('..', '.')]
    return os.path.join(*parts)


def _jpeg_complete(data):
    """Whether JPEG bytes hold their end-of-image marker after the last scan. OpenCV decodes
    a truncated JPEG without an error (the missing rows grey), so this is checked first."""
    last_scan = data.rfind(b'\xff\xda')
    return last_scan >= 0 and data.find(b'\xff\xd9', last_scan) >= 0


def read_image(path):
    """(image as 3-channel BGR uint8, None), or (None, why it cannot be used) for a missing,
    empty, truncated or undecodable file. Grayscale and RGBA are converted."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return None, 'does not exist'
    except OSError as e:
        return None, f'cannot be opened ({e.strerror or e})'
    if not data:
        return None, 'is empty (0 bytes)'
    if data[:3] == b'\xff\xd8\xff' and not _jpeg_complete(data):
        return None, 'is a truncated JPEG (its data ends before the end-of-image marker)'
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None, 'is truncated, damaged or not an image OpenCV can decode'
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), None
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), None
    return image, None


def read_bgr(path):
    """Image as 3-channel BGR uint8 (grayscale and RGBA converted); None if unreadable."""
    return read_image(path)[0]


def unread_message(failed, done):
    """One paragraph naming the images :func:`predict_files` could not read, and the fix."""
    shown = '; '.join(f"'{path}' {why}" for path, why in failed[:5])
    more = f' (and {len(failed) - 5} more, listed above)' if len(failed) > 5 else ''
    return (f'{len(failed)} image(s) could not be read and were skipped: {shown}{more}. Copy them again from their '
            f'source (or re-save them), or remove them from --image_path ({len(failed)} skipped, {done} predicted).')


def _compose(transforms_cfg):
    ops = []
    for cfg in transforms_cfg:
        cfg = dict(cfg)
        ops.append(manager.TRANSFORMS[cfg.pop('type')](**cfg))
    return Compose(ops)


class ExportedModelPredictor:
    """Preprocess (deploy.yaml transforms) -> run the graph -> label map, timing each stage.

    Subclasses implement ``run(batch) -> outputs`` for one engine and set ``engine``,
    ``precision`` (the run precision) and ``model_file`` (see engines.py). Images of one size
    are batched; outputs are label maps [N, H, W] (output_op argmax) or scores [N, C, H, W].
    """
    engine = None

    def __init__(self, transforms_cfg, output_op='argmax', meta=None):
        self.transforms = _compose(transforms_cfg)
        self.transforms_cfg = list(transforms_cfg)
        self.output_op = output_op
        self.meta = meta  # DatasetMeta from deploy.yaml, for colours and label ids
        self.precision = 'fp32'
        self.model_file = None
        self.times = {'preprocess': 0.0, 'inference': 0.0, 'postprocess': 0.0}
        self.images = 0

    def run(self, batch):
        raise NotImplementedError

    def describe(self):
        """'<engine> <precision> (<file>)', for logs and result tables."""
        return f"{self.engine} {self.precision} ({self.model_file})"

    def predict_batch(self, images):
        t0 = time.perf_counter()
        inputs = [np.ascontiguousarray(self.transforms({'img': bgr.astype('float32')})['img'], np.float32)
                  for bgr in images]
        t1 = time.perf_counter()
        if len({x.shape for x in inputs}) == 1:
            outputs = list(self.run(np.stack(inputs)))
        else:  # mixed sizes: one at a time
            outputs = [self.run(x[None])[0] for x in inputs]
        t2 = time.perf_counter()
        labels = []
        for out, bgr in zip(outputs, images):
            label = (out if self.output_op == 'argmax' else out.argmax(axis=0)).astype(np.uint8)
            if label.shape != bgr.shape[:2]:  # a resizing transform: back to the image size
                label = cv2.resize(label, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
            labels.append(label)
        t3 = time.perf_counter()
        for stage, seconds in zip(self.times, (t1 - t0, t2 - t1, t3 - t2)):
            self.times[stage] += seconds
        self.images += len(images)
        return labels

    def __call__(self, bgr):
        return self.predict_batch([bgr])[0]

    def timing_report(self):
        n = max(self.images, 1)
        return ', '.join(f'{stage} {1000 * t / n:.1f} ms' for stage, t in self.times.items()) + ' per image'


class DygraphPredictor:
    """A trained model in dygraph, with optional multi-scale/flip or sliding-window inference."""

    def __init__(self, model, transforms_cfg, meta=None, **infer_options):
        self.model = model
        self.meta = meta  # the config's DatasetMeta, for colours and label ids
        self.model.eval()
        self.transforms = _compose(transforms_cfg)
        self.options = infer_options

    def predict_batch(self, images):
        return [self(bgr) for bgr in images]

    def __call__(self, bgr):
        data = self.transforms({'img': bgr.astype('float32')})
        x = paddle.to_tensor(data['img'][None])
        with paddle.no_grad():
            opts = dict(self.options)
            if opts.pop('aug_pred', False):
                logit = aug_predict(self.model, x, **opts)
            else:
                logit = predict_logits(self.model, x, opts.get('is_slide', False), opts.get('crop_size'), opts.get('stride'))
        if data['trans_info']:
            from paddleseg.core.infer import reverse_transform
            logit = reverse_transform(logit, data['trans_info'], mode='bilinear')  # one image's list
        return logit.argmax(axis=1).numpy()[0].astype(np.uint8)


def label_tables(meta, save_label_ids=False):
    """(colours [256, 3] RGB, label ids [256]) indexed by predicted class.

    Colours and ids come from the dataset's metadata (deploy.yaml or the config's dataset);
    without it, PaddleSeg's generic colour map. ``save_label_ids`` needs the dataset's ids.
    """
    from ..datasets.metainfo import generic_palette
    colors = np.array(generic_palette(256), np.uint8)
    ids = np.arange(256, dtype=np.uint8)
    if meta is not None:
        colors[:meta.num_classes] = np.array(meta.palette, np.uint8)
    if save_label_ids:
        if meta is None or meta.label_ids is None:
            raise UserError('--save_label_ids: the dataset of this model declares no official label ids '
                            '(only e.g. Cityscapes does), or the export predates them: export again with '
                            'export.py, or leave out --save_label_ids.')
        ids[:meta.num_classes] = np.array(meta.label_ids, np.uint8)
    return colors, ids


def _save(save_dir, rel, bgr, label, colors, ids, save_label_ids, weight):
    name = result_name(rel)
    color_bgr = colors[label][..., ::-1]
    overlay = cv2.addWeighted(bgr, 1 - weight, color_bgr, weight, 0)
    for sub, image in (('label', ids[label] if save_label_ids else label),
                       ('pseudo_color_prediction', color_bgr),
                       ('added_prediction', overlay)):
        out = os.path.join(save_dir, sub, name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        write_image(out, image)  # atomic: never a half-written PNG under its final name


def predict_files(predictor, image_path, save_dir, save_label_ids=False, weight=0.6, batch_size=1):
    """Predict every image, ``batch_size`` at a time; returns (done, failed), ``failed`` the
    [(path, why)] of images that could not be read: each is reported by name and skipped.
    """
    colors, ids = label_tables(getattr(predictor, 'meta', None), save_label_ids)
    files = list_images(image_path)
    done, failed = 0, []
    start = time.time()
    with tqdm(total=len(files), desc='Predict') as progress:
        for i in range(0, len(files), batch_size):
            batch = []
            for path, rel in files[i:i + batch_size]:
                bgr, why = read_image(path)
                if bgr is None:
                    logger.error(f"image '{path}' {why}: skipped.")
                    failed.append((path, why))
                else:
                    batch.append((rel, bgr))
            if batch:
                for (rel, bgr), label in zip(batch, predictor.predict_batch([bgr for _, bgr in batch])):
                    _save(save_dir, rel, bgr, label, colors, ids, save_label_ids, weight)
                done += len(batch)
            progress.update(len(files[i:i + batch_size]))
    elapsed = time.time() - start
    logger.info(f"Predicted {done} image(s) in {elapsed:.1f}s ({done / max(elapsed, 1e-9):.2f} images/s), "
                f"{len(failed)} failed; results in '{save_dir}'.")
    return done, failed
