"""Stage 1: naive fine-tuning of the whole UNet with L_diff on the full caption (Eq. 1).

Paper setting (the config's defaults): lr 1e-5, AdamW (0.9, 0.999, wd 0.01), 2 epochs; the
output folder is a diffusers pipeline folder with ``spf_config.json``.
"""

from __future__ import annotations

from pathlib import Path

from spf_train.config import Stage1Config
from spf_train.diffusion_task import DiffusionTask
from spf_train.loop import LossHook, train


class Stage1Task(DiffusionTask):
    """Every UNet weight trains (the :class:`DiffusionTask` default)."""


def train_stage1(config: Stage1Config, pipe=None, dataset=None, hooks: tuple[LossHook, ...] = (), report=print) -> Path:
    return train(Stage1Task(config, pipe=pipe, dataset=dataset, report=report), hooks=hooks, report=report)
