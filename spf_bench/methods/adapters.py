"""Low-rank adapters made elsewhere, merged into a pipeline's UNet.

Two on-disk formats are read, each by the library that writes it:
- a diffusers LoRA (``pytorch_lora_weights.safetensors``, as diffusers' LoRA training
  example and ``save_lora_weights`` write it), a file or a folder holding one: loaded with
  ``load_lora_weights``, fused, and the LoRA layers dropped;
- a peft adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``), LoRA or
  AdaLoRA (with its re-allocated ``rank_pattern``): loaded with ``PeftModel.from_pretrained``
  and merged with ``merge_and_unload``.
Merging leaves a plain UNet, so generation runs at the base model's speed.
"""

from __future__ import annotations

from pathlib import Path

from spf_bench.core.errors import SpfError

DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
PEFT_CONFIG_FILE = "adapter_config.json"


def adapter_format(path: Path) -> str:
    """``diffusers`` or ``peft``, from the file names; anything else is refused."""
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        return "diffusers"
    if path.is_dir() and (path / PEFT_CONFIG_FILE).is_file():
        return "peft"
    if path.is_dir() and (path / DIFFUSERS_LORA_FILE).is_file():
        return "diffusers"
    raise SpfError(f"{path} is neither a diffusers LoRA ({DIFFUSERS_LORA_FILE}) nor a peft adapter folder ({PEFT_CONFIG_FILE} + weights).")


def apply_unet_adapter(pipe, path: Path) -> None:
    """Merge the adapter at ``path`` into ``pipe.unet`` in place."""
    path = Path(path)
    kind = adapter_format(path)
    try:
        if kind == "diffusers":
            _merge_diffusers_lora(pipe, path)
        else:
            _merge_peft_adapter(pipe, path)
    except SpfError:
        raise
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SpfError(f"The adapter {path} does not fit this model's UNet ({first}).") from None


def _merge_diffusers_lora(pipe, path: Path) -> None:
    folder, name = (path.parent, path.name) if path.is_file() else (path, DIFFUSERS_LORA_FILE)
    before = _weights(pipe)
    pipe.load_lora_weights(str(folder), weight_name=name, adapter_name="bench")
    pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=1.0)
    pipe.unload_lora_weights()
    # A LoRA whose keys matched nothing loads without complaint and changes nothing;
    # benchmarking that as "lora" would silently score the base model.
    after = _weights(pipe)
    if all(k in after and (before[k] == after[k]).all() for k in before):
        raise SpfError(f"The LoRA {path} changed no weight of the model: its keys do not name this model's layers.")


def _weights(pipe) -> dict:
    return {f"{part}.{k}": v.detach().clone() for part in ("unet", "text_encoder")
            for k, v in getattr(pipe, part).state_dict().items()}


def _merge_peft_adapter(pipe, path: Path) -> None:
    from peft import PeftModel

    wrapped = PeftModel.from_pretrained(pipe.unet, str(path))
    pipe.unet = wrapped.merge_and_unload()
