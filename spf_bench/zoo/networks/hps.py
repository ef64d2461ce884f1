"""HPS v2.1 (Human Preference Score) for the HPSv2 metric.

Layout: ``SPF_WEIGHTS_DIR/hps/HPS_v2.1_compressed.pt`` from the hub repository ``xswu/HPSv2``:
a torch file ``{"state_dict": {...}}`` for the ViT-H-14 CLIP of the ``hpsv2`` package's own
open_clip copy (``hpsv2.src.open_clip``), which is the architecture the checkpoint was trained
in. The model is built from that package's config with no ``pretrained`` tag, so hpsv2 never
tries to download the LAION weights the checkpoint replaces anyway.
Tiny: the same file name and format for a shrunk config of the same architecture, written as
``arch.json`` beside it and registered with hpsv2's open_clip under a name derived from its
content. Input size stays 224 px, so hpsv2's own preprocessing runs unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from spf_bench.core.errors import SpfError, WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
from spf_bench.zoo.registry import Network, WeightFile, register

HUB_ID = "xswu/HPSv2"
CHECKPOINT = "HPS_v2.1_compressed.pt"
ARCH_FILE = "arch.json"
MODEL_NAME = "ViT-H-14"
TINY_SEED = 1618

TINY_MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@dataclass
class HpsBundle:
    """hpsv2's CLIP with its evaluation transform and tokenizer, and the HPS score."""

    model: Any
    preprocess: Callable
    tokenizer: Callable

    @torch.no_grad()
    def score(self, images: Sequence, prompts: Sequence[str]) -> torch.Tensor:
        """HPS of each image for the prompt at the same position, as hpsv2's ``score`` computes it.

        That is the dot product of the model's normalised image and text features (the
        diagonal of ``image @ text.T``), not scaled by the logit scale; under autocast on a GPU,
        as hpsv2 runs it.
        """
        if len(images) != len(prompts):
            raise SpfError(f"HPS needs one prompt per image, got {len(images)} images and {len(prompts)} prompts.")
        param = next(self.model.parameters())
        pixels = torch.stack([self.preprocess(image) for image in images]).to(param.device, param.dtype)
        tokens = self.tokenizer(list(prompts)).to(param.device)
        with torch.autocast(device_type=param.device.type, enabled=param.device.type == "cuda"):
            out = self.model(pixels, tokens)
            return (out["image_features"] * out["text_features"]).sum(dim=-1).float()


def register_arch(model_cfg: dict) -> str:
    """Make ``model_cfg`` known to hpsv2's open_clip and return the name it is known by.

    The name is derived from the config's content, so two different configs never clash
    and registering the same one twice is harmless.
    """
    from hpsv2.src.open_clip import factory

    digest = hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode()).hexdigest()[:12]
    name = f"spf-hps-{digest}"
    # factory rebinds _MODEL_CONFIGS whenever it rescans, so look it up on the module each time.
    factory._MODEL_CONFIGS[name] = json.loads(json.dumps(model_cfg))
    return name


def create(model_name: str, device: torch.device) -> tuple[Any, Callable, Callable]:
    """Model, evaluation transform and tokenizer, with the arguments hpsv2's scorer uses."""
    from hpsv2.src.open_clip import create_model_and_transforms, get_tokenizer

    with torch.device(device):
        model, _, preprocess_val = create_model_and_transforms(
            model_name, None, precision="amp", device=device, jit=False, force_quick_gelu=False,
            force_custom_text=False, force_patch_dropout=False, force_image_size=None,
            pretrained_image=False, image_mean=None, image_std=None, light_augmentation=True,
            aug_cfg={}, output_dict=True, with_score_predictor=False, with_region_predictor=False,
        )
    return model.eval(), preprocess_val, get_tokenizer(model_name)


def _read_arch(folder: Path) -> str:
    path = folder / ARCH_FILE
    if not path.is_file():
        return MODEL_NAME
    try:
        cfg = json.loads(path.read_text())
        if not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            raise KeyError("embed_dim, vision_cfg or text_cfg")
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsCorruptError(f"{path} is not an open_clip model config ({type(exc).__name__}: {exc}).") from None
    return register_arch(cfg)


def write_tiny(folder: Path) -> None:
    torch.manual_seed(TINY_SEED)
    model, _, _ = create(register_arch(TINY_MODEL_CFG), torch.device("cpu"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARCH_FILE).write_text(json.dumps(TINY_MODEL_CFG, indent=2, sort_keys=True) + "\n")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, folder / CHECKPOINT)


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> HpsBundle:
    name = _read_arch(folder)
    weights = folder / CHECKPOINT
    state = read_state_dict(weights, key="state_dict")
    model, preprocess, tokenizer = create(name, torch.device("cpu"))
    load_into(model, state, weights, adopt=True)
    return HpsBundle(model.to(device=device, dtype=dtype).eval(), preprocess, tokenizer)


def build_random(device: torch.device, dtype: torch.dtype) -> HpsBundle:
    torch.manual_seed(TINY_SEED)
    model, preprocess, tokenizer = create(MODEL_NAME, device)
    return HpsBundle(model.to(dtype=dtype).eval(), preprocess, tokenizer)


NETWORK = register(Network(
    name="hps",
    summary="HPS v2.1 (hpsv2's open_clip ViT-H-14 plus the HPS checkpoint) for HPSv2",
    files=(WeightFile(CHECKPOINT, f"hub {HUB_ID}, file {CHECKPOINT}"),),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
    extra_layout=(ARCH_FILE,),
))
