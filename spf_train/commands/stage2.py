"""``spf-train stage2``: dual-path contrastive learning with SFCM (Sec. 3.2-3.4)."""

from spf_train.config import Stage2Config
from spf_train.commands.options import register_training_command


def _run(config):
    from spf_train.stage2 import train_stage2

    return train_stage2(config)


def register(subparsers) -> None:
    register_training_command(subparsers, "stage2", "Stage 2: dual-path training with L_attn, L_unet, L_re and the SFCM.", Stage2Config, _run)
