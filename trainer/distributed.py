"""Several processes for one run (``torchrun``): the few collectives the training loop needs.

The rule: N processes with ``train.batch_size = B`` take the same steps as one process with
``B``. Every rank computes the one-process order of the epoch and its batches of B items, and
takes its own contiguous ``B / N`` of each (:func:`trainer.loop.batches`); gradients are averaged over
the ranks (:func:`average_gradients`), so each update is the one-process update up to the
order of float sums. The schedule (``epochs x steps_per_epoch``) is then the same for any N.

Gradients are all-reduced by hand rather than by DistributedDataParallel: DDP's reducer
expects one backward per forward over every parameter the forward used, and Lionello's
alternating updates make two backward passes over two parameter groups of one forward graph
each step; one flat all-reduce after each backward fits both kinds of step and is exact.
(Gradient bucketing overlapped with backward, which DDP adds, matters little at these sizes.)

Every function here is a no-op (or the identity) in a one-process run, so the loop calls them
unconditionally. Rank 0 alone writes files; the others wait at :func:`barrier`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from models.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class World:
    """This process's place in the launch: ``rank`` of ``size`` (``local_rank`` on its machine)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0


def world_from_env() -> World:
    """The launch from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process otherwise."""
    return World(rank=int(os.environ.get("RANK", "0")), size=int(os.environ.get("WORLD_SIZE", "1")),
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def active() -> bool:
    """Whether a process group of more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


#: how long a rank waits in one collective: the others wait for rank 0 to compute the features
#: of the whole dataset before their first step (torch's default, 10-30 min, is too short for that)
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


def init(device: str, local_rank: int) -> None:
    """Join the process group: NCCL on CUDA (one GPU per local rank), gloo on the CPU."""
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Items each rank takes per step: ``batch_size / world_size``.

    Raises
    ------
    ConfigError
        ``world_size`` does not divide ``batch_size`` (the ranks' shares would differ, and
        averaging their gradients would weight items unequally).
    """
    if batch_size % world_size:
        raise ConfigError(f"train.batch_size={batch_size} is not a multiple of the {world_size} processes; "
                          f"the batch is shared among them: set train.batch_size to a multiple of {world_size} "
                          f"(e.g. {max(batch_size // world_size, 1) * world_size})")
    return batch_size // world_size


def broadcast_model(model: torch.nn.Module) -> None:
    """Rank 0's weights and buffers on every rank (ranks seed differently, so they init differently)."""
    if not active():
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks: one all-reduce of all of them, flattened.

    Parameters without a gradient are skipped; which ones have none is the same on every rank
    (the same model, the same step).
    """
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_finite(loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on every rank: all must skip a step together, or the
    gradient all-reduce of the ranks that did not skip would wait forever."""
    finite = bool(torch.isfinite(loss.detach()).all())
    if not active():
        return finite
    flag = torch.tensor([0.0 if finite else 1.0], device=loss.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return not bool(flag.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on any rank (a stop asked of one rank stops them all at the same step)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_terms(terms: dict[str, float], device: torch.device) -> dict[str, float]:
    """Loss terms averaged over the ranks: the one-process terms of the whole batch (equal shares,
    per-item mean losses). Every rank has the same keys (the same model)."""
    if not active() or not terms:
        return terms
    keys = list(terms)
    t = torch.tensor([terms[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a small picklable object: a flag, a dict of floats)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_rank0(obj: Any) -> list[Any] | None:
    """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere); ``[obj]`` in one process."""
    if not active():
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out
