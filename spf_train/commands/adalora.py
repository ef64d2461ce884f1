"""``spf-train adalora``: the peft AdaLoRA baseline (ranks re-allocated every step)."""

from spf_train.config import AdaLoraTrainConfig
from spf_train.commands.options import register_training_command


def _run(config):
    from spf_train.baselines import train_adalora

    return train_adalora(config)


def register(subparsers) -> None:
    register_training_command(subparsers, "adalora", "Baseline: AdaLoRA on the UNet attention layers, trained with L_diff.", AdaLoraTrainConfig, _run)
