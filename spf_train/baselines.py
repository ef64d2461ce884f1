"""The LoRA and AdaLoRA baselines (Tab. 1): peft adapters on the UNet attention layers,
trained with L_diff on the same data as SPF-Portrait.

Outputs (docs/formats.md):
- LoRA: ``pytorch_lora_weights.safetensors`` written by
  ``StableDiffusionPipeline.save_lora_weights`` (diffusers key names, the LoRA config as
  metadata), loadable with ``pipe.load_lora_weights(folder)``;
- AdaLoRA: a peft adapter folder (``adapter_config.json`` with the final ``rank_pattern``,
  ``adapter_model.safetensors``), loadable with ``PeftModel.from_pretrained(unet, folder)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from spf_train.config import AdaLoraTrainConfig, LoraTrainConfig
from spf_train.diffusion_task import DiffusionTask
from spf_train.loop import LossHook, LossTerm, total_steps, train
from spf_train.trainable import add_adalora, add_lora


def _targets(config: LoraTrainConfig) -> list[str]:
    return [m.strip() for m in config.target_modules.split(",") if m.strip()]


class LoraTask(DiffusionTask):
    config: LoraTrainConfig

    def select_trainable(self) -> list[torch.nn.Parameter]:
        return add_lora(self.unet, self.config.rank, self.config.alpha, _targets(self.config))

    def save_output(self, folder: Path, model) -> None:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
        metadata = model.peft_config["default"].to_dict()
        StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers, safe_serialization=True,
                                                  unet_lora_adapter_metadata=metadata)


def orthogonality_penalty(model) -> torch.Tensor:
    """AdaLoRA's regulariser sum ||P^T P - I||_F + ||Q Q^T - I||_F, averaged over matrices.

    peft adds it only to outputs that carry a ``.loss`` (transformers models); a UNet's
    output has none, so the baseline adds it here as its own logged term.
    """
    total, count = None, 0
    for name, param in model.named_parameters():
        if not param.requires_grad or not ("lora_A" in name or "lora_B" in name):
            continue
        gram = param @ param.T if "lora_A" in name else param.T @ param
        eye = torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)
        term = torch.linalg.matrix_norm(gram - eye, ord="fro")
        total = term if total is None else total + term
        count += 1
    return total / max(count, 1)


class RankAllocatorState:
    """AdaLoRA's sensitivity averages and current rank pattern, so that a resumed run
    re-allocates ranks exactly as the uninterrupted run would (they live outside the
    module's weights, hence outside accelerate's model checkpoint)."""

    FIELDS = ("ipt", "exp_avg_ipt", "exp_avg_unc")

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def state_dict(self) -> dict:
        allocator = self.peft_model.base_model.rankallocator
        state = {name: dict(getattr(allocator, name)) for name in self.FIELDS}
        state["rank_pattern"] = self.peft_model.peft_config["default"].rank_pattern
        return state

    def load_state_dict(self, state: dict) -> None:
        allocator = self.peft_model.base_model.rankallocator
        for name in self.FIELDS:
            setattr(allocator, name, dict(state[name]))
        self.peft_model.peft_config["default"].rank_pattern = state["rank_pattern"]


class AdaLoraTask(DiffusionTask):
    """AdaLoRA: ranks re-allocated after every optimizer step via ``update_and_allocate``."""

    config: AdaLoraTrainConfig

    def select_trainable(self) -> list[torch.nn.Parameter]:
        # AdaLoRA's budget schedule needs the run's length up front (the dataset is set by now)
        steps = total_steps(self.config, len(self.dataset))
        self.peft_model = add_adalora(self.unet, self.config, steps)
        return [p for p in self.peft_model.parameters() if p.requires_grad]

    def trainable_module(self):
        return self.peft_model

    def compute_losses(self, batch, generator, step):
        terms, context = super().compute_losses(batch, generator, step)
        if self.config.orth_reg_weight > 0:
            terms["orth"] = LossTerm(orthogonality_penalty(self.peft_model), self.config.orth_reg_weight)
        return terms, context

    def after_optimizer_step(self, step: int) -> None:
        config = self.peft_model.peft_config["default"]
        if step == config.total_step - config.tfinal and not self.peft_model.base_model.rankallocator.ipt:
            # The final allocation ranks the triplets by the importance measured at the steps
            # before it; a run of one step has measured none (peft would fail on the missing
            # scores), so it keeps the initial ranks.
            return
        self.peft_model.base_model.update_and_allocate(step)

    def checkpoint_objects(self) -> list:
        return [RankAllocatorState(self.peft_model)]

    def rank_pattern(self) -> dict | None:
        return self.peft_model.peft_config["default"].rank_pattern

    def save_output(self, folder: Path, model) -> None:
        with warnings.catch_warnings():
            # The allocator may prune a module to rank 0, which leaves zero-sized lora_A /
            # lora_B tensors; peft reads those as unsharded distributed weights and warns
            # about DeepSpeed. Here they are the allocation itself, and reload as rank 0.
            warnings.filterwarnings("ignore", message=r".*LoRA tensor\(s\) have invalid shape")
            model.save_pretrained(str(folder), safe_serialization=True)


def train_lora(config: LoraTrainConfig, pipe=None, dataset=None, hooks: tuple[LossHook, ...] = (), report=print) -> Path:
    return train(LoraTask(config, pipe=pipe, dataset=dataset, report=report), hooks=hooks, report=report)


def train_adalora(config: AdaLoraTrainConfig, pipe=None, dataset=None, hooks: tuple[LossHook, ...] = (), report=print) -> Path:
    return train(AdaLoraTask(config, pipe=pipe, dataset=dataset, report=report), hooks=hooks, report=report)
