"""``spf-train lora``: the peft LoRA baseline on the UNet attention layers."""

from spf_train.config import LoraTrainConfig
from spf_train.commands.options import register_training_command


def _run(config):
    from spf_train.baselines import train_lora

    return train_lora(config)


def register(subparsers) -> None:
    register_training_command(subparsers, "lora", "Baseline: LoRA on the UNet attention layers, trained with L_diff.", LoraTrainConfig, _run)
