"""What an evaluation is asked to do: :class:`EvalOptions`, everything that changes a number."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from spf_bench.core.errors import SpfError
from spf_bench.metrics import registry

SAM_POINTS = 16  # the SAM grid per side on weights without a protocol default of their own


@dataclass(frozen=True)
class EvalOptions:
    """Everything that changes a number; all of it goes into the records."""

    metrics: tuple[str, ...] = field(default_factory=registry.default_metrics)
    weights: str = "tiny"
    device: str = "cpu"
    batch_size: int = 8
    n_bootstrap: int = 1000
    fid_bootstrap: int = 100  # a set-level metric (FID, KID) is recomputed per resample: fewer resamples
    seed: int = 0
    clip_t_caption: str = "target"  # (choice) "target": c_t; "full": c_b ⊕ c_t
    sam_points_per_side: int | None = None  # None: the weight source's protocol default (sam_points())
    use_cache: bool = True
    cache_customized: bool = True  # also cache customized images' features: reruns resume
    world_metrics: bool = True  # add the metrics of these weights alone (the synthetic world's) to the chosen ones

    def resolved(self) -> EvalOptions:
        """These options with the metrics a run really scores (the world's join under synth)."""
        self.check()
        return replace(self, metrics=registry.resolve(self.metrics, self.weights, self.world_metrics))

    def sam_points(self) -> int:
        """Seg-Cons's SAM grid per side: the one given, else the protocol's for these weights,
        so ``spf-bench evaluate`` and ``spf-bench run`` score the same images alike."""
        if self.sam_points_per_side is not None:
            return self.sam_points_per_side
        from spf_bench.generation.protocol import eval_options_for

        return eval_options_for(self.weights).get("sam_points_per_side", SAM_POINTS)

    def check(self) -> None:
        registry.resolve(self.metrics, self.weights, auto=False)  # unknown or misplaced metrics: one sentence
        if self.clip_t_caption not in ("target", "full"):
            raise SpfError(f"CLIP-T caption must be 'target' or 'full', not '{self.clip_t_caption}'.")
        if self.batch_size < 1 or self.n_bootstrap < 1 or self.fid_bootstrap < 1:
            raise SpfError("Batch size and bootstrap resample counts must be at least 1.")
        if self.sam_points_per_side is not None and self.sam_points_per_side < 1:
            raise SpfError(f"The SAM grid needs at least one point per side, not {self.sam_points_per_side}.")
