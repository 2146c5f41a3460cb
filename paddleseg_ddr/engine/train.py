"""Iteration-based training loop that runs on Paddle 3.x (single process, CPU/GPU, or
``paddle.distributed.launch`` with ``paddle.DataParallel``).

Log lines and VisualDL tags follow PaddleSeg 2.8's ``paddleseg/core/train.py`` so that
PaddleSeg's log parsers read them and a PaddleSeg run overlays ours in VisualDL.
"""
import functools
import inspect
import json
import math
import os
import random
import time

import numpy as np
import paddle
import paddle.distributed as dist
from paddleseg.utils import calculate_eta, logger

from ..errors import UserError
from ..utils.lock import run_dir_lock
from .checkpoint import (_unwrap, load_checkpoint, prune_checkpoints, rng_state, save_checkpoint,
                         set_rng_state)
from .data import check_labels, iterate_batches
from .evaluate import evaluate


def use_sync_bn(model):
    """SyncBN when several GPUs train together; plain BN otherwise (CPU included)."""
    if dist.get_world_size() > 1 and paddle.get_device().startswith('gpu'):
        return paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def compute_losses(logits, label, losses):
    """Weighted sum over heads; ``losses`` is PaddleSeg's {'types': [...], 'coef': [...]}."""
    types, coefs = losses['types'], losses['coef']
    if len(logits) != len(coefs):
        raise UserError(f'the model returned {len(logits)} output(s) in training but loss.coef has '
                        f'{len(coefs)} entries: give one coefficient per output (main head first, '
                        'then the auxiliary head, e.g. coef: [1, 0.4]).')
    per_head = [coef * loss(logit, label) for loss, coef, logit in zip(types, coefs, logits)]
    return paddle.add_n(per_head), per_head


def model_losses(model, logits, batch, losses):
    """The loss of one batch: ``model.compute_loss(logits, batch, losses)`` when the model
    defines it (families whose loss needs more than logits and label, e.g. edge labels), else
    :func:`compute_losses`. ``batch`` is the loader's dict of tensors ('img', 'label' as int64,
    'edge' when the dataset has ``edge: True``). Returns (total loss, list of per-head losses)."""
    hook = getattr(_unwrap(model), 'compute_loss', None)
    if hook is None:
        return compute_losses(logits, batch['label'], losses)
    out = hook(logits, batch, losses)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f'{type(_unwrap(model)).__name__}.compute_loss must return (total_loss, per_head_list), '
                        f'got {type(out).__name__}')
    total, per_head = out
    return total, list(per_head)


def sample_seed(seed, rank, epoch, position):
    """The NumPy and `random` seeds of one training sample: a function of the run's seed, the
    rank, the epoch and the sample's position in the rank's epoch only (not of the data
    worker that reads it), so ranks draw different augmentations, workers of one rank too,
    and a resumed run draws what the interrupted one would have."""
    numpy_seed, python_seed = np.random.SeedSequence([seed % 2**32, rank, epoch, position]).generate_state(2)
    return int(numpy_seed), int(python_seed)


class _SeededSamples(paddle.io.Dataset):
    """Reads training sample ``(index, epoch, position)`` with the NumPy/`random` generators
    seeded by :func:`sample_seed`; the caller's generator states are restored afterwards.

    PaddleSeg's transforms draw from the global generators. Seeding them per sample makes
    the augmentations independent of the worker count and of where a run was resumed."""

    def __init__(self, dataset, seed, rank):
        self.dataset, self.seed, self.rank = dataset, seed, rank

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch, position = key
        numpy_seed, python_seed = sample_seed(self.seed, self.rank, epoch, position)
        numpy_state, python_state = np.random.get_state(), random.getstate()
        np.random.seed(numpy_seed)
        random.seed(python_seed)
        try:
            return self.dataset[index]
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def broadcast_eval_state(model):
    """Give every rank rank 0's non-trainable tensors (BN running statistics, buffers).

    With plain BN (CPU) each rank keeps its own running statistics, so a distributed
    evaluation would sum the confusion matrices of different models, none of them the one
    saved (rank 0's). Trainable weights are already identical (gradient all-reduce)."""
    if dist.get_world_size() < 2:
        return
    for tensor in _unwrap(model).state_dict().values():
        if tensor.stop_gradient:
            dist.broadcast(tensor, src=0)


BEST_DIR, SCORE_FILE = 'best_model', 'score.json'


def read_best_score(save_dir):
    """The {'miou', 'iter'} recorded with ``save_dir/best_model``, or None (no record, or an
    unreadable one: a best model saved before scores were recorded)."""
    path = os.path.join(save_dir, BEST_DIR, SCORE_FILE)
    try:
        with open(path) as f:
            score = json.load(f)
        return {'miou': float(score['miou']), 'iter': int(score['iter'])}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as e:
        logger.warning(f"ignoring the unreadable best score '{path}': {e}")
        return None


def save_best_model(save_dir, model, miou, it):
    """Write ``save_dir/best_model/model.pdparams``, then its score (``score.json``, atomic):
    the score is never newer than the weights it describes."""
    from ..utils.fileio import atomic_write
    directory = os.path.join(save_dir, BEST_DIR)
    save_checkpoint(directory, model)
    with atomic_write(os.path.join(directory, SCORE_FILE), 'w', encoding='utf-8') as f:
        json.dump({'miou': float(miou), 'iter': int(it)}, f)


def _locking_save_dir(train_fn):
    """Hold the lock of ``save_dir`` (rank 0, the rank that writes it) while ``train_fn``
    runs: a second training on the same folder is refused (see :mod:`utils.lock`)."""
    signature = inspect.signature(train_fn)

    @functools.wraps(train_fn)
    def locked(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if dist.get_rank() != 0:
            return train_fn(*args, **kwargs)
        with run_dir_lock(bound.arguments['save_dir']):
            return train_fn(*args, **kwargs)
    return locked


def non_finite_weights(model):
    """Names of the floating-point tensors of ``model`` (weights and BN statistics) that hold
    a NaN or an infinity."""
    return [name for name, t in _unwrap(model).state_dict().items()
            if paddle.is_floating_point(t) and not bool(paddle.isfinite(t).all())]


def _diverged(what, it, last_saved):
    where = (f"the last checkpoint is '{last_saved}': resume from it (--resume_model) with a lower --learning_rate"
             if last_saved else 'no checkpoint was written: train again with a lower --learning_rate')
    return (f'{what} at iteration {it}: training diverged. Nothing of this iteration is saved (non-finite '
            f'weights are never written); {where}, or check the labels and the loss settings.')


def _score(model, val_dataset, eval_kwargs, state, it, save_dir, rank, writer, checkpoint):
    """Evaluate the model of iteration ``it`` (whose checkpoint is already written) and keep
    it in best_model/ if it is the best so far. The run's random-number streams are left as
    they were, so the saved checkpoint resumes exactly."""
    broadcast_eval_state(model)  # score the model that best_model/ would hold: rank 0's
    rng = rng_state()
    try:
        metrics = evaluate(model, val_dataset, **(eval_kwargs or {}))
    except UserError as e:
        raise UserError(f"{e} (The evaluation of iteration {it} failed after its checkpoint '{checkpoint}' was "
                        'written: fix this, then resume from it with --resume_model; it is evaluated first.)') from None
    finally:
        set_rng_state(rng)
    if metrics['miou'] > state['best_miou']:
        state['best_miou'], state['best_iter'] = metrics['miou'], it
        if rank == 0:
            save_best_model(save_dir, model, metrics['miou'], it)
    if rank == 0:
        logger.info(f"[EVAL] The model with the best validation mIoU ({state['best_miou']:.4f}) "
                    f"was saved at iter {state['best_iter']}.")
        if writer:
            writer.add_scalar('Evaluate/mIoU', metrics['miou'], it)
            writer.add_scalar('Evaluate/Acc', metrics['acc'], it)
            writer.add_scalar('Evaluate/Kappa', metrics['kappa'], it)
    model.train()
    return metrics


@_locking_save_dir
def train(model, train_dataset, optimizer, losses, iters, batch_size, val_dataset=None,
          save_dir='output', save_interval=1000, log_iters=10, do_eval=False, use_vdl=False,
          resume_model=None, keep_checkpoint_max=5, num_workers=0, precision='fp32',
          amp_level='O1', seed=0, eval_kwargs=None):
    """Train ``model`` for ``iters`` iterations; returns a summary dict.

    The learning-rate scheduler is the optimizer's and steps once per iteration.
    Checkpoints go to ``save_dir/iter_<N>`` every ``save_interval`` iterations and at the
    end; with ``do_eval`` the best mIoU so far is kept in ``save_dir/best_model`` with its
    score in ``best_model/score.json``. A checkpoint is written before it is evaluated (an
    evaluation failure loses no training; with ``do_eval`` a resumed checkpoint is evaluated
    first). The loss is checked every iteration and the weights at every checkpoint: a
    diverging run stops with a ``UserError`` and never writes non-finite weights.
    ``save_dir`` is locked (rank 0) for the run. Data augmentations are drawn per sample
    from (seed, rank, epoch, position): see :func:`sample_seed`.
    """
    nranks, rank = dist.get_world_size(), dist.get_rank()
    scheduler = optimizer._learning_rate if isinstance(optimizer._learning_rate, paddle.optimizer.lr.LRScheduler) else None
    state = {'iter': 0, 'best_miou': -1.0, 'best_iter': -1}
    evaluating = do_eval and val_dataset is not None
    pending_eval, last_saved = False, resume_model
    if resume_model:
        saved = load_checkpoint(resume_model, model, optimizer)
        state.update({k: saved[k] for k in state})
        if scheduler is not None:
            # Re-evaluate the schedule at the saved iteration for this run's settings
            # (e.g. more --iters than the interrupted run had).
            scheduler.step(state['iter'])
        set_rng_state(saved['rng'])
        # Checkpoints are written before their evaluation, so the resumed one may never have
        # been scored (the run stopped during it): it is evaluated before training goes on.
        pending_eval = evaluating
        logger.info(f"Resumed from '{resume_model}' at iteration {state['iter']}.")
    on_disk = read_best_score(save_dir)
    if on_disk is not None and on_disk['miou'] > state['best_miou']:
        # A better model than this run's state knows of (e.g. resumed from an older
        # checkpoint): keep it unless a better one is scored.
        state['best_miou'], state['best_iter'] = on_disk['miou'], on_disk['iter']
        logger.info(f"Keeping '{os.path.join(save_dir, BEST_DIR)}' (mIoU {on_disk['miou']:.4f} at iteration "
                    f"{on_disk['iter']}) unless a better model is scored.")
    if on_disk is not None and on_disk['iter'] == state['iter']:
        pending_eval = False  # best_model/ holds the resumed model: it was scored
    if state['iter'] >= iters:
        logger.warning(f"Nothing to do: already at iteration {state['iter']} of {iters}.")

    net = paddle.DataParallel(model) if nranks > 1 else model
    sampler = paddle.io.DistributedBatchSampler(train_dataset, batch_size, shuffle=True, drop_last=True)
    if len(sampler) == 0:
        raise UserError(f'the training set has {len(train_dataset)} image(s), fewer than batch_size '
                        f'{batch_size} x {nranks} process(es): lower --batch_size.')
    samples = _SeededSamples(train_dataset, seed, rank)
    use_amp = precision == 'fp16'
    if use_amp and not paddle.get_device().startswith('gpu'):
        logger.warning('--precision fp16 needs a GPU; training in fp32 on ' + paddle.get_device())
        use_amp = False
    scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if use_amp else None
    writer = None
    if use_vdl and rank == 0:
        from visualdl import LogWriter
        writer = LogWriter(save_dir)

    if pending_eval:
        logger.info(f"Evaluating the resumed checkpoint '{resume_model}' (iteration {state['iter']}) first.")
        _score(model, val_dataset, eval_kwargs, state, state['iter'], save_dir, rank, writer, resume_model)
    model.train()
    it = state['iter']
    start_iter, window = it, []
    reader_cost = batch_cost = 0.0
    history = []
    tic = time.time()
    while it < iters:
        # A resumed run skips the batches of its epoch that were already trained on, so it
        # sees the same data order (and, samples being seeded by position, the same
        # augmentations) as an uninterrupted one.
        epoch, done = divmod(it, len(sampler))
        sampler.set_epoch(epoch)
        batches = list(sampler)[done:]
        keys = [[(index, epoch, (done + b) * batch_size + j) for j, index in enumerate(indices)]
                for b, indices in enumerate(batches)]
        loader = iterate_batches(samples, keys, num_workers)
        for batch_keys, data in loader:
            indices = [key[0] for key in batch_keys]
            reader_cost += time.time() - tic
            it += 1
            data = {**data, 'label': data['label'].astype('int64')}
            check_labels(data['label'], indices, train_dataset)
            with paddle.amp.auto_cast(enable=use_amp, level=amp_level):
                logits = net(data['img'])
            loss, per_head = model_losses(model, [l.astype('float32') for l in logits], data, losses)
            loss_value = float(loss)
            if not math.isfinite(loss_value):  # checked before the step: the weights stay finite
                raise UserError(_diverged(f'the loss is {loss_value}', it, last_saved))
            if use_amp:
                scaled = scaler.scale(loss)
                scaled.backward()
                scaler.minimize(optimizer, scaled)
            else:
                loss.backward()
                optimizer.step()
            optimizer.clear_grad()
            lr = optimizer.get_lr()
            if scheduler is not None:
                scheduler.step()
            window.append([loss_value] + [float(h) for h in per_head])
            batch_cost += time.time() - tic

            if it % log_iters == 0 or it == iters:
                mean = np.mean(window, axis=0)
                n = len(window)
                avg_batch, avg_reader = batch_cost / n, reader_cost / n
                ips = batch_size / avg_batch  # per process, as PaddleSeg counts it
                history.append({'iter': it, 'loss': float(mean[0]), 'lr': lr})
                if rank == 0:
                    # PaddleSeg 2.8's line (paddleseg/core/train.py), then the per-head losses.
                    line = (f'[TRAIN] epoch: {epoch + 1}, iter: {it}/{iters}, loss: {mean[0]:.4f}, lr: {lr:.6f}, '
                            f'batch_cost: {avg_batch:.4f}, reader_cost: {avg_reader:.5f}, ips: {ips:.4f} '
                            f'samples/sec | ETA {calculate_eta(iters - it, avg_batch)}')
                    if len(mean) > 2:
                        line += ' | head losses: ' + ', '.join(f'{v:.4f}' for v in mean[1:])
                    logger.info(line)
                    if writer:
                        writer.add_scalar('Train/loss', mean[0], it)
                        if len(mean) > 2:  # PaddleSeg records the heads when there are several
                            for i, v in enumerate(mean[1:]):
                                writer.add_scalar(f'Train/loss_{i}', v, it)
                        for i, v in enumerate(mean[1:]):
                            writer.add_scalar(f'Train/loss_head{i}', v, it)
                        writer.add_scalar('Train/lr', lr, it)
                        writer.add_scalar('Train/batch_cost', avg_batch, it)
                        writer.add_scalar('Train/reader_cost', avg_reader, it)
                        writer.add_scalar('Train/ips', batch_size * nranks / avg_batch, it)  # all processes
                window, reader_cost, batch_cost = [], 0.0, 0.0

            if it % save_interval == 0 or it == iters:
                bad = non_finite_weights(model)
                if bad:
                    raise UserError(_diverged(f"the weights became non-finite ({', '.join(bad[:3])}"
                                              f"{', ...' if len(bad) > 3 else ''})", it, last_saved))
                # Save first, then evaluate: an evaluation failure loses no training.
                state['iter'] = it
                checkpoint = os.path.join(save_dir, f'iter_{it}')
                if rank == 0:
                    save_checkpoint(checkpoint, model, optimizer, {**state, 'rng': rng_state()})
                    prune_checkpoints(save_dir, keep_checkpoint_max)
                last_saved = checkpoint
                if evaluating:
                    _score(model, val_dataset, eval_kwargs, state, it, save_dir, rank, writer, checkpoint)
            tic = time.time()
            if it >= iters:
                loader.close()  # stops the data workers of an unfinished epoch
                break
    if writer:
        writer.close()
    state['iter'] = it
    return {**state, 'lr': optimizer.get_lr(), 'history': history, 'iters_run': it - start_iter}
