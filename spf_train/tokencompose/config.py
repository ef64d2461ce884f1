"""TokenCompose's settings: the shared training fields plus its grounding losses.

Defaults are the authors' SD1.4 training script (``train/scripts/train.sh`` of
github.com/mlpc-ucsd/TokenCompose): lr 5e-6 constant, batch 1 x 4 accumulation steps,
24,000 steps, checkpoints every 8,000, gradient clipping at 1, ``token_loss_scale`` 1e-3,
``pixel_loss_scale`` 5e-5, grounding on ``mid_8`` and ``up_16/32/64``. Kept apart from
:mod:`spf_train.tokencompose.train` so the command line is built without importing torch models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spf_bench.core.errors import SpfError

from spf_train.config import LrScheduler, TrainConfig

PLACES = ("down", "mid", "up")


@dataclass
class TokenComposeConfig(TrainConfig):
    """TokenCompose's settings; defaults from the authors' SD1.4 training script."""

    # Fields redefined for a new default keep the documentation of TrainConfig's field.
    learning_rate: float = 5e-6
    train_batch_size: int = 1
    gradient_accumulation_steps: int = 4
    max_steps: int = 24000
    checkpoint_every: int = 8000
    adam_weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    lr_scheduler: LrScheduler = "constant"
    token_loss_weight: float = 1e-3
    """Weight lambda_token of the token-level grounding loss (the authors' token_loss_scale)."""
    pixel_loss_weight: float = 5e-5
    """Weight lambda_pixel of the pixel-level grounding loss (the authors' pixel_loss_scale)."""
    grounding_places: str = "mid,up"
    """Comma-separated UNet places (down, mid, up) whose cross-attention layers carry the grounding losses.

    The paper's mid_8 + up_16/32/64 are every mid and up layer of SD1.x."""
    sam_model: str = "tiny"
    """SAM for rows that give grounding points instead of masks: tiny, random or pretrained."""
    missing_grounding: Literal["error", "layout-sam"] = "error"
    """(choice) What a row without masks or points does: error stops the run naming it, layout-sam grounds it with SAM.

    ``layout-sam`` grounds the subject and the target attribute at portrait-layout points
    with SAM (see spf_train.tokencompose.data), for sets made without grounding."""

    def places(self) -> tuple[str, ...]:
        places = tuple(p.strip() for p in self.grounding_places.split(",") if p.strip())
        unknown = [p for p in places if p not in PLACES]
        if not places or unknown:
            raise SpfError(f"grounding_places must list some of {', '.join(PLACES)}, not '{self.grounding_places}'.")
        return places
