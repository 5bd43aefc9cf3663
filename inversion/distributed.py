"""Where this process stands in a process group (torch-only; no Lightning)."""

from __future__ import annotations

import torch.distributed as dist


def world_and_rank() -> tuple[int, int]:
    """World size and this process's rank (1 and 0 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0
