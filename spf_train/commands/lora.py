"""``spf-train lora``: the peft LoRA baseline on the UNet attention layers."""

from ..config import LoraTrainConfig
from .options import register_training_command


def _run(config):
    from ..baselines import train_lora

    return train_lora(config)


def register(subparsers) -> None:
    register_training_command(subparsers, "lora", "Baseline: LoRA on the UNet attention layers, trained with L_diff.", LoraTrainConfig, _run)
