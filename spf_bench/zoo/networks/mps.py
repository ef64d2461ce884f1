"""MPS (Multi-dimensional Preference Score, Zhang et al., CVPR 2024) for the MPS metric.

The model is a CLIP-H (Hugging Face ``CLIPModel`` with LAION's
``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` configuration) followed by a small *condition
transformer*: the image's patch tokens attend to the prompt's tokens, with the prompt tokens
that do not relate to the preference condition ("overall": light, colour, clarity, ...)
masked out; the first output token, compared with the prompt's pooled embedding, gives the
score. The architecture is written here so that the released overall checkpoint's state dict
(``model.*`` for CLIP, ``cross_model.layers.N.{0,1}.fn.*`` for the condition transformer)
loads into it unchanged.

Layout under ``SPF_WEIGHTS_DIR/mps/``:
- ``mps_overall.safetensors``: made once from the released ``MPS_overall_checkpoint.pth`` by
  :func:`convert_mps_checkpoint` (``spf-bench convert-weights --network mps``). The release is
  a whole pickled model object, which only full unpickling can read, so it is never loaded
  at run time.
- ``clip-h/``: the CLIP-H ``config.json``, ``preprocessor_config.json`` and tokenizer files of
  the hub repository ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``, which MPS uses unchanged.
Tiny: the same files for a toy CLIP and condition transformer (sizes in ``arch.json``), with
the real CLIP tokenizer and the real 224 px preprocessing.

The model itself is in :mod:`.mps_model`, the conversion of the release in :mod:`.mps_convert`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from spf_bench.core.errors import SpfError, WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
# convert_mps_checkpoint stays reachable as mps.convert_mps_checkpoint, where the weights command calls it
from spf_bench.zoo.networks.mps_convert import RELEASE_FILE, RELEASE_URL, WEIGHTS, convert_mps_checkpoint  # noqa: F401
from spf_bench.zoo.networks.mps_model import TINY_ARCH, ConditionArch, MpsModel
from spf_bench.zoo.registry import Network, WeightFile, register
from spf_bench.zoo.tokenizer import write_clip_tokenizer

CLIP_HUB_ID = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
CLIP_DIR = "clip-h"
ARCH_FILE = "arch.json"
TINY_SEED = 3141

# The condition text of the released model's only condition, as its authors evaluate it.
CONDITIONS = {
    "overall": "light, color, clarity, tone, style, ambiance, artistry, shape, face, hair, hands, "
               "limbs, structure, instance, texture, quantity, attributes, position, number, "
               "location, word, things.",
}

# LAION's CLIP-H configuration (the `random` source and the check of a converted file).
CLIP_H_CONFIG = {
    "projection_dim": 1024,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
        "num_hidden_layers": 24, "max_position_embeddings": 77, "vocab_size": 49408,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "projection_dim": 1024,
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    },
    "vision_config": {
        "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16,
        "num_hidden_layers": 32, "patch_size": 14, "image_size": 224, "hidden_act": "gelu",
        "layer_norm_eps": 1e-5, "projection_dim": 1024,
    },
}
TINY_CLIP_CONFIG = {
    "projection_dim": 32,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
        "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "gelu",
        "layer_norm_eps": 1e-5, "projection_dim": 32,
        "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407,
    },
    "vision_config": {
        "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
        "patch_size": 14, "image_size": 224, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
        "projection_dim": 32,
    },
}
# CLIP's own preprocessing (shortest side to 224, bicubic, centre crop, OpenAI statistics).
PREPROCESSOR_CONFIG = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


@dataclass
class MpsBundle:
    """The MPS model with CLIP's image processor and tokenizer."""

    model: MpsModel
    image_processor: Any
    tokenizer: Any

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts), max_length=self.tokenizer.model_max_length, padding="max_length",
                              truncation=True, return_tensors="pt").input_ids

    @torch.no_grad()
    def score(self, images: Sequence, prompts: Sequence[str], condition: str = "overall") -> torch.Tensor:
        if condition not in CONDITIONS:
            raise SpfError(f"Unknown MPS condition '{condition}'; the released model knows only: {', '.join(CONDITIONS)}.")
        if len(images) != len(prompts):
            raise SpfError(f"MPS needs one prompt per image, got {len(images)} images and {len(prompts)} prompts.")
        param = next(self.model.parameters())
        rgb = [image.convert("RGB") for image in images]
        pixels = self.image_processor(rgb, return_tensors="pt")["pixel_values"].to(param.device, param.dtype)
        input_ids = self.tokenize(prompts).to(param.device)
        condition_ids = self.tokenize([CONDITIONS[condition]] * len(prompts)).to(param.device)
        return self.model(pixels, input_ids, condition_ids).float()


# ----------------------------------------------------------------------------- building, loading

def _clip_config(data: dict):
    from transformers import CLIPConfig

    return CLIPConfig(**json.loads(json.dumps(data)))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_tiny(folder: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(TINY_SEED)
    model = MpsModel(_clip_config(TINY_CLIP_CONFIG), TINY_ARCH)
    clip_dir = folder / CLIP_DIR
    write_clip_tokenizer(clip_dir)
    # The config is written from the plain dict, not by transformers, whose output carries
    # its version and so would differ between library releases.
    _write_json(clip_dir / "config.json", {"model_type": "clip", **TINY_CLIP_CONFIG})
    _write_json(clip_dir / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    _write_json(folder / ARCH_FILE, asdict(TINY_ARCH))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS))


def _load_clip_parts(clip_dir: Path):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPTokenizer

    try:
        config = CLIPConfig.from_pretrained(str(clip_dir), local_files_only=True)
        processor = CLIPImageProcessorPil.from_pretrained(str(clip_dir), local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(str(clip_dir), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        line = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise WeightsCorruptError(f"The CLIP-H folder {clip_dir} cannot be read as a CLIP config, image processor and tokenizer ({line}).") from None
    return config, processor, tokenizer


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> MpsBundle:
    arch_path = folder / ARCH_FILE
    arch = ConditionArch.from_json(arch_path) if arch_path.is_file() else ConditionArch()
    config, processor, tokenizer = _load_clip_parts(folder / CLIP_DIR)
    weights = folder / WEIGHTS
    state = read_state_dict(weights)
    model = MpsModel(config, arch)
    load_into(model, state, weights, adopt=True)
    return MpsBundle(model.to(device=device, dtype=dtype).eval(), processor, tokenizer)


def build_random(device: torch.device, dtype: torch.dtype) -> MpsBundle:
    from transformers import CLIPImageProcessorPil, CLIPTokenizer

    torch.manual_seed(TINY_SEED)
    with torch.device(device):
        model = MpsModel(_clip_config(CLIP_H_CONFIG), ConditionArch())
    with tempfile.TemporaryDirectory(prefix="spf-tok-") as tok_dir:
        write_clip_tokenizer(Path(tok_dir))
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    processor = CLIPImageProcessorPil(**{k: v for k, v in PREPROCESSOR_CONFIG.items() if k != "image_processor_type"})
    return MpsBundle(model.to(dtype=dtype).eval(), processor, tokenizer)


_CLIP_FILES = ("config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer_config.json")

NETWORK = register(Network(
    name="mps",
    summary="MPS overall preference model (CLIP-H plus condition transformer) for MPS",
    files=(
        WeightFile(WEIGHTS, f"{RELEASE_FILE} from {RELEASE_URL} (github.com/Kwai-Kolors/MPS), converted once "
                            "with 'spf-bench convert-weights --network mps --src FILE --trust-pickle'"),
        *(WeightFile(f"{CLIP_DIR}/{name}", f"hub {CLIP_HUB_ID}, file {name}") for name in _CLIP_FILES),
    ),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
    extra_layout=(ARCH_FILE,),
))
