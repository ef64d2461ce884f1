"""``spf-train stage1``: full-UNet fine-tuning with L_diff (Eq. 1)."""

from spf_train.config import Stage1Config
from spf_train.commands.options import register_training_command


def _run(config):
    from spf_train.stage1 import train_stage1

    return train_stage1(config)


def register(subparsers) -> None:
    register_training_command(subparsers, "stage1", "Stage 1: fine-tune the whole UNet with L_diff on the full caption.", Stage1Config, _run)
