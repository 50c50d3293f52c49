"""``latent-trainer train``: the training run, start to finish (or to a clean stop).

Straight-line: prepare -> (PCA: fit once | SGD: epochs of train_step, validate, checkpoint,
early stopping) -> finished or stopped. Under ``torchrun`` every rank takes its share of each
batch (trainer/distributed.py); rank 0 alone writes files and validates, and tells the others
its decisions (resume or not, the validation losses, a stop), so all ranks step together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.atomic import WriteError, os_error_message, remove_stale_temporaries
from models.errors import LatentExplorerError
from models.events import (
    CheckpointWritten,
    Error,
    Finished,
    Progress,
    Started,
    Stopped,
    Validation,
)
from trainer.loop import (
    alternating_groups,
    alternating_step,
    batches,
    encode_items,
    epoch_order,
    evaluate,
    lr_at,
    rng_state,
    seed_everything,
    set_rng_state,
    steps_per_epoch,
    train_step,
)
from trainer import distributed
from trainer.run_setup import STATE_FILE, Prepared, TrainOptions, as_tensor, pick_device, prepare
from trainer.run_lock import LOCK_FILE, RunLock, RunLockedError
from trainer.sink import EventSink, add_log_file
from trainer.stop import StopRequest

log = logging.getLogger("trainer")

STATE_VERSION = 1


def checkpoint_path(run_dir: Path, kind: str) -> Path:
    """``run_dir/last.safetensors`` or ``run_dir/best.safetensors``."""
    return run_dir / f"{kind}.safetensors"


def run_training(opts: TrainOptions) -> int:
    """Train; returns the exit code (0 finished or stopped cleanly, 1 crashed).

    Errors in the user's input (ConfigError, DatasetError...), a busy run folder and a file
    system failure (a full disk while saving) are re-raised after the error event, so the CLI
    prints them as one line and exits 2, 4 or 3 (docs/trainer.md). Every checkpoint is written
    atomically, so after a failed save the last good one is still there, unchanged.
    """
    launch = distributed.world_from_env()
    rank, world = launch.rank, launch.size
    sink = EventSink(None, stdout=opts.events, enabled=rank == 0)
    handler = None
    lock = RunLock(opts.run_dir) if rank == 0 else None
    made_dir = not opts.run_dir.exists()
    try:
        if lock is not None:
            lock.acquire()
            for p in remove_stale_temporaries(opts.run_dir):
                log.info("removed %s, left by an earlier run that was killed while saving", p.name)
        if world > 1:
            distributed.init(opts.device, launch.local_rank)
            if rank > 0:  # one human log: rank 0's (warnings and errors still come from all)
                logging.getLogger().setLevel(logging.WARNING)
        device = pick_device(opts.device, launch.local_rank)
        if world > 1 and rank > 0:
            # Rank 0 resolves the config, writes config.json/split.json and fills the feature
            # cache; the others wait for it, then read them as a resume would (resuming from
            # the training state when rank 0 does), so all ranks train the same run.
            from_state = distributed.from_rank0(None)
            opts = dataclasses.replace(opts, resume=True, start_over=not from_state)
        prep = prepare(opts, rank=rank, world_size=world)
        if world > 1 and rank == 0:
            distributed.from_rank0(_resumes_from_state(opts, prep))
        if rank == 0:
            sink.open(opts.run_dir)
            handler = add_log_file(opts.run_dir / "train.log")
        return _Run(opts, prep, device, sink, rank=rank, world=world).run()
    except RunLockedError as exc:
        lock = None  # not ours to release or clean
        sink.emit(Error(message=str(exc), kind="busy"))  # stdout only: events.jsonl is the other trainer's
        raise
    except OSError as exc:  # a full disk, a folder made read-only: ours or the system's
        message = str(exc) if isinstance(exc, LatentExplorerError) else os_error_message(exc, target=opts.run_dir)
        sink.emit(Error(message=message, kind="disk" if exc.errno in _DISK_FULL else "files",
                        traceback=_tail(exc)))
        if isinstance(exc, LatentExplorerError):
            raise
        raise WriteError(message) from exc  # the CLI prints it as one line and exits 3
    except LatentExplorerError as exc:
        sink.emit(Error(message=str(exc), kind="input"))
        raise
    except Exception as exc:
        log.error("training failed: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        if opts.debug:
            log.error("%s", _tail(exc, 30))
        sink.emit(Error(message=f"{type(exc).__name__}: {exc}", kind="internal", traceback=_tail(exc)))
        return 1
    finally:
        sink.close()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        if world > 1:
            distributed.shutdown()
        if lock is not None:
            if made_dir:  # unlinked while still held, so no other trainer locks a file about to vanish
                _remove_if_only_lock(opts.run_dir)
            lock.release()


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _tail(exc: BaseException, lines: int = 6) -> str:
    return "".join(traceback.format_exception(exc)[-lines:])


def _remove_if_only_lock(run_dir: Path) -> None:
    # A run that failed before writing anything leaves no folder behind (only the lock was made).
    with contextlib.suppress(OSError):
        if [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            (run_dir / LOCK_FILE).unlink()
            run_dir.rmdir()


def _resumes_from_state(opts: TrainOptions, prep: Prepared) -> bool:
    return prep.resuming and (opts.run_dir / STATE_FILE).exists() and not opts.start_over


class _Run:
    """One training process. Kept as a class only to share state between its few phases."""

    def __init__(self, opts: TrainOptions, prep: Prepared, device: torch.device, sink: EventSink,
                 *, rank: int, world: int) -> None:
        from models.nets.registry import build_model

        self.opts, self.prep, self.device, self.sink = opts, prep, device, sink
        self.rank, self.world = rank, world
        self.cfg = prep.config
        self.tc = prep.config.train
        self.run_dir = opts.run_dir
        seed_everything(self.cfg.seed + rank)  # each rank its own noise (VAE sampling)
        self.model = build_model(self.cfg.model, prep.model_config).to(device)
        distributed.broadcast_model(self.model)  # one initialisation: rank 0's
        self.net: torch.nn.Module = self.model
        self.amp = device.type == "cuda" and self.tc.amp
        self.train_x, self.val_x = as_tensor(prep.train.x), as_tensor(prep.val.x)
        self.train_y = as_tensor(prep.train.y) if prep.classes else None
        self.val_y = as_tensor(prep.val.y) if prep.classes else None
        self.spe = steps_per_epoch(len(self.train_x), self.tc.batch_size, world)
        if self.model.trainable and not self.spe:
            from models.errors import DatasetError

            raise DatasetError(f"{len(self.train_x)} training items cannot be shared among {world} processes "
                               f"({self.tc.batch_size // world} each per step): use fewer processes or more data")
        self.total_steps = self.tc.epochs * self.spe if self.model.trainable else 1
        # progress
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_val: float | None = None
        self.bad_evals = 0
        self.last_losses: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.elapsed_before = 0.0
        self.t0 = time.monotonic()
        # rank 0 alone reads stdin and the STOP file (and removes it); _stop_reason tells the others
        self.stop = StopRequest(self.run_dir, stdin_commands=opts.stdin_commands and rank == 0,
                                watch_file=rank == 0)
        self.bar: Any = None

    # --- phases ---------------------------------------------------------------------------------
    def run(self) -> int:
        if self.model.trainable:
            self._build_optimizers()
        resumed = _resumes_from_state(self.opts, self.prep)
        if resumed:
            self._load_state(self.run_dir / STATE_FILE)
        elif self.cfg.init_from:
            self._load_init_weights(self.cfg.init_from)
        if self.model.trainable:
            self._check_select_on()
        if self.rank == 0:
            self.stop.clear_stale_file()
        self.stop.install()
        try:
            self.sink.emit(Started(
                run_dir=str(self.run_dir), preset=self.cfg.preset, model=self.cfg.model,
                device=str(self.device), world_size=self.world, seed=self.cfg.seed, step=self.step,
                epoch=self.epoch, total_steps=self._step_cap(), n_train=len(self.train_x),
                n_val=len(self.val_x), n_test=len(self.prep.split.test), resumed=resumed,
            ))
            log.info("%s %s on %s: %d training items %s, %d validation items, %d steps per epoch",
                     "resuming" if resumed else "training", self.cfg.preset, self.device,
                     len(self.train_x), tuple(self.train_x.shape[1:]), len(self.val_x), self.spe)
            return self._fit_closed_form() if not self.model.trainable else self._train()
        finally:
            self.stop.uninstall()
            if self.bar is not None:
                self.bar.close()

    def _fit_closed_form(self) -> int:
        # PCA and other closed-form models: one "epoch", one "step".
        self.model.fit(self.train_x.to(self.device))
        self._check_select_on()
        self.step, self.epoch = 1, 1
        self._validate()
        self._save("last")
        return self._finish("completed")

    def _train(self) -> int:
        if self.opts.progress_bar and self.rank == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=self._step_cap(), initial=self.step, unit="step", file=sys.stderr)
        cap = self._step_cap()
        window_t, window_step = time.monotonic(), self.step
        while self.epoch < self.tc.epochs:
            order = epoch_order(len(self.train_x), seed=self.cfg.seed, epoch=self.epoch)
            chunks = batches(order, self.tc.batch_size, rank=self.rank, world_size=self.world)
            for b in range(self.batch_in_epoch, len(chunks)):
                if self.step >= cap:
                    break
                idx = torch.from_numpy(chunks[b])
                x = self.train_x[idx].to(self.device, non_blocking=True)
                y = None if self.train_y is None else self.train_y[idx].to(self.device, non_blocking=True)
                lr = lr_at(self.step, lr=self.tc.lr, total_steps=self.total_steps, schedule=self.tc.lr_schedule,
                           warmup_steps=self.tc.warmup_steps, min_lr_ratio=self.tc.min_lr_ratio)
                if self.tc.alternating:
                    # the classification rate follows the same schedule, scaled
                    lrs = (lr, lr * self.tc.lr_classifier / self.tc.lr)
                    self.last_losses = alternating_step(
                        self.net, self.model, x, y, (self.optimizer, self.optimizer_cls), self.scaler,
                        lrs=lrs, grad_clip=self.tc.grad_clip, amp=self.amp, step=self.step)
                else:
                    self.last_losses = train_step(self.net, self.model, x, y, self.optimizer, self.scaler,
                                                  lr=lr, grad_clip=self.tc.grad_clip, amp=self.amp,
                                                  step=self.step)
                self.last_losses = distributed.mean_terms(self.last_losses, self.device)  # the whole batch's
                self.step += 1
                self.batch_in_epoch = b + 1
                if self.bar is not None:
                    self.bar.update(1)
                    self.bar.set_postfix(loss=f"{self.last_losses['loss']:.4g}", epoch=self.epoch)
                if self.step % self.tc.log_every == 0 or self.batch_in_epoch == len(chunks):
                    now = time.monotonic()
                    sps = (self.step - window_step) / max(now - window_t, 1e-9)
                    window_t, window_step = now, self.step
                    self.sink.emit(Progress(
                        epoch=self.epoch, step=self.step, total_steps=cap, losses=self.last_losses, lr=lr,
                        steps_per_sec=sps, eta_s=(cap - self.step) / sps if sps > 0 else None,
                    ))
                reason = self._stop_reason()
                if reason is not None:
                    return self._stopped(reason)
            if self.batch_in_epoch < len(chunks):  # the step cap fell inside this epoch
                self._save("last")
                return self._finish("max_steps")
            # the epoch is complete
            self.epoch += 1
            self.batch_in_epoch = 0
            if self.epoch % self.tc.eval_every == 0 or self.epoch == self.tc.epochs:
                self._validate()
            self._save("last")
            if self.tc.patience and self.bad_evals >= self.tc.patience:
                return self._finish("early_stopping")
            if self.step >= cap and self.epoch < self.tc.epochs:
                return self._finish("max_steps")
        return self._finish("completed")

    # --- pieces --------------------------------------------------------------------------------
    def _build_optimizers(self) -> None:
        """Adam over every weight; with ``alternating``, one for the VAE, one for the classification."""
        adam = dict(betas=self.tc.betas, weight_decay=self.tc.weight_decay)
        self.optimizer_cls: torch.optim.Optimizer | None = None
        if self.tc.alternating:
            vae, head = alternating_groups(self.model)
            self.optimizer = torch.optim.Adam(vae, lr=self.tc.lr, **adam)
            if head:
                self.optimizer_cls = torch.optim.Adam(head, lr=self.tc.lr_classifier, **adam)
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tc.lr, **adam)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)

    def _check_select_on(self) -> None:
        """Fail before the first step when ``select_on`` names no loss term of this model."""
        from models.errors import ConfigError

        if not len(self.train_x):
            return
        rng_before = torch.get_rng_state()
        y = None if self.train_y is None else self.train_y[:1]
        terms = evaluate(self.model, self.train_x[:1], y, batch_size=1, device=self.device)
        torch.set_rng_state(rng_before)
        if self.tc.select_on not in terms:
            raise ConfigError(f"train.select_on={self.tc.select_on!r}: {self.cfg.model} has no such loss "
                              f"term; it has: {', '.join(sorted(terms))}")

    def _step_cap(self) -> int:
        cap = self.total_steps
        if self.opts.max_steps is not None:
            cap = min(cap, self.opts.max_steps)
        return cap

    def _stop_reason(self) -> str | None:
        reason = self.stop.reason()
        if self.world == 1:
            return reason
        # Every rank must stop at the same step, or the others would wait forever in an all-reduce.
        if not distributed.any_rank(reason is not None, self.device):
            return None
        return distributed.from_rank0(reason) or "signal"  # a signal that reached another rank only

    def _validate(self) -> bool:
        """Validation losses; saves ``best`` when the ``select_on`` term improves. Returns whether it did."""
        x, y = (self.val_x, self.val_y) if len(self.val_x) else (self.train_x, self.train_y)
        # rank 0 validates and the others take its numbers, so all make the same early-stopping call
        val = evaluate(self.model, x, y, batch_size=max(self.tc.batch_size, 256), device=self.device,
                       amp=self.amp) if self.rank == 0 else None
        self.last_val = distributed.from_rank0(val)
        loss = self.last_val.get(self.tc.select_on, float("nan"))
        improved = np.isfinite(loss) and (self.best_val is None or loss < self.best_val - self.tc.min_delta)
        if improved:
            self.best_val = float(loss)
            self.bad_evals = 0
        elif self.step >= getattr(self.model.config, "kl_warmup_steps", 0):
            # while the KL's weight still rises the validated objective (at the full weight) may
            # rise with it: a VAE is not stopped for that, only for what follows the warm-up
            self.bad_evals += 1
        self.sink.emit(Validation(epoch=self.epoch, step=self.step, losses=self.last_val, best=bool(improved)))
        log.info("epoch %d step %d: validation %s %.6g%s", self.epoch, self.step, self.tc.select_on, loss,
                 " (best)" if improved else f" (no improvement for {self.bad_evals})")
        if improved:
            self._save("best")
        return bool(improved)

    def _stopped(self, reason: str) -> int:
        self._save("last")
        path = checkpoint_path(self.run_dir, "last")
        self.sink.emit(Stopped(epoch=self.epoch, step=self.step, reason=reason, checkpoint=str(path)))
        log.info("stopped at step %d (%s); resume with --resume", self.step, reason)
        return 0

    def _finish(self, reason: str) -> int:
        self.sink.emit(Finished(epoch=self.epoch, step=self.step, reason=reason, best_val_loss=self.best_val,
                                duration_s=self._elapsed()))
        log.info("finished (%s) at step %d; best validation loss %s", reason, self.step, self.best_val)
        return 0

    def _elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t0

    # --- files ---------------------------------------------------------------------------------
    def _save(self, kind: str) -> None:
        """Write the checkpoint ``kind`` (and, for ``last``, the resume state); rank 0 only."""
        rngs = distributed.gather_to_rank0(rng_state()) if kind == "last" and self.world > 1 else None
        if self.rank == 0:
            from models.checkpoints.checkpoint import save_checkpoint

            path = save_checkpoint(
                checkpoint_path(self.run_dir, kind), self.model,
                preset=self.cfg.preset,
                representation=self.prep.representation.to_dict(),
                dataset_fingerprint=self.prep.dataset.fingerprint,
                labels=({"field": self.prep.dataset.default_label, "names": list(self.prep.classes)}
                        if self.prep.classes else None),
                training=self._summary(),
                latent_stats=self._latent_stats(),
            )
            if kind == "last":
                self._save_state(rngs)
            metrics = {f"val_{k}": v for k, v in self.last_val.items()}
            self.sink.emit(CheckpointWritten(path=str(path), kind=kind, epoch=self.epoch, step=self.step,
                                             metrics=metrics))
        distributed.barrier()  # the other ranks wait until the files are written

    def _summary(self) -> dict[str, Any]:
        return {
            "epochs": self.epoch, "steps": self.step, "best_val_loss": self.best_val,
            "final_train_loss": self.last_losses.get("loss"),
            "metrics": {f"val_{k}": v for k, v in self.last_val.items()},
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": str(self.device), "wall_time_s": self._elapsed(),
            "extra": {"seed": self.cfg.seed, "train": self.cfg.to_dict()["train"]},
        }

    def _latent_stats(self) -> Any:
        from models.checkpoints.latent_stats import latent_statistics

        n = len(self.train_x)
        if n < 2:
            return None
        # An evenly spaced subset bounds the cost on large sets and stays deterministic.
        take = np.linspace(0, n - 1, min(n, self.tc.stats_max_items)).round().astype(np.int64)
        rng_before = torch.get_rng_state()
        codes = encode_items(self.model, self.train_x[torch.from_numpy(take)], batch_size=1024, device=self.device)
        torch.set_rng_state(rng_before)
        if not np.isfinite(codes).all():
            log.warning("latent codes are not finite; checkpoint saved without latent statistics")
            return None
        return latent_statistics(codes)

    def _save_state(self, rank_rngs: list[dict[str, Any]] | None = None) -> None:
        from models.checkpoints.checkpoint import save_training_state, unwrap_model

        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "best_val": self.best_val, "bad_evals": self.bad_evals,
            "elapsed_s": self._elapsed(),
            "last_losses": dict(self.last_losses), "last_val": dict(self.last_val),
            # The weights travel with the state so that resuming never pairs this state with
            # a ``last`` checkpoint from another step (a kill between the two writes).
            "model": {k: v.detach().cpu() for k, v in unwrap_model(self.model).state_dict().items()},
            "rng": rng_state(),
        }
        if rank_rngs is not None:  # every rank's noise continues where it stopped
            state["rng_ranks"] = rank_rngs
        if self.model.trainable:
            state["optimizer"] = self.optimizer.state_dict()
            if self.optimizer_cls is not None:
                state["optimizer_classifier"] = self.optimizer_cls.state_dict()
            state["scaler"] = self.scaler.state_dict()
        save_training_state(self.run_dir / STATE_FILE, state)

    def _load_init_weights(self, path: str) -> None:
        """Fine-tuning: the weights of ``--init-from`` (same model, shapes checked)."""
        from models.checkpoints.checkpoint import load_checkpoint
        from models.errors import CheckpointError

        weights = load_checkpoint(path, device="cpu").model.state_dict()
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not fit this run's model (different data shape?): "
                                  f"{str(exc).splitlines()[0]}") from None
        log.info("starting from the weights of %s", path)

    def _load_state(self, path: Path) -> None:
        from models.checkpoints.checkpoint import load_training_state
        from models.errors import CheckpointError

        state = load_training_state(path, map_location=self.device)
        if state.get("version") != STATE_VERSION:
            raise CheckpointError(f"{path}: training state version {state.get('version')!r} is not "
                                  f"{STATE_VERSION}; it cannot be resumed by this version")
        self.model.load_state_dict(state["model"])
        if self.model.trainable:
            if (self.optimizer_cls is None) != ("optimizer_classifier" not in state):
                raise CheckpointError(f"{path}: saved {'with' if 'optimizer_classifier' in state else 'without'} "
                                      "a classifier optimiser (train.alternating); it cannot resume otherwise")
            self.optimizer.load_state_dict(state["optimizer"])
            if self.optimizer_cls is not None:
                self.optimizer_cls.load_state_dict(state["optimizer_classifier"])
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.best_val = None if state["best_val"] is None else float(state["best_val"])
        self.bad_evals = int(state["bad_evals"])
        self.elapsed_before = float(state["elapsed_s"])
        self.last_losses = dict(state["last_losses"])
        self.last_val = dict(state["last_val"])
        set_rng_state(state["rng"])
        if self.world > 1:
            ranks = state.get("rng_ranks") or []
            if len(ranks) == self.world:
                set_rng_state(ranks[self.rank])
            elif self.rank > 0:  # resumed with another number of processes: fresh noise per rank
                seed_everything(int(np.random.SeedSequence([self.cfg.seed, self.rank, self.step]).generate_state(1)[0]))
        log.info("resumed from step %d (epoch %d, batch %d)", self.step, self.epoch, self.batch_in_epoch)
