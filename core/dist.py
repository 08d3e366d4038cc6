"""The processes of a multi-process run (torchrun, accelerate launch, SLURM with several tasks).

Without a launcher every function is the one-process case: rank 0 of 1, barriers do nothing,
gathering returns [obj]. With one, `start()` joins the process group the launcher's environment
describes (through accelerate's PartialState: gloo on CPUs, NCCL on GPUs), so evaluation can
shard its work and rank 0 alone writes files, before or after a trainer is built.
"""

from __future__ import annotations

import os
from typing import Any


def env_world() -> int:
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def start() -> None:
    """Join the launcher's process group (a no-op in one process, or when already joined). A
    submitit job with several tasks (SLURM's `tasks_per_node`, or submitit's local executor)
    describes its ranks in SLURM's or submitit's own variables: they are exported as torch's
    (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK) first."""
    if "WORLD_SIZE" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        if submitit.JobEnvironment().num_tasks > 1:
            # every task sees all of the node's GPUs; accelerate picks cuda:LOCAL_RANK
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if env_world() > 1 and not initialized():
        from accelerate import PartialState

        PartialState()


def initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    if initialized():
        import torch.distributed as dist

        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def world() -> int:
    if initialized():
        import torch.distributed as dist

        return dist.get_world_size()
    return 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world() > 1:
        import torch.distributed as dist

        dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (picklable objects)."""
    if world() == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if world() == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
