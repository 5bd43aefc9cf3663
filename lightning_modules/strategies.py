"""A DDP strategy for per-sample work: processes share nothing but the process group."""

from __future__ import annotations

from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry


class IndependentDDPStrategy(DDPStrategy):
    """DDP without the DistributedDataParallel wrapper: no gradient all-reduce.

    For methods whose parameters are per-sample (class inversion optimises each
    process's own images): every process runs its own targets, and the module gathers
    the results itself. Registered as ``ddp_independent`` (processes started like
    ``ddp``) and ``ddp_spawn_independent`` (like ``ddp_spawn``).
    """

    def configure_ddp(self) -> None:
        """Keep the LightningModule unwrapped (nothing to synchronise)."""


for _name, _method in (("ddp_independent", "popen"), ("ddp_spawn_independent", "spawn")):
    if _name not in StrategyRegistry:
        StrategyRegistry.register(
            _name,
            IndependentDDPStrategy,
            description="DDP processes that optimise their own samples (no gradient sync)",
            start_method=_method,
        )
