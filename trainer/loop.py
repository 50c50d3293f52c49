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

from models.inference.encode import encode_items  # noqa: F401  (one encoder of items for the trainer and the app)
from trainer.distributed import all_finite, average_gradients


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


def kl_scale_at(step: int, *, warmup_steps: int) -> float:
    """KL warm-up factor for optimizer step ``step`` (0-based): ``step / warmup_steps``, then 1.

    Starting at 0 lets the encoder spread its codes before the KL pulls them to the prior
    (models/nets/lionello.py says why the waveform VAEs need it). ``warmup_steps`` is the model
    config's ``kl_warmup_steps``; 0 means the full weight from the first step.
    """
    if warmup_steps <= 0:
        return 1.0
    return min(max(step, 0) / warmup_steps, 1.0)


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """Updates ``optimizer`` has made: Adam's own count, saved and restored with its state.

    The step of the KL warm-up when the caller does not pass one, so that a resumed run
    continues the warm-up where it stopped (a fine-tuning run, with a fresh optimiser, restarts it).
    """
    counts = [int(st["step"]) for st in optimizer.state.values() if "step" in st]
    return max(counts, default=0)


def model_loss(model: nn.Module, x: torch.Tensor, out: Any, y: torch.Tensor | None, *,
               step: int) -> dict[str, torch.Tensor]:
    """``model.loss``, with the KL warm-up factor for models whose config has ``kl_warmup_steps``."""
    warmup = getattr(model.config, "kl_warmup_steps", 0)
    if not warmup:
        return model.loss(x, out, y)
    return model.loss(x, out, y, kl_scale=kl_scale_at(step, warmup_steps=warmup))


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The item indices of ``epoch``, shuffled as a function of ``(seed, epoch)`` only.

    The same on every rank of a distributed run, which then shares each batch (:func:`batches`).
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sampler = DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64)


def batches(order: np.ndarray, batch_size: int, *, rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """This rank's share of each batch of ``batch_size`` consecutive items of ``order``.

    One process: the chunks of ``order``, the last one maybe short. ``world_size`` processes:
    rank ``rank``'s contiguous ``1 / world_size`` of each chunk, so the ranks of one step
    together take the one-process batch (trainer/distributed.py); the last, short chunk is cut
    to a multiple of ``world_size`` (at most ``world_size - 1`` items of an epoch are left out),
    or dropped when it holds fewer items than ranks, so every rank takes as many steps.
    """
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if world_size == 1:
        return chunks
    shares = [(chunk, len(chunk) // world_size) for chunk in chunks]
    return [chunk[rank * k : (rank + 1) * k] for chunk, k in shares if k]


def steps_per_epoch(n_items: int, batch_size: int, world_size: int = 1) -> int:
    """Steps of an epoch: ``len(batches(...))`` of ``n_items`` (0 when fewer items than ranks)."""
    full, rest = divmod(n_items, batch_size)
    return full + (1 if rest >= world_size else 0)


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
    step: int | None = None,
) -> dict[str, float]:
    """One optimizer step on the total ``loss``; returns the loss terms as floats.

    net : the module to call (the model, or a wrapper of it); model : the bare model, whose
    ``loss`` names the terms; step : the 0-based step of the KL warm-up (:func:`model_loss`),
    by default the optimizer's own count. A non-finite loss skips the update (the weights stay
    finite) and is reported as NaN.
    """
    net.train()
    _set_lr(optimizer, lr)
    if step is None:
        step = optimizer_steps(optimizer)
    with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
        out = net(x, y)
        terms = model_loss(model, x, out, y, step=step)
    model.zero_grad(set_to_none=True)
    if _update(terms["loss"], optimizer, scaler, grad_clip=grad_clip):
        scaler.update()
    return {k: float(v.detach().float()) for k, v in terms.items()}


def alternating_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The parameters of the two alternating updates (Lionello & Purwins, section 3.1).

    Returns ``(vae, classification)``: every weight but the classifier's (the VAE objective
    does not reach the classifier), and the classifier's plus the encoder's. The paper updates
    "the model parameters" with each gradient in turn; its cross-entropy gradient must reach
    the encoder, or the classifier could not shape the bottleneck, which is the point of it.
    ``classification`` is empty for a model without a classifier.

    Raises
    ------
    ConfigError
        The model has no bottleneck classifier API (``classifier_parameters``).
    """
    from models.errors import ConfigError

    needed = ("classifier_parameters", "encoder_parameters", "alternating_objectives")
    if not all(hasattr(model, n) for n in needed):
        raise ConfigError(f"train.alternating=true needs a model with a bottleneck classifier; "
                          f"{getattr(model, 'name', type(model).__name__)} has none "
                          "(set train.alternating=false)")
    head = model.classifier_parameters()
    if not head:
        return list(model.parameters()), []
    head_ids = {id(p) for p in head}
    vae = [p for p in model.parameters() if id(p) not in head_ids]
    return vae, [*head, *(p for p in model.encoder_parameters() if id(p) not in head_ids)]


def alternating_step(
    net: nn.Module,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer | None],
    scaler: torch.amp.GradScaler,
    *,
    lrs: tuple[float, float],
    grad_clip: float,
    amp: bool,
    step: int | None = None,
) -> dict[str, float]:
    """One alternating step: the VAE update, then the classification update on a fresh forward.

    optimizers : (VAE optimiser, classification optimiser or None), over the parameter lists
    of :func:`alternating_groups`; lrs : their learning rates. The second forward sees the
    weights the first update moved, as alternating updates do (reusing the first graph would
    also be refused by autograd: the first step changed its weights in place). step : the KL
    warm-up's step, by default the VAE optimiser's count. Returns the terms of the first
    forward (the model at the start of the step), as :func:`train_step`.
    """
    net.train()
    opt_vae, opt_cls = optimizers
    _set_lr(opt_vae, lrs[0])
    if step is None:
        step = optimizer_steps(opt_vae)
    with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
        out = net(x, y)
        terms = model_loss(model, x, out, y, step=step)
        vae, _ = model.alternating_objectives(terms)
    model.zero_grad(set_to_none=True)
    stepped = _update(vae, opt_vae, scaler, grad_clip=grad_clip)
    if opt_cls is not None and "classification" in terms:
        _set_lr(opt_cls, lrs[1])
        with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
            _, ce = model.alternating_objectives(model_loss(model, x, net(x, y), y, step=step))
        model.zero_grad(set_to_none=True)
        stepped = _update(ce, opt_cls, scaler, grad_clip=grad_clip) or stepped
    if stepped:  # one scale per iteration, shared by both updates (torch's AMP recipe)
        scaler.update()
    return {k: float(v.detach().float()) for k, v in terms.items()}


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            *, grad_clip: float) -> bool:
    """Backward, clip the optimiser's own parameters, step; False (no update) on a non-finite loss."""
    if not all_finite(loss):  # on every rank: they skip together
        return False
    scaler.scale(loss).backward()
    average_gradients(p for g in optimizer.param_groups for p in g["params"])  # several processes
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    scaler.step(optimizer)
    return True


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
