"""Training the identity embedder, exporting it next to the detector, and measuring it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from spf_bench.world.attributes import sample_attributes
from spf_bench.world.dataset import N_IDENTITIES, PortraitSet
from spf_bench.world.identity import (
    AngularMarginHead,
    IdentityEmbedder,
    aligned_crops,
    detector_keypoints,
    export_onnx,
)
from spf_bench.world.loop import step_generator, train_steps
from spf_bench.world.oracle import degrade
from spf_bench.world.recipe import Recipe
from spf_bench.world.render import render

DET_FILE, REC_FILE = "det_10g.onnx", "w600k_r50.onnx"


def train(recipe: Recipe, data: PortraitSet, work: Path, out: Path, log) -> dict:
    stage = recipe.identity
    torch.manual_seed(stage.seed)
    model, head = IdentityEmbedder(), AngularMarginHead(128, N_IDENTITIES)
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=stage.lr, weight_decay=5e-4)
    keypoints = detector_keypoints(recipe.size)
    labels = torch.from_numpy(data.identities)

    def step(i: int) -> torch.Tensor:
        model.train()
        gen = step_generator(stage.seed, i)
        idx = torch.randint(0, len(data), (stage.batch,), generator=gen)
        x = degrade(aligned_crops(data.images[idx.numpy()], keypoints), gen)
        return head(model(x), labels[idx])

    timing = train_steps("identity", {"model": model, "head": head}, optimizer, step, stage.steps, work / "identity.ckpt", stage.lr, log=log)
    model.eval()
    export_onnx(model, out / REC_FILE)
    # The world trains no detector: the tiny zoo's hand-set one finds its faces.
    from spf_bench.zoo.registry import ensure_tiny, get_network

    shutil.copyfile(ensure_tiny(get_network("face")) / DET_FILE, out / DET_FILE)
    rank1 = identification_rate(out, recipe.size, recipe.eval_seed)
    rank1_novel = identification_rate(out, recipe.size, recipe.eval_seed, novel=True)
    log(f"identity rank-1 identification on new identities (through insightface): {rank1:.3f}, with novel attributes {rank1_novel:.3f}")
    return {**timing, "rank1_new_identities": rank1, "rank1_new_identities_novel": rank1_novel,
            "parameters": sum(p.numel() for p in model.parameters())}


def identification_rate(folder: Path, size: int, seed: int, n: int = 100, novel: bool = False) -> float:
    """Rank-1 rate: two portraits of each of ``n`` unseen identities, with independent attributes
    (``novel``: the novel attributes drawn too, which the embedder never saw).

    Runs the exported files through the zoo's face loader (detection, alignment, ArcFace),
    exactly as the ID metric does.
    """
    from spf_bench.zoo.networks.face import load_folder

    faces = load_folder(folder, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng([0x1DE, seed])
    ids = np.arange(2 * N_IDENTITIES, 2 * N_IDENTITIES + n)
    emb = {0: [], 1: []}
    for identity in ids:
        for view in (0, 1):
            image = render(sample_attributes(rng, novel=novel), int(identity), int(rng.integers(2**31)), size)
            vec = faces.largest_face_embedding(image)
            # A portrait where no face is found counts as a miss, not as an error.
            emb[view].append(np.zeros(128, np.float32) if vec is None else vec / np.linalg.norm(vec))
    sims = np.stack(emb[0]) @ np.stack(emb[1]).T
    return float((sims.argmax(axis=1) == np.arange(n)).mean())


def novel_attribute_cosines(folder: Path, size: int, seed: int, n: int = 50) -> dict[str, float]:
    """How much each novel attribute alone moves the embedding: for ``n`` unseen identities,
    the mean cosine between a portrait and the same portrait (identity, known attributes and
    grain) with that one attribute added; and, under ``"different identity"``, the mean
    cosine between a portrait and another identity's with the same attributes and grain.
    """
    from spf_bench.world.attributes import NOVEL_NAMES
    from spf_bench.zoo.networks.face import load_folder

    faces = load_folder(folder, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng([0xC05, seed])

    def embed(attrs: dict, identity: int, grain: int) -> np.ndarray:
        vec = faces.largest_face_embedding(render(attrs, identity, grain, size))
        return np.zeros(128, np.float32) if vec is None else vec / np.linalg.norm(vec)

    sums = dict.fromkeys((*NOVEL_NAMES, "different identity"), 0.0)
    for k in range(n):
        identity = 2 * N_IDENTITIES + 500 + k  # beyond the training and identification ranges
        attrs, grain = sample_attributes(rng), int(rng.integers(2**31))
        plain = embed(attrs, identity, grain)
        for name in NOVEL_NAMES:
            sums[name] += float(plain @ embed({**attrs, name: "yes"}, identity, grain))
        sums["different identity"] += float(plain @ embed(attrs, identity + n, grain))
    return {name: total / n for name, total in sums.items()}
