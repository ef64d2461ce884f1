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
"""

from __future__ import annotations

import json
import pickle
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spf_bench.core.atomic import atomic_path
from spf_bench.core.errors import SpfError, WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
from spf_bench.zoo.registry import Network, WeightFile, register
from spf_bench.zoo.tokenizer import write_clip_tokenizer

CLIP_HUB_ID = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
WEIGHTS = "mps_overall.safetensors"
CLIP_DIR = "clip-h"
ARCH_FILE = "arch.json"
RELEASE_FILE = "MPS_overall_checkpoint.pth"
RELEASE_URL = "https://drive.google.com/file/d/17qrK_aJkVNM75ZEvMEePpLj6L867MLkN/view"
TINY_SEED = 3141

# The condition text of the released model's only condition, as its authors evaluate it.
CONDITIONS = {
    "overall": "light, color, clarity, tone, style, ambiance, artistry, shape, face, hair, hands, "
               "limbs, structure, instance, texture, quantity, attributes, position, number, "
               "location, word, things.",
}
# Prompt tokens whose normalised similarity to the condition is at most this are hidden from
# the image tokens; the value of the authors' evaluation scripts.
MASK_THRESHOLD = 0.3

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


@dataclass(frozen=True)
class ConditionArch:
    """Sizes of the condition transformer; the defaults are the released model's."""

    dim: int = 1024  # CLIP's projection width: it reads projected tokens
    layer_num: int = 4
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 4

    @classmethod
    def from_json(cls, path: Path) -> "ConditionArch":
        try:
            data = json.loads(path.read_text())
            unknown = sorted(set(data) - {f.name for f in fields(cls)})
            if unknown:
                raise KeyError(unknown[0])
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsCorruptError(f"{path} is not an MPS condition-transformer description ({type(exc).__name__}: {exc}).") from None


TINY_ARCH = ConditionArch(dim=32, layer_num=2, heads=2, dim_head=16, ff_mult=2)


# ----------------------------------------------------------------------------- architecture

class LayerNormNoBias(nn.Module):
    """Layer norm with a learnt gain and a fixed zero bias.

    The bias is a (persistent) buffer rather than absent because the released state dict
    stores it as ``norm.bias``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.register_buffer("bias", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias)


class SwiGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=-1)
        return F.silu(gate) * value


class Residual(nn.Module):
    """``fn(x) + x``; a wrapper module because the state-dict keys go through ``.fn``."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        return self.fn(x, *args) + x


class RotaryFrequencies(nn.Module):
    """Rotary position angles; ``inv_freq`` is stored in the checkpoint, so it is a buffer."""

    def __init__(self, dim_head: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim_head, 2).float() / dim_head)))

    def forward(self, length: int) -> torch.Tensor:
        positions = torch.arange(length, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        angles = torch.outer(positions, self.inv_freq)
        return torch.cat((angles, angles), dim=-1)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return x * angles.cos() + torch.cat((-second, first), dim=-1) * angles.sin()


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, _ = x.shape
    return x.view(batch, length, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # Multi-query attention: many query heads (b, h, i, d) share one key/value head (b, j, d).
    logits = torch.einsum("bhid,bjd->bhij", q, k)
    if bias is not None:
        logits = logits + bias
    return torch.einsum("bhij,bjd->bhid", logits.softmax(dim=-1), v)


class ConditionCrossAttention(nn.Module):
    """Image tokens attend to prompt tokens (masked by the condition), plus a parallel SwiGLU
    feed-forward of the image tokens."""

    def __init__(self, arch: ConditionArch):
        super().__init__()
        inner = arch.heads * arch.dim_head
        ff_inner = arch.ff_mult * arch.dim
        self.heads = arch.heads
        self.scale = arch.dim_head ** -0.5
        self.norm = LayerNormNoBias(arch.dim)
        self.context_norm = nn.Identity()
        self.to_q = nn.Linear(arch.dim, inner, bias=False)
        self.to_kv = nn.Linear(arch.dim, arch.dim_head * 2, bias=False)
        self.to_out = nn.Linear(inner, arch.dim, bias=False)
        self.ff = nn.Sequential(nn.Linear(arch.dim, ff_inner * 2, bias=False), SwiGLU(), nn.Linear(ff_inner, arch.dim, bias=False))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        q = _split_heads(self.to_q(x), self.heads) * self.scale
        k, v = self.to_kv(self.context_norm(context)).chunk(2, dim=-1)
        out = _attend(q, k, v, mask.unsqueeze(1))
        return self.to_out(_merge_heads(out)) + self.ff(x)


class ParallelSelfAttention(nn.Module):
    """Self-attention with rotary positions and a SwiGLU feed-forward computed side by side
    from one fused projection."""

    def __init__(self, arch: ConditionArch):
        super().__init__()
        ff_inner = arch.ff_mult * arch.dim
        self.heads = arch.heads
        self.scale = arch.dim_head ** -0.5
        self.split_sizes = (arch.heads * arch.dim_head, arch.dim_head, arch.dim_head, ff_inner * 2)
        self.norm = LayerNormNoBias(arch.dim)
        self.rotary_emb = RotaryFrequencies(arch.dim_head)
        self.fused_attn_ff_proj = nn.Linear(arch.dim, sum(self.split_sizes), bias=False)
        self.attn_out = nn.Linear(arch.heads * arch.dim_head, arch.dim, bias=False)
        self.ff_out = nn.Sequential(SwiGLU(), nn.Linear(ff_inner, arch.dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        q, k, v, ff = self.fused_attn_ff_proj(x).split(self.split_sizes, dim=-1)
        angles = self.rotary_emb(x.shape[1])
        q = _rotate(_split_heads(q, self.heads), angles) * self.scale
        k = _rotate(k, angles)
        out = _attend(q, k, v, None)
        return self.attn_out(_merge_heads(out)) + self.ff_out(ff)


class ConditionTransformer(nn.Module):
    def __init__(self, arch: ConditionArch):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Residual(ConditionCrossAttention(arch)), Residual(ParallelSelfAttention(arch))])
            for _ in range(arch.layer_num)
        )

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = image_tokens
        for cross, self_block in self.layers:
            x = self_block(cross(x, text_tokens, mask))
        return x


class MpsModel(nn.Module):
    """CLIP (``model``) plus the condition transformer (``cross_model``), as in the release."""

    def __init__(self, clip_config, arch: ConditionArch):
        super().__init__()
        from transformers import CLIPModel

        self.model = CLIPModel(clip_config)
        self.cross_model = ConditionTransformer(arch)

    def text_tokens(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected features of every prompt token, and of the pooled (end) token."""
        out = self.model.text_model(input_ids=input_ids)
        project = self.model.text_projection
        return project(out.last_hidden_state), project(out.pooler_output)

    def image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # Every token of the last layer, projected without CLIP's post-layernorm: the
        # condition transformer was trained on exactly these.
        hidden = self.model.vision_model(pixel_values=pixel_values).last_hidden_state
        return self.model.visual_projection(hidden)

    def condition_mask(self, prompt_tokens: torch.Tensor, condition_tokens: torch.Tensor) -> torch.Tensor:
        """Additive mask (b, 1, prompt length): 0 for prompt tokens related to the condition."""
        similarity = torch.einsum("bid,bjd->bji", prompt_tokens, condition_tokens).amax(dim=1, keepdim=True)
        # Normalised per sample; the authors normalise by the batch maximum but score one image
        # at a time, which is the same thing.
        similarity = similarity / similarity.amax(dim=(1, 2), keepdim=True)
        zero = torch.zeros((), dtype=prompt_tokens.dtype, device=prompt_tokens.device)
        return torch.where(similarity > MASK_THRESHOLD, zero, torch.full_like(zero, float("-inf")))

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, condition_ids: torch.Tensor) -> torch.Tensor:
        """MPS of each image for the prompt at the same position under the condition."""
        prompt_tokens, prompt_pooled = self.text_tokens(input_ids)
        condition_tokens, _ = self.text_tokens(condition_ids)
        image = self.image_tokens(pixel_values)
        mask = self.condition_mask(prompt_tokens, condition_tokens).expand(-1, image.shape[1], -1)
        image_feature = self.cross_model(image, prompt_tokens, mask)[:, 0]
        image_feature = image_feature / image_feature.norm(dim=-1, keepdim=True)
        text_feature = prompt_pooled / prompt_pooled.norm(dim=-1, keepdim=True)
        return self.model.logit_scale.exp() * (image_feature * text_feature).sum(dim=-1)


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
    load_into(model, state, weights)
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


# ----------------------------------------------------------------------------- conversion

class _PickledObject:
    """Inert stand-in for every class named in the pickle.

    Only tensors are wanted from the release, so no class of its training code (nor of
    transformers, deepspeed...) is imported or run: each object just keeps its pickled state.
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


# The only real callables the unpickler hands out: those that rebuild tensors and the plain
# containers they arrive in.
_REAL_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"), ("torch", "Size"), ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "object"), ("copyreg", "_reconstructor"),
    # The same under the Python 2 module names that pickle protocol 2 writes.
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "object"), ("copy_reg", "_reconstructor"),
}


class _InertUnpickler(pickle.Unpickler):
    _stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in _REAL_GLOBALS:
            return super().find_class(module, name)
        key = (module, name)
        if key not in self._stand_ins:
            self._stand_ins[key] = type(name, (_PickledObject,), {"__module__": module, "__qualname__": name})
        return self._stand_ins[key]


class _InertPickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an ``Unpickler`` class and ``load``."""

    Unpickler = _InertUnpickler
    __name__ = "spf_inert_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _InertUnpickler(file, **kwargs).load()


def _module_tensors(obj: Any, prefix: str = "", seen: set | None = None) -> dict[str, torch.Tensor]:
    """The state dict of a pickled ``nn.Module`` tree, read from its attributes alone."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return {}
    seen.add(id(obj))
    attrs = getattr(obj, "__dict__", {})
    out: dict[str, torch.Tensor] = {}
    for name, value in (attrs.get("_parameters") or {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
    transient = attrs.get("_non_persistent_buffers_set")
    transient = transient if isinstance(transient, (set, frozenset)) else set()
    for name, value in (attrs.get("_buffers") or {}).items():
        if isinstance(value, torch.Tensor) and name not in transient:
            out[prefix + name] = value
    for name, child in (attrs.get("_modules") or {}).items():
        if child is not None:
            out.update(_module_tensors(child, f"{prefix}{name}.", seen))
    return out


# Buffers that the transformers release MPS was trained with stored in checkpoints and that
# current transformers recomputes instead.
_OBSOLETE_KEYS = ("model.text_model.embeddings.position_ids", "model.vision_model.embeddings.position_ids")


def _released_state(src: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(src, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule)
    except Exception as exc:  # a truncated zip or pickle raises many types
        raise WeightsCorruptError(f"{src} is truncated or not a pickled PyTorch model ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}).") from None
    if isinstance(obj, dict):  # a plain state dict (e.g. saved from a converted model) is taken as is
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    else:
        state = _module_tensors(obj)
    for key in _OBSOLETE_KEYS:
        state.pop(key, None)
    if not any(k.startswith("model.text_model.") for k in state) or not any(k.startswith("cross_model.layers.") for k in state):
        raise WeightsCorruptError(f"{src} holds no MPS model (no 'model.text_model.*' and 'cross_model.layers.*' tensors); is it {RELEASE_FILE}?")
    return state


def convert_mps_checkpoint(src: str | Path, dst: str | Path, trust_pickle: bool = False) -> Path:
    """Convert the released ``MPS_overall_checkpoint.pth`` into ``mps_overall.safetensors``.

    ``dst`` is the output file, or a folder to write ``mps_overall.safetensors`` into. The
    release is a pickle, and unpickling may run code, so nothing is read unless
    ``trust_pickle`` says the user trusts the file. Even then every class it names is
    replaced by an inert stand-in, and only its tensors are kept. Returns the written path.
    """
    src, dst = Path(src), Path(dst)
    if not trust_pickle:
        raise SpfError(f"{src} is a pickled Python object, which can run code when loaded; convert it only if you trust its source, by passing --trust-pickle.")
    if not src.is_file():
        raise SpfError(f"{src} does not exist; download {RELEASE_FILE} from {RELEASE_URL} first.")
    if dst.is_dir():
        dst = dst / WEIGHTS
    state = _released_state(src)
    _save_atomically({k: v.detach().clone().contiguous() for k, v in sorted(state.items())}, dst)
    return dst


def _save_atomically(state: dict[str, torch.Tensor], dst: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(dst, durable=True) as tmp:
        save_file(state, tmp)


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
