"""Prediction on image files with a trained checkpoint (dygraph) or an exported model
(Paddle Inference), writing label maps, pseudo-colour maps and overlays."""
import os
import time

import cv2
import numpy as np
import paddle
import yaml
from paddleseg.cvlibs import manager
from paddleseg.transforms import Compose
from paddleseg.utils import logger
from tqdm import tqdm

from ..engine.inference import aug_predict, predict_logits
from ..errors import UserError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(path):
    """[(file, relative name)] for one image, a folder (recursive) or a list file (one path a line)."""
    if os.path.isdir(path):
        found = []
        for folder, _, files in sorted(os.walk(path)):
            found += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{path}'.")
        return [(f, os.path.relpath(f, path)) for f in found]
    if not os.path.isfile(path):
        raise UserError(f"--image_path '{path}' is neither an image, a folder nor a list file.")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return [(path, os.path.basename(path))]
    base = os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        entries = [line.split()[0] for line in f if line.strip()]
    files = [e if os.path.isabs(e) else os.path.join(base, e) for e in entries]
    return [(f, os.path.relpath(f, base) if not os.path.isabs(e) else os.path.basename(f)) for f, e in zip(files, entries)]


def read_bgr(path):
    """Image as 3-channel BGR uint8 (grayscale and RGBA converted); None if unreadable."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _compose(transforms_cfg):
    ops = []
    for cfg in transforms_cfg:
        cfg = dict(cfg)
        ops.append(manager.TRANSFORMS[cfg.pop('type')](**cfg))
    return Compose(ops)


class DygraphPredictor:
    """A trained model in dygraph, with optional multi-scale/flip or sliding-window inference."""

    def __init__(self, model, transforms_cfg, **infer_options):
        self.model = model
        self.model.eval()
        self.transforms = _compose(transforms_cfg)
        self.options = infer_options

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
            logit = reverse_transform(logit, [data['trans_info']], mode='bilinear')
        return logit.argmax(axis=1).numpy()[0].astype(np.uint8)


class StaticPredictor:
    """An exported model (``deploy.yaml`` + graph) run with Paddle Inference on the CPU/GPU."""

    def __init__(self, model_dir, device='cpu', enable_mkldnn=False, cpu_threads=None):
        deploy_file = os.path.join(model_dir, 'deploy.yaml')
        if not os.path.isfile(deploy_file):
            raise UserError(f"'{model_dir}' has no deploy.yaml: pass the --save_dir of export.py.")
        with open(deploy_file) as f:
            deploy = yaml.safe_load(f)['Deploy']
        for key in ('model', 'params'):
            if not os.path.isfile(os.path.join(model_dir, deploy[key])):
                raise UserError(f"'{model_dir}' lacks {deploy[key]} named in deploy.yaml: export again.")
        from paddle import inference
        config = inference.Config(os.path.join(model_dir, deploy['model']), os.path.join(model_dir, deploy['params']))
        if device == 'gpu':
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads or len(os.sched_getaffinity(0)))
            if enable_mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
        self.predictor = inference.create_predictor(config)
        self.transforms = _compose(deploy.get('transforms', []))
        self.output_op = deploy.get('output_op', 'argmax')

    def __call__(self, bgr):
        data = self.transforms({'img': bgr.astype('float32')})
        x = np.ascontiguousarray(data['img'][None], dtype=np.float32)
        handle = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        handle.reshape(x.shape)
        handle.copy_from_cpu(x)
        self.predictor.run()
        out = self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu()
        label = out[0] if self.output_op == 'argmax' else out[0].argmax(axis=0)
        if label.shape != bgr.shape[:2]:  # resized input: back to the image size
            label = cv2.resize(label.astype(np.uint8), (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
        return label.astype(np.uint8)


def cityscapes_palette():
    """trainId -> RGB colour (19 classes) and trainId -> Cityscapes id, from cityscapesscripts."""
    from cityscapesscripts.helpers.labels import trainId2label
    colors = np.zeros((256, 3), np.uint8)
    ids = np.zeros(256, np.uint8)
    for train_id in range(19):
        colors[train_id] = trainId2label[train_id].color
        ids[train_id] = trainId2label[train_id].id
    return colors, ids


def predict_files(predictor, image_path, save_dir, save_label_ids=False, weight=0.6):
    """Predict every image; returns (done, failed). Unreadable images are reported and skipped."""
    colors, ids = cityscapes_palette()
    files = list_images(image_path)
    done, failed = 0, []
    start = time.time()
    for path, rel in tqdm(files, desc='Predict'):
        bgr = read_bgr(path)
        if bgr is None:
            logger.error(f"cannot read image '{path}': skipped.")
            failed.append(path)
            continue
        label = predictor(bgr)
        stem = os.path.splitext(rel)[0]
        color_rgb = colors[label]
        overlay = cv2.addWeighted(bgr, 1 - weight, color_rgb[..., ::-1], weight, 0)
        for sub, image in (('label', ids[label] if save_label_ids else label),
                           ('pseudo_color_prediction', color_rgb[..., ::-1]),
                           ('added_prediction', overlay)):
            out = os.path.join(save_dir, sub, stem + '.png')
            os.makedirs(os.path.dirname(out), exist_ok=True)
            cv2.imwrite(out, image)
        done += 1
    elapsed = time.time() - start
    logger.info(f"Predicted {done} image(s) in {elapsed:.1f}s ({done / max(elapsed, 1e-9):.2f} images/s), "
                f"{len(failed)} failed; results in '{save_dir}'.")
    return done, failed
