"""A DDP strategy for per-sample work: processes share nothing but the process group."""

from __future__ import annotations

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, Strategy, StrategyRegistry

from inversion.errors import InversionError
from model_inversion.lightning_modules.lightning_internals import ddp_kwargs


class IndependentDDPStrategy(DDPStrategy):
    """DDP without the DistributedDataParallel wrapper: no gradient all-reduce.

    For methods whose parameters are per-sample (class inversion optimises each
    process's own images): every process runs its own targets, and the module gathers
    the results itself. Registered as ``ddp_independent`` (processes started like
    ``ddp``) and ``ddp_spawn_independent`` (like ``ddp_spawn``).
    """

    def configure_ddp(self) -> None:
        """Keep the LightningModule unwrapped (nothing to synchronise)."""

    def teardown(self) -> None:
        """Tear down as DDP does, then close the process group in this process.

        Waiting for every process before destroying the group lets gloo's threads stop
        before the interpreter exits (spawned CPU processes otherwise abort at exit now
        and then with "terminate called without an active exception").
        """
        super().teardown()
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def require_unused_parameter_search(strategy: Strategy, module_name: str, why: str) -> None:
    """Refuse a DistributedDataParallel wrapper that would not look for unused parameters.

    Applies to every DDP strategy that wraps the module (also with a single device, where
    torch's own error comes only at the first backward pass) and not to ``ddp_independent``.

    Raises:
        InversionError: With the strategy name to use instead.
    """
    if not isinstance(strategy, DDPStrategy) or isinstance(strategy, IndependentDDPStrategy):
        return
    if ddp_kwargs(strategy).get("find_unused_parameters"):
        return
    raise InversionError(
        f"{module_name}: {why}, so under DDP some parameters get no gradient in a step: use "
        "--trainer.strategy ddp_find_unused_parameters_true (or "
        "ddp_spawn_find_unused_parameters_true)."
    )


def refuse_wrapping_ddp(strategy: Strategy, module_name: str) -> None:
    """Refuse DDP strategies that wrap the module, for per-sample optimisation.

    Raises:
        InversionError: Pointing to ``ddp_independent``.
    """
    if isinstance(strategy, DDPStrategy) and not isinstance(strategy, IndependentDDPStrategy):
        raise InversionError(
            f"Under DDP, {module_name} optimises each process's own images (nothing to "
            "synchronise): use --trainer.strategy ddp_independent (or ddp_spawn_independent)."
        )


for _name, _method in (("ddp_independent", "popen"), ("ddp_spawn_independent", "spawn")):
    if _name not in StrategyRegistry:
        StrategyRegistry.register(
            _name,
            IndependentDDPStrategy,
            description="DDP processes that optimise their own samples (no gradient sync)",
            start_method=_method,
        )
