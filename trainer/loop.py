"""The small pure pieces of the training loop (nanoGPT's plainness): schedule, order, step, eval.

Determinism: the order of the training items in an epoch is a function of ``(seed, epoch)``
only (:func:`epoch_order`), so a resumed run recomputes it and skips the batches it already
consumed; together with the saved optimizer and RNG states this makes "N steps, stop,
resume to 2N" equal to "2N steps" bit for bit on the CPU.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler


def lr_at(step: int, *, lr: float, total_steps: int, schedule: str = "constant",
          warmup_steps: int = 0, min_lr_ratio: float = 0.1) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then constant or cosine.

    ``total_steps`` is ``epochs * steps_per_epoch`` (``--max-steps`` does not change it, so
    a capped run and its resumption follow the same schedule).
    """
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    floor = lr * min_lr_ratio
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * progress))


def epoch_order(n: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """This rank's item indices for ``epoch``, shuffled as a function of ``(seed, epoch)``.

    DistributedSampler gives every rank an equal share (``drop_last``), so all ranks take
    the same number of steps and DDP never waits on a rank that ran out of data.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if world_size == 1:
        sampler = DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=seed)
    else:
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed, drop_last=n >= world_size)
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64)


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive chunks of ``order``; the last one may be short."""
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def steps_per_epoch(n_items: int, batch_size: int, world_size: int = 1) -> int:
    per_rank = n_items // world_size if world_size > 1 and n_items >= world_size else n_items
    return max(math.ceil(per_rank / batch_size), 1) if per_rank else 0


def train_step(
    net: nn.Module,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    lr: float,
    grad_clip: float,
    amp: bool,
) -> dict[str, float]:
    """One optimizer step; returns the loss terms as floats.

    net : the module to call (DDP-wrapped in a distributed run); model : the bare model, whose
    ``loss`` names the terms. A non-finite loss skips the update (the weights stay finite) and
    is reported as NaN.
    """
    net.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
        out = net(x, y)
        terms = model.loss(x, out, y)
    loss = terms["loss"]
    optimizer.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    return {k: float(v.detach().float()) for k, v in terms.items()}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, *, batch_size: int,
             device: torch.device, amp: bool = False) -> dict[str, float]:
    """Mean loss terms over ``x`` (weighted by batch size), in eval mode (VAEs use the mean).

    x : torch.Tensor [shape=(n_items, *item_shape)] on any device; moved batch by batch.
    """
    model.eval()
    totals: dict[str, float] = {}
    n = len(x)
    for start in range(0, n, batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        yb = None if y is None else y[start : start + batch_size].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = model(xb, yb)
            terms = model.loss(xb, out, yb)
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v.float()) * len(xb)
    return {k: v / n for k, v in totals.items()} if n else {}


@torch.no_grad()
def encode_items(model: nn.Module, x: torch.Tensor, *, batch_size: int, device: torch.device) -> np.ndarray:
    """Latent codes (the mean for VAEs) of ``x``: [shape=(n_items, *latent_shape)], float32."""
    model.eval()
    out = [model.latent(x[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0,), np.float32)


# --- RNG state, kept to tensors and ints so it loads with weights_only=True ---------------------
def rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    s = state["numpy"]
    np.random.set_state(("MT19937", s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                         s["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
