"""SAM (Segment Anything, ViT-H) for the segmentation-consistency metric.

Layout: ``SPF_WEIGHTS_DIR/sam/sam_vit_h_4b8939.pth``, the official checkpoint, which is a plain
state dict of segment_anything's ``Sam``. The model is assembled here from segment_anything's
modules rather than by ``build_sam``, because ``build_sam`` reads the file with an unrestricted
``torch.load``; the file is read with ``weights_only`` loading instead.
Tiny: the same modules at toy width and depth, saved under the same file name, with an
``arch.json`` beside it giving the shrunk sizes. The input size stays 1024 px (longest side),
so ``SamPredictor``'s real resizing, padding and mask post-processing all run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import torch

from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
from spf_bench.zoo.registry import Network, WeightFile, register

CHECKPOINT = "sam_vit_h_4b8939.pth"
ARCH_FILE = "arch.json"
URL = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth"
TINY_SEED = 2718

# Fixed by SAM's design rather than by the checkpoint: the encoder sees 1024x1024 inputs cut
# into 16x16 patches, and normalises pixels with ImageNet statistics in 0-255 units.
IMAGE_SIZE = 1024
PATCH_SIZE = 16
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class SamArch:
    """The sizes that distinguish one SAM from another; the defaults are ViT-H's."""

    encoder_embed_dim: int = 1280
    encoder_depth: int = 32
    encoder_num_heads: int = 16
    encoder_global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256

    @classmethod
    def from_json(cls, path: Path) -> "SamArch":
        try:
            data = json.loads(path.read_text())
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise KeyError(unknown[0])
            if "encoder_global_attn_indexes" in data:
                data["encoder_global_attn_indexes"] = tuple(data["encoder_global_attn_indexes"])
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsCorruptError(f"{path} is not a SAM architecture description ({type(exc).__name__}: {exc}).") from None

    def to_json(self) -> str:
        data = asdict(self)
        data["encoder_global_attn_indexes"] = list(self.encoder_global_attn_indexes)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


VIT_H = SamArch()
# Toy sizes: one windowed and one global encoder block, so both attention paths (and the
# relative position tables of each) are exercised; a few hundred thousand parameters.
TINY_ARCH = SamArch(
    encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=(1,),
    window_size=14, prompt_embed_dim=32, mask_in_chans=8, decoder_depth=1, decoder_mlp_dim=64,
    decoder_num_heads=2, iou_head_hidden_dim=32,
)


def build_sam(arch: SamArch):
    """A ``segment_anything.modeling.Sam`` of the given sizes, with fresh initialisation."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = IMAGE_SIZE // PATCH_SIZE
    encoder = ImageEncoderViT(
        img_size=IMAGE_SIZE, patch_size=PATCH_SIZE, embed_dim=arch.encoder_embed_dim,
        depth=arch.encoder_depth, num_heads=arch.encoder_num_heads, mlp_ratio=4,
        out_chans=arch.prompt_embed_dim, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=arch.window_size, global_attn_indexes=tuple(arch.encoder_global_attn_indexes),
    )
    prompt_encoder = PromptEncoder(
        embed_dim=arch.prompt_embed_dim, image_embedding_size=(grid, grid),
        input_image_size=(IMAGE_SIZE, IMAGE_SIZE), mask_in_chans=arch.mask_in_chans,
    )
    decoder = MaskDecoder(
        transformer_dim=arch.prompt_embed_dim,
        transformer=TwoWayTransformer(
            depth=arch.decoder_depth, embedding_dim=arch.prompt_embed_dim,
            mlp_dim=arch.decoder_mlp_dim, num_heads=arch.decoder_num_heads,
        ),
        num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=arch.iou_head_hidden_dim,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder,
               pixel_mean=list(PIXEL_MEAN), pixel_std=list(PIXEL_STD))


def _perturb(model: torch.nn.Module) -> None:
    # SAM initialises its relative-position tables and positional embedding to zeros; seeded
    # noise makes the tiny model's outputs depend on every weight, so a loader that drops
    # one of them cannot pass the tests unnoticed.
    with torch.no_grad():
        for param in model.parameters():
            if not param.any():
                param.normal_(std=0.02)


def write_tiny(folder: Path) -> None:
    torch.manual_seed(TINY_SEED)
    model = build_sam(TINY_ARCH)
    _perturb(model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARCH_FILE).write_text(TINY_ARCH.to_json())
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / CHECKPOINT)


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype):
    arch_path = folder / ARCH_FILE
    arch = SamArch.from_json(arch_path) if arch_path.is_file() else VIT_H
    weights = folder / CHECKPOINT
    state = read_state_dict(weights)
    model = build_sam(arch)
    load_into(model, state, weights, adopt=True)
    return model.to(device=device, dtype=dtype).eval()


def build_random(device: torch.device, dtype: torch.dtype):
    torch.manual_seed(TINY_SEED)
    with torch.device(device):
        model = build_sam(VIT_H)
    return model.to(dtype=dtype).eval()


NETWORK = register(Network(
    name="sam",
    summary="Segment Anything ViT-H (segment_anything modules) for Seg-Cons",
    files=(WeightFile(CHECKPOINT, f"the official SAM release, file {CHECKPOINT}", url=URL),),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
    extra_layout=(ARCH_FILE,),
))
