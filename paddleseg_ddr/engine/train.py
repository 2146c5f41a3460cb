"""Iteration-based training loop that runs on Paddle 3.x (single process, CPU/GPU, or
``paddle.distributed.launch`` with ``paddle.DataParallel``)."""
import os
import time
from datetime import timedelta

import numpy as np
import paddle
import paddle.distributed as dist
from paddleseg.utils import logger

from ..errors import UserError
from .checkpoint import load_checkpoint, prune_checkpoints, rng_state, save_checkpoint, set_rng_state
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


class _SeedWorker:
    """Distinct, reproducible NumPy/`random` streams per (rank, epoch, worker)."""

    def __init__(self, seed, rank, epoch):
        self.base = (seed, rank, epoch)

    def __call__(self, worker_id):
        import random
        seq = np.random.SeedSequence([*self.base, worker_id]).generate_state(2)
        np.random.seed(int(seq[0]))
        random.seed(int(seq[1]))


def train(model, train_dataset, optimizer, losses, iters, batch_size, val_dataset=None,
          save_dir='output', save_interval=1000, log_iters=10, do_eval=False, use_vdl=False,
          resume_model=None, keep_checkpoint_max=5, num_workers=0, precision='fp32',
          amp_level='O1', seed=0, eval_kwargs=None):
    """Train ``model`` for ``iters`` iterations; returns a summary dict.

    The learning-rate scheduler is the optimizer's and steps once per iteration.
    Checkpoints go to ``save_dir/iter_<N>`` every ``save_interval`` iterations and at the
    end; with ``do_eval`` the best mIoU so far is kept in ``save_dir/best_model``.
    """
    nranks, rank = dist.get_world_size(), dist.get_rank()
    scheduler = optimizer._learning_rate if isinstance(optimizer._learning_rate, paddle.optimizer.lr.LRScheduler) else None
    state = {'iter': 0, 'best_miou': -1.0, 'best_iter': -1}
    if resume_model:
        saved = load_checkpoint(resume_model, model, optimizer)
        state.update({k: saved[k] for k in state})
        if scheduler is not None:
            # Re-evaluate the schedule at the saved iteration for this run's settings
            # (e.g. more --iters than the interrupted run had).
            scheduler.step(state['iter'])
        set_rng_state(saved['rng'])
        logger.info(f"Resumed from '{resume_model}' at iteration {state['iter']}.")
    if state['iter'] >= iters:
        logger.warning(f"Nothing to do: already at iteration {state['iter']} of {iters}.")

    net = paddle.DataParallel(model) if nranks > 1 else model
    sampler = paddle.io.DistributedBatchSampler(train_dataset, batch_size, shuffle=True, drop_last=True)
    if len(sampler) == 0:
        raise UserError(f'the training set has {len(train_dataset)} image(s), fewer than batch_size '
                        f'{batch_size} x {nranks} process(es): lower --batch_size.')
    use_amp = precision == 'fp16'
    if use_amp and not paddle.get_device().startswith('gpu'):
        logger.warning('--precision fp16 needs a GPU; training in fp32 on ' + paddle.get_device())
        use_amp = False
    scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if use_amp else None
    writer = None
    if use_vdl and rank == 0:
        from visualdl import LogWriter
        writer = LogWriter(save_dir)

    model.train()
    it = state['iter']
    start_iter, window = it, []
    reader_cost = batch_cost = 0.0
    history = []
    tic = time.time()
    while it < iters:
        # A resumed run skips the batches of its epoch that were already trained on, so it
        # sees the same data order as an uninterrupted one.
        epoch, done = divmod(it, len(sampler))
        sampler.set_epoch(epoch)
        batches = list(sampler)[done:]
        loader = iterate_batches(train_dataset, batches, num_workers, _SeedWorker(seed, rank, epoch))
        for indices, data in loader:
            reader_cost += time.time() - tic
            it += 1
            images, label = data['img'], data['label'].astype('int64')
            check_labels(label, indices, train_dataset)
            with paddle.amp.auto_cast(enable=use_amp, level=amp_level):
                logits = net(images)
            loss, per_head = compute_losses([l.astype('float32') for l in logits], label, losses)
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
            window.append([float(loss)] + [float(h) for h in per_head])
            batch_cost += time.time() - tic

            if it % log_iters == 0 or it == iters:
                mean = np.mean(window, axis=0)
                if not np.isfinite(mean[0]):
                    raise FloatingPointError(f'loss is {mean[0]} at iteration {it}: lower the learning rate '
                                             'or check the labels.')
                n = len(window)
                avg_batch = batch_cost / n
                eta = timedelta(seconds=int(avg_batch * (iters - it)))
                heads = ', '.join(f'{v:.4f}' for v in mean[1:])
                history.append({'iter': it, 'loss': float(mean[0]), 'lr': lr})
                if rank == 0:
                    logger.info(f'[TRAIN] epoch {epoch + 1}, iter {it}/{iters}, loss {mean[0]:.4f} '
                                f'(per head: {heads}), lr {lr:.6f}, batch_cost {avg_batch:.4f}s, '
                                f'reader_cost {reader_cost / n:.4f}s, ips {batch_size * nranks / avg_batch:.2f} '
                                f'images/s, ETA {eta}')
                    if writer:
                        writer.add_scalar('Train/loss', mean[0], it)
                        for i, v in enumerate(mean[1:]):
                            writer.add_scalar(f'Train/loss_head{i}', v, it)
                        writer.add_scalar('Train/lr', lr, it)
                        writer.add_scalar('Train/ips', batch_size * nranks / avg_batch, it)
                window, reader_cost, batch_cost = [], 0.0, 0.0

            if it % save_interval == 0 or it == iters:
                if do_eval and val_dataset is not None:
                    metrics = evaluate(model, val_dataset, **(eval_kwargs or {}))
                    if metrics['miou'] > state['best_miou']:
                        state['best_miou'], state['best_iter'] = metrics['miou'], it
                        if rank == 0:
                            save_checkpoint(os.path.join(save_dir, 'best_model'), model)
                    if rank == 0:
                        logger.info(f"[EVAL] best mIoU {state['best_miou']:.4f} at iteration {state['best_iter']}")
                        if writer:
                            writer.add_scalar('Evaluate/mIoU', metrics['miou'], it)
                            writer.add_scalar('Evaluate/Acc', metrics['acc'], it)
                            writer.add_scalar('Evaluate/Kappa', metrics['kappa'], it)
                    model.train()
                state['iter'] = it
                if rank == 0:
                    save_checkpoint(os.path.join(save_dir, f'iter_{it}'), model, optimizer, {**state, 'rng': rng_state()})
                    prune_checkpoints(save_dir, keep_checkpoint_max)
            tic = time.time()
            if it >= iters:
                loader.close()  # stops the data workers of an unfinished epoch
                break
    if writer:
        writer.close()
    state['iter'] = it
    return {**state, 'lr': optimizer.get_lr(), 'history': history, 'iters_run': it - start_iter}
