"""The CLIP model of CLIP-I, CLIP-T and the response-enhancement loss (open_clip).

Layout: an open_clip ``local-dir`` folder, i.e. what the hub repository
``timm/vit_large_patch14_clip_224.openai`` holds: ``open_clip_config.json`` (architecture and
preprocessing) and ``open_clip_model.safetensors``. Another CLIP is chosen by putting its
hub folder there instead: the loader reads the architecture from the config file and the
image transform from its ``preprocess_cfg`` (mean, std, interpolation, resize mode, size),
with open_clip's own defaults (OpenAI's) for what the file leaves out.
Tiny: the same two files for a two-layer CLIP at CLIP's real 224 px input and real
tokenizer, so preprocessing is byte-for-byte the real one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
from spf_bench.zoo.registry import Network, hub_file, register

HUB_ID = "timm/vit_large_patch14_clip_224.openai"
DEFAULT_MODEL = "ViT-L-14"
TINY_SEED = 4321

# OpenAI's normalisation constants, which open_clip's preprocessing uses for these models.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_PREPROCESS = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic", "resize_mode": "shortest"}

TINY_MODEL_CFG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@dataclass
class ClipBundle:
    """An open_clip model with its own image transform and tokenizer."""

    model: Any
    preprocess: Callable
    tokenizer: Callable
    config: dict
    preprocess_cfg: dict = field(default_factory=dict)  # open_clip's PreprocessCfg fields the transform uses

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return self.model.encode_text(self.tokenizer(texts).to(device))


def _real_model_cfg() -> dict:
    import open_clip

    cfg = open_clip.get_model_config(DEFAULT_MODEL)
    cfg["quick_gelu"] = True  # OpenAI's weights were trained with QuickGELU
    return cfg


def _write_config(folder: Path, model_cfg: dict) -> None:
    config = {"model_cfg": model_cfg, "preprocess_cfg": _PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def image_transform(model_cfg: dict, preprocess_cfg: dict | None) -> tuple[Callable, dict]:
    """open_clip's inference transform for a folder's ``preprocess_cfg`` (open_clip merges it
    over its defaults, as its own hub loader does), and the settings it resolved to."""
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

    base = PreprocessCfg(size=model_cfg["vision_cfg"]["image_size"])
    cfg = PreprocessCfg(**merge_preprocess_dict(base, preprocess_cfg or {}))
    return image_transform_v2(cfg, is_train=False), asdict(cfg)


def _build(model_cfg: dict, device: torch.device, dtype: torch.dtype, preprocess_cfg: dict | None = None):
    import open_clip
    from open_clip.model import CLIP

    cfg = dict(model_cfg)
    quick_gelu = cfg.pop("quick_gelu", False)
    with torch.device(device):
        model = CLIP(**cfg, quick_gelu=quick_gelu, cast_dtype=None)
    model = model.to(dtype=dtype).eval()
    preprocess, resolved = image_transform(cfg, preprocess_cfg)
    tokenizer = open_clip.get_tokenizer(DEFAULT_MODEL)
    return model, preprocess, tokenizer, resolved


def write_tiny(folder: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(TINY_SEED)
    model, *_ = _build(TINY_MODEL_CFG, torch.device("cpu"), torch.float32)
    folder.mkdir(parents=True, exist_ok=True)
    _write_config(folder, TINY_MODEL_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> ClipBundle:
    config_path = folder / "open_clip_config.json"
    try:
        config = json.loads(config_path.read_text())
        model_cfg = config["model_cfg"]
        preprocess_cfg = config.get("preprocess_cfg") or {}
        if not isinstance(preprocess_cfg, dict):
            raise ValueError
    except (OSError, ValueError, KeyError):
        raise WeightsCorruptError(f"{config_path} is not an open_clip config with a 'model_cfg' entry "
                                  "(and, optionally, a 'preprocess_cfg' object).") from None
    weights = folder / "open_clip_model.safetensors"
    model, preprocess, tokenizer, resolved = _build(model_cfg, torch.device("cpu"), torch.float32, preprocess_cfg)
    load_into(model, read_state_dict(weights), weights, adopt=True)
    return ClipBundle(model.to(device=device, dtype=dtype).eval(), preprocess, tokenizer, model_cfg, resolved)


def build_random(device: torch.device, dtype: torch.dtype) -> ClipBundle:
    torch.manual_seed(TINY_SEED)
    cfg = _real_model_cfg()
    model, preprocess, tokenizer, resolved = _build(cfg, device, dtype if device.type != "meta" else torch.float32)
    return ClipBundle(model, preprocess, tokenizer, cfg, resolved)


NETWORK = register(Network(
    name="clip",
    summary="CLIP ViT-L-14 (open_clip, OpenAI weights) for CLIP-I, CLIP-T and L_re",
    files=(
        hub_file("open_clip_config.json", HUB_ID),
        hub_file("open_clip_model.safetensors", HUB_ID),
    ),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
))
