"""Training the world's CLIP contrastively on renders and their captions.

The model is an open_clip ``CLIP`` at the world's 64 px with CLIP's real tokenizer, saved
in the clip network's folder layout (``open_clip_config.json`` + ``open_clip_model.safetensors``)
so the zoo's loader reads it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spf_bench.world.attributes import ATTRIBUTES
from spf_bench.world.captions import attribute_prompt
from spf_bench.world.clip_batches import compose_batch, normalise
from spf_bench.world.dataset import PortraitSet
from spf_bench.world.loop import step_generator, train_steps
from spf_bench.world.recipe import Recipe


def model_config(size: int) -> dict:
    return {
        "embed_dim": 64,
        "quick_gelu": True,
        "vision_cfg": {"image_size": size, "layers": 4, "width": 128, "patch_size": size // 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 3},
    }


def train(recipe: Recipe, data: PortraitSet, work: Path, out: Path, log, start: Path | None = None,
          twins: PortraitSet | None = None) -> dict:
    """Train the CLIP (stage ``clip``) or, from the finished one in ``start``, train it further
    on a set with the novel attributes (stage ``clip_novel``).

    ``twins`` (``twins.py``): each portrait of ``data`` drawn again with one small attribute
    flipped; ``recipe.clip_twins`` of every batch is then portraits with their twins, so the
    loss rewards seeing the freckle, the earring or the tie that alone tells the two apart."""
    from spf_bench.zoo.networks.clip import _build, _write_config

    stage, name = (recipe.clip, "clip") if start is None else (recipe.clip_novel, "clip_novel")
    novel = start is not None
    torch.manual_seed(stage.seed)
    cfg = model_config(recipe.size)
    model, _, tokenizer, _ = _build(cfg, torch.device("cpu"), torch.float32)
    if start is not None:
        from spf_bench.zoo.checkpoints import load_into, read_state_dict

        state = {k: v.float() for k, v in read_state_dict(Path(start) / "open_clip_model.safetensors").items()}
        load_into(model, state, Path(start) / "open_clip_model.safetensors")
    # Token codes stay at their seeded values, as in the diffusion world's text encoder: the
    # captions use a few dozen of the 49k tokens and the table would dominate each step.
    model.token_embedding.weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=stage.lr, weight_decay=0.05)

    # Without twins (the known stage) every batch is random portraits with full captions.
    pairs = int(round(stage.batch * recipe.clip_twins / 2)) if twins is not None else 0
    phrase_share = recipe.clip_phrases if twins is not None else 0.0

    def step(i: int) -> torch.Tensor:
        model.train()
        gen = step_generator(stage.seed, i)
        idx = torch.randint(0, len(data), (stage.batch,), generator=gen).numpy()
        rng = np.random.default_rng([stage.seed, i])
        batch = compose_batch(data, twins, idx, pairs, rng, novel, phrase_share)
        img = nn.functional.normalize(model.encode_image(normalise(batch.images)), dim=-1)
        txt = nn.functional.normalize(model.encode_text(tokenizer(batch.captions)), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
        if twins is not None:  # the known stage's full captions stay as they were trained
            logits = logits.masked_fill(batch.false_negatives(), float("-inf"))
        target = torch.arange(len(idx))
        return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))

    timing = train_steps(name, {"model": model}, optimizer, step, stage.steps, work / f"{name}.ckpt", stage.lr, log=log)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, cfg)
    from safetensors.torch import save_file

    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    acc = zero_shot_accuracy(out, data_eval(recipe, novel))
    log("clip zero-shot attribute accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    figures = {**timing, "zero_shot_accuracy": acc, "parameters": sum(p.numel() for p in model.parameters())}
    if novel:
        figures["twin_wins"] = twin_wins(out, recipe)
        log("clip twin wins (phrase closer to the image with the attribute): "
            + ", ".join(f"{k} {v:.3f}" for k, v in figures["twin_wins"].items()))
    return figures


TWIN_PAIRS = 200  # fresh twin pairs per attribute for the figures (a win share within about +-0.07)


def twin_wins(folder: Path, recipe: Recipe) -> dict[str, float]:
    """Per two-valued small attribute: the share of fresh twin pairs in which its phrase is
    closer to the image that shows it (``twins.paired_wins``; new grains and identities)."""
    from spf_bench.world.twins import TWIN_ATTRIBUTES, paired_wins
    from spf_bench.zoo.networks.clip import load_folder

    bundle = load_folder(folder, torch.device("cpu"), torch.float32)
    return {name: paired_wins(bundle, name, TWIN_PAIRS, recipe.eval_seed, recipe.size)["wins"] for name in TWIN_ATTRIBUTES}


def data_eval(recipe: Recipe, novel: bool = False) -> PortraitSet:
    from spf_bench.world.dataset import N_IDENTITIES, render_set

    return render_set(200, recipe.eval_seed + 1, recipe.size, identities=(N_IDENTITIES, 2 * N_IDENTITIES), novel=novel)


@torch.no_grad()
def zero_shot_accuracy(folder: Path, fresh: PortraitSet) -> dict[str, float]:
    """Per attribute: how often the closest one-attribute caption names the true value."""
    from spf_bench.zoo.networks.clip import load_folder

    bundle = load_folder(folder, torch.device("cpu"), torch.float32)
    img = nn.functional.normalize(bundle.encode_image(normalise(fresh.images)), dim=-1)
    acc = {}
    for i, attr in enumerate(ATTRIBUTES):
        if attr.novel and not fresh.labels[:, i].any():
            continue  # a known set shows no novel attribute: nothing to read
        txt = nn.functional.normalize(bundle.encode_text([attribute_prompt(attr.name, v) for v in attr.values]), dim=-1)
        pred = (img @ txt.T).argmax(-1).numpy()
        acc[attr.name] = float((pred == fresh.labels[:, i]).mean())
    return acc
