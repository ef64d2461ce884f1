"""The map M under test: the exact SFCM on hand-made maps, the mask variants of stage 2 (each
changes M and nothing else), the oracle's refusal outside the world, and where the SFCM lies
on the world's portraits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from spf_bench.core.errors import SpfError
from spf_bench.zoo import synth_source
from spf_train.config import Stage2Config
from spf_train.data import MASK_FIELD, PortraitDataset, collate, make_training_set
from spf_train.sfcm import exclusion_map, phrase_map, sfcm_from_maps, soft_map
from spf_train.stage2 import DualPathTask
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")

# --------------------------------------------------------------------------- exact, by hand

# A 4x4 latent: the target sits in the top-left 2x2 block; the base caption's one phrase
# ("a green background") attends to the right half.
TARGET = torch.zeros(4, 4, dtype=torch.bool)
TARGET[:2, :2] = True
RIGHT = torch.zeros(4, 4)
RIGHT[:, 2:] = 1.0


def test_sfcm_on_hand_made_noise_difference_and_attention_maps():
    # Noise difference: 1.0 on the target, 0.5 on the right half, 0 elsewhere (every channel).
    diff = torch.where(TARGET, 1.0, 0.0) + 0.5 * RIGHT
    eps_reference = torch.zeros(1, 4, 4, 4)
    eps_response = diff.expand(1, 4, 4, 4).clone()
    soft = soft_map(eps_response, eps_reference)[0]
    assert torch.allclose(soft, diff)  # already in [0, 1] with min 0 and max 1
    # One layer of 16 positions, 3 tokens: the phrase's tokens 1 and 2 attend to the right half.
    probs = torch.zeros(1, 16, 3)
    probs[0, :, 1] = RIGHT.flatten()
    probs[0, :, 2] = RIGHT.flatten() * 0.5
    amap = phrase_map([probs], [1, 2], (4, 4))[0]
    assert torch.allclose(amap, RIGHT)  # the mean of 1 and 0.5 on the right, 0 on the left, min-max
    # The phrase is unrelated to the target (w = 1): X is its map; M = norm(soft * (1 - X)).
    weights = torch.tensor([1.0])
    m = sfcm_from_maps(soft, amap[None], weights)
    expected = torch.where(TARGET, 1.0, 0.0)  # the right half's 0.5 is excluded entirely
    assert torch.allclose(m, expected)
    inside, outside = m[TARGET].mean(), m[~TARGET].mean()
    assert inside >= 3 * outside
    # A related phrase (w = 0.25) keeps three quarters of the right half's difference.
    m_related = sfcm_from_maps(soft, amap[None], torch.tensor([0.25]), norm="none")
    assert torch.allclose(m_related, torch.where(TARGET, 1.0, 0.0) + 0.5 * 0.75 * RIGHT)
    # With normalisation by the weights' sum, a lone phrase is excluded wholly whatever its weight.
    assert torch.allclose(sfcm_from_maps(soft, amap[None], torch.tensor([0.25])), expected)


def test_exclusion_map_normalised_by_weight_sum_or_clipped_sum():
    maps = torch.stack([torch.full((2, 2), 0.8), torch.tensor([[1.0, 0.0], [0.5, 0.5]])])
    weights = torch.tensor([1.0, 0.5])
    summed = 1.0 * maps[0] + 0.5 * maps[1]  # [[1.3, 0.8], [1.05, 1.05]]
    assert torch.allclose(exclusion_map(maps, weights), summed / 1.5)
    assert torch.allclose(exclusion_map(maps, weights, "none"), summed.clamp(max=1.0))
    assert torch.equal(exclusion_map(maps, torch.zeros(2), "none"), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="exclusion_norm"):
        exclusion_map(maps, weights, "softmax")


# --------------------------------------------------------------------------- stage 2's variants

CAPTIONS = [("a woman, long hair, a red background", "wearing glasses"), ("a man, short hair, a blue shirt", "in a hat")]


@pytest.fixture(scope="module")
def mask_set(tiny_pipe, tmp_path_factory):
    """A tiny training set whose rows carry hand-made target masks (a block per image)."""
    folder = make_training_set(tiny_pipe, CAPTIONS, tmp_path_factory.mktemp("masked") / "set", steps=2)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        mask = np.zeros((64, 64), dtype=np.uint8)
        mask[8 + 16 * i: 24 + 16 * i, 10:40] = 255
        (folder / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask, mode="L").save(folder / "masks" / f"{i}.png")
        row[MASK_FIELD] = f"masks/{i}.png"
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def _task(tiny_pipe, tiny_clip, folder, **fields):
    config = Stage2Config(data_dir=str(folder), init_from="original", train_batch_size=2, max_steps=1, device="cpu", **fields)
    return DualPathTask(config, pipe=fresh_copy(tiny_pipe), clip=fresh_copy(tiny_clip), report=lambda m: None)


def _losses(task, batch):
    terms, context = task.compute_losses(batch, torch.Generator("cpu").manual_seed(11), 0)
    return {name: float(term.value.detach()) for name, term in terms.items()}, context


def test_each_mask_variant_changes_only_m(tiny_pipe, tiny_clip, mask_set):
    dataset = PortraitDataset(mask_set, 64)
    batch = collate([dataset[0], dataset[1]])
    assert batch[MASK_FIELD].shape == (2, 64, 64) and batch[MASK_FIELD].max() == 1.0
    ours = _task(tiny_pipe, tiny_clip, mask_set)
    ours_losses, ours_context = _losses(ours, batch)
    sfcm = ours.last_map.clone()
    assert 0.0 <= float(sfcm.min()) and float(sfcm.max()) <= 1.0 and float(sfcm.max() - sfcm.min()) > 0.5
    latent_hw = tuple(sfcm.shape[-2:])
    expected_m = {
        "inverted": 1.0 - sfcm,
        "ones": torch.ones_like(sfcm),
        "oracle": F.interpolate(batch[MASK_FIELD][:, None], size=latent_hw, mode="area")[:, 0],
        "no_sfcm": torch.zeros_like(sfcm),
    }
    for variant, m in expected_m.items():
        fields = {"no_sfcm": True} if variant == "no_sfcm" else {"mask_variant": variant}
        task = _task(tiny_pipe, tiny_clip, mask_set, **fields)
        losses, context = _losses(task, batch)
        assert torch.allclose(task.last_map, m, atol=1e-6), variant
        # Same noise, same paths, same L_diff and L_re: only the map differs ...
        assert torch.equal(context.noise_pred, ours_context.noise_pred), variant
        assert torch.equal(context.extras["eps_reference"], ours_context.extras["eps_reference"]), variant
        # (L_re to float rounding: CLIP's text tower embeds the target caption in a batch of
        # its own here and beside c_b's phrases when the SFCM is built.)
        assert losses["diff"] == ours_losses["diff"] and losses["re"] == pytest.approx(ours_losses["re"], rel=1e-3), variant
        # ... and the method itself, handed this variant's M, computes exactly its losses.
        ours.control_map = lambda *args, m=m: m
        handed, _ = _losses(ours, batch)
        assert {k: handed[k] for k in ("diff", "attn", "unet")} == {k: losses[k] for k in ("diff", "attn", "unet")}, variant
        if variant != "inverted":  # the alignment losses do depend on M
            assert (losses["attn"], losses["unet"]) != (ours_losses["attn"], ours_losses["unet"]), variant
    # Image 0's block (rows 8-23, columns 10-39 of 64) on the 8x8 latent: rows 1-2, columns
    # 1 (three quarters covered) to 4.
    oracle = torch.zeros(8, 8)
    oracle[1:3, 1], oracle[1:3, 2:5] = 0.75, 1.0
    assert torch.equal(expected_m["oracle"][0], oracle)


def test_the_registry_variants_differ_from_ours_only_in_the_map():
    from spf_bench.methods.registry import get_method

    ours = get_method("ours").recipe
    for name, variant in (("ours-mask-oracle", "oracle"), ("ours-mask-inverted", "inverted"), ("ours-mask-ones", "ones")):
        recipe = get_method(name).recipe
        assert (recipe.trainer, recipe.init_from) == (ours.trainer, ours.init_from)
        assert recipe.overrides == {**ours.overrides, "mask_variant": variant}
    assert get_method("ours-no-sfcm").recipe.overrides == {**ours.overrides, "no_sfcm": True}


def test_the_oracle_mask_refuses_a_set_without_ground_truth_masks(tiny_pipe, tiny_clip, tmp_path):
    folder = make_training_set(tiny_pipe, CAPTIONS[:1], tmp_path / "plain", steps=2)
    with pytest.raises(SpfError) as caught:
        _task(tiny_pipe, tiny_clip, folder, mask_variant="oracle")
    message = str(caught.value)
    assert "only the synthetic world's training sets record" in message and str(folder) in message
    assert message.endswith(".") and message.count(". ") == 0  # one sentence
    with pytest.raises(SpfError, match="give only one"):
        _task(tiny_pipe, tiny_clip, folder, no_sfcm=True, mask_variant="ones")
    with pytest.raises(SpfError, match="mask_variant must be one of"):
        _task(tiny_pipe, tiny_clip, folder, mask_variant="random")


def test_a_bad_target_mask_row_names_the_row(tiny_pipe, tmp_path):
    folder = make_training_set(tiny_pipe, CAPTIONS[:1], tmp_path / "set", steps=2)
    row = json.loads((folder / "metadata.jsonl").read_text())
    (folder / "metadata.jsonl").write_text(json.dumps({**row, MASK_FIELD: "masks/none.png"}) + "\n")
    with pytest.raises(SpfError, match=r"line 1 \(00000.png\): its target_mask masks/none.png does not exist"):
        PortraitDataset(folder, 64)


# --------------------------------------------------------------------------- on the world's portraits

synth_weights = pytest.mark.usefixtures("shipped_synth_weights")  # they ship with the package: missing is a failure


@synth_weights
def test_world_sets_record_the_target_mask_the_renderer_gives(tmp_path):
    from spf_bench.world.sets import Correlation, write_set
    from spf_bench.world.masks import attribute_masks

    folder = write_set(tmp_path / "set", Correlation(), n=3, seed=1, size=32, correlated=True)
    dataset = PortraitDataset(folder, 32)
    assert dataset.has_target_masks
    for i, row in enumerate(json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()):
        truth = attribute_masks(row["attributes"], row["identity"], 32)["glasses"]
        assert row["masks"] == {Correlation().target_caption(): row[MASK_FIELD]}  # TokenCompose's grounding
        assert torch.equal(dataset[i][MASK_FIELD], torch.from_numpy(truth.astype(np.float32)))


@synth_weights
def test_sfcm_of_the_original_model_lies_on_the_ground_truth_target(tmp_path):
    """Response path = the original model on c, reference = the same model on c_b: M's mean
    inside the glasses' ground-truth region is at least 3x its mean outside, at every t."""
    from spf_bench.lab.diagnosis import sfcm_by_region
    from spf_bench.world.sets import Correlation, write_set

    folder = write_set(tmp_path / "set", Correlation(), n=12, seed=3, size=32, correlated=False)
    sd, clip = synth_source.folder("sd15"), synth_source.folder("clip")
    result = sfcm_by_region(folder, sd, sd, clip, timesteps=(200, 500, 800), n_images=12)
    share = result["area_share"]
    for t, row in result["timesteps"].items():
        outside = (row["spurious"]["M"] * share["spurious"] + row["rest"]["M"] * share["rest"]) / (share["spurious"] + share["rest"])
        assert row["target"]["M"] >= 3 * outside, (t, row["target"]["M"], outside)
