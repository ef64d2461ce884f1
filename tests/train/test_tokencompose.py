"""TokenCompose: its grounding losses on hand-made maps, phrase grounding, data, and training on tiny."""

from __future__ import annotations

import json
import math

import pytest
import torch

from spf_bench.core.errors import SpfError
from spf_train.grounding import attribute_phrase, default_phrases, phrase_token_indices, subject_phrase
from spf_train.tokencompose.losses import (
    group_losses,
    grounding_mass,
    inside_fraction,
    masks_at,
    pixel_loss,
    token_loss,
)

# tiny-network ops: one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

# ----------------------------------------------------------------------------- hand-made maps

# A 2x2 grid (U = 4 pixels), 4 text tokens, 2 heads; the phrase is token 1, its mask the top row.
MASK = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])  # (B=1, P=1, 2, 2)
SELECT = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])  # (B, P, T)
VALID = torch.tensor([[True]])


def _probs(token_column: list[float], heads: int = 2) -> torch.Tensor:
    """Attention probabilities whose token-1 column over the 4 pixels is ``token_column``
    (the rest of each row spread over the other tokens, so rows sum to 1)."""
    probs = torch.zeros(1, heads, 4, 4)
    for u, p in enumerate(token_column):
        probs[0, :, u, 1] = p
        probs[0, :, u, [0, 2, 3]] = (1 - p) / 3
    return probs


def test_token_loss_is_zero_inside_and_maximal_outside():
    inside = _probs([0.9, 0.7, 0.0, 0.0])  # token 1 attends only to the top (masked) row
    outside = _probs([0.0, 0.0, 0.8, 0.6])  # ... only to the bottom row
    half = _probs([0.5, 0.0, 0.5, 0.0])
    assert token_loss(inside, SELECT, MASK, VALID).item() == pytest.approx(0.0, abs=1e-7)
    assert token_loss(outside, SELECT, MASK, VALID).item() == pytest.approx(1.0, abs=1e-7)
    assert token_loss(half, SELECT, MASK, VALID).item() == pytest.approx(0.25, abs=1e-6)
    # 1.0 is the maximum: no attention pattern exceeds it
    random = torch.rand(1, 2, 4, 4).softmax(dim=-1)
    assert 0.0 <= token_loss(random, SELECT, MASK, VALID).item() <= 1.0


def test_token_loss_averages_heads_before_squaring_and_tokens_of_a_phrase():
    # head 0 entirely inside, head 1 entirely outside: mean share 0.5 -> (1 - 0.5)^2
    probs = torch.cat([_probs([1.0, 0.0, 0.0, 0.0], heads=1), _probs([0.0, 0.0, 1.0, 0.0], heads=1)], dim=1)
    assert token_loss(probs, SELECT, MASK, VALID).item() == pytest.approx(0.25, abs=1e-6)
    # a two-token phrase: token 1 inside (0), token 2 outside (1) -> mean 0.5
    probs = torch.zeros(1, 1, 4, 4)
    probs[0, 0, :, 1] = torch.tensor([0.5, 0.5, 0.0, 0.0])
    probs[0, 0, :, 2] = torch.tensor([0.0, 0.0, 0.5, 0.5])
    probs[0, 0, :, 0] = 1 - probs[0, 0, :, 1:].sum(-1)
    two = torch.tensor([[[0.0, 1.0, 1.0, 0.0]]])
    assert token_loss(probs, two, MASK, VALID).item() == pytest.approx(0.5, abs=1e-6)


def test_padding_phrases_are_ignored():
    probs = _probs([0.9, 0.7, 0.0, 0.0])
    select = torch.cat([SELECT, torch.tensor([[[0.0, 0.0, 0.0, 1.0]]])], dim=1)
    masks = torch.cat([MASK, torch.zeros(1, 1, 2, 2)], dim=1)  # a padding phrase that would score 1
    valid = torch.tensor([[True, False]])
    assert token_loss(probs, select, masks, valid).item() == pytest.approx(0.0, abs=1e-7)
    assert token_loss(probs, select, masks, torch.tensor([[True, True]])).item() > 0.4


def test_pixel_loss_known_values():
    # phrase attention equal to the mask -> BCE ~ 0; 0.5 everywhere -> ln 2
    exact = torch.zeros(1, 4, 4)
    exact[0, :, 1] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    exact[0, :, 0] = 1 - exact[0, :, 1]
    assert pixel_loss(exact, SELECT, MASK, VALID).item() == pytest.approx(0.0, abs=1e-4)
    half = torch.full((1, 4, 4), 0.5 / 3)
    half[0, :, 1] = 0.5
    assert pixel_loss(half, SELECT, MASK, VALID).item() == pytest.approx(math.log(2), abs=1e-5)
    # outside the mask entirely is worse than half
    wrong = torch.zeros(1, 4, 4)
    wrong[0, :, 1] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    wrong[0, :, 0] = 1 - wrong[0, :, 1]
    assert pixel_loss(wrong, SELECT, MASK, VALID).item() > 5.0


def test_group_losses_sum_token_loss_over_layers_and_resize_masks():
    big_mask = torch.zeros(1, 1, 8, 8)
    big_mask[..., :4, :] = 1.0  # top half at 8x8 -> top row at 2x2
    assert torch.equal(masks_at(big_mask, 2, 2), MASK)
    tiny_part = torch.zeros(1, 1, 64, 64)
    tiny_part[..., 10, 10] = 1.0  # one pixel still grounds its cell at 8x8 (glasses never vanish)
    assert masks_at(tiny_part, 8, 8).sum() >= 1
    outside = _probs([0.0, 0.0, 0.8, 0.6]).requires_grad_(True)
    tok, pix = group_losses([outside, outside], SELECT, big_mask, VALID, 2, 2)
    assert tok.item() == pytest.approx(2.0, abs=1e-6)  # two layers, each at the maximum
    (tok + pix).backward()
    assert outside.grad is not None and outside.grad.abs().sum() > 0
    mass = grounding_mass([_probs([0.9, 0.7, 0.0, 0.0])], SELECT, MASK, VALID, [(2, 2)])
    assert mass.item() == pytest.approx(1.0)
    assert inside_fraction(_probs([0.5, 0.0, 0.5, 0.0]), SELECT, MASK)[0, 0, 1].item() == pytest.approx(0.5)


def test_recorded_layers_are_the_mid_and_up_cross_attention_and_change_nothing(tiny_pipe):
    from spf_train.tokencompose.capture import recording

    unet = tiny_pipe.unet
    torch.manual_seed(0)
    noisy, text = torch.randn(2, 4, 8, 8), torch.randn(2, 77, unet.config.cross_attention_dim)
    t = torch.tensor([10, 500])
    with torch.no_grad():
        plain = unet(noisy, t, text).sample
        with recording(unet, ("mid", "up")) as store:
            store.reset((8, 8))
            recorded = unet(noisy, t, text).sample
        again = unet(noisy, t, text).sample
    assert torch.allclose(plain, recorded, atol=1e-5) and torch.equal(plain, again)  # processors restored
    names = [layer.name for layer in store.layers]
    assert len(names) == 5 and all(".attn2." in n and not n.startswith("down") for n in names)
    assert {layer.group for layer in store.layers} == {"mid_4x4", "up_4x4", "up_8x8"}
    for layer in store.layers:
        assert layer.probs.shape[0] == 2 and layer.probs.shape[2:] == (layer.height * layer.width, 77)
        assert torch.allclose(layer.probs.sum(dim=-1), torch.ones(()), atol=1e-5)


# ----------------------------------------------------------------------------- phrases

def test_default_phrases_of_portrait_captions(tiny_pipe):
    base, target = "a photo of a young woman, long brown hair, in a park", "wearing round glasses"
    assert default_phrases(base, target) == ("woman", "round glasses")
    assert subject_phrase("a photo of a little boy, in a garden, wearing a cowboy hat") == "boy"
    assert attribute_phrase("with a mohawk hairstyle") == "mohawk hairstyle"
    tok = tiny_pipe.tokenizer
    ids = tok(f"{base}, {target}").input_ids
    woman = phrase_token_indices(tok, base, target, "woman")
    assert [tok.convert_ids_to_tokens(ids[i]) for i in woman] == ["woman</w>"]
    glasses = phrase_token_indices(tok, base, target, "round glasses")
    assert [tok.convert_ids_to_tokens(ids[i]) for i in glasses] == ["round</w>", "glasses</w>"]
    # a word in both segments binds to the target's occurrence when the target names it
    hair = phrase_token_indices(tok, base, "with curly hair", "curly hair")
    assert hair[0] > phrase_token_indices(tok, base, "with curly hair", "brown")[0]
    assert phrase_token_indices(tok, "a photo of a little boy, in a garden", "wearing a cowboy hat", "boy")[0] == 6
    with pytest.raises(SpfError, match="does not occur"):
        phrase_token_indices(tok, base, target, "red scarf")


# ----------------------------------------------------------------------------- data

def test_rows_without_grounding_or_with_missing_masks_are_refused(tmp_path, tiny_pipe):
    from spf_train.data import PortraitDataset
    from spf_train.tokencompose.data import PhraseGrounding, write_demo_set

    folder = write_demo_set(tmp_path / "set", 2)
    rows = PortraitDataset(folder, 64).rows
    grounding = PhraseGrounding(folder, rows, tiny_pipe.tokenizer, 64)
    batch = grounding.batch([0, 1])
    assert batch["selector"].shape == (2, 2, 77) and batch["masks"].shape == (2, 2, 64, 64)
    assert batch["valid"].all() and 0 < batch["masks"].mean() < 1

    lines = (folder / "metadata.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["masks"]["woman"] = "masks/nowhere.png"
    (folder / "metadata.jsonl").write_text(lines[0] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(SpfError, match="line 2.*nowhere.png"):
        PhraseGrounding(folder, rows, tiny_pipe.tokenizer, 64)
    del row["masks"]
    (folder / "metadata.jsonl").write_text(lines[0] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(SpfError, match="0001.png.*no 'masks' or 'points'"):
        PhraseGrounding(folder, rows, tiny_pipe.tokenizer, 64)


def test_sam_grounds_points_once_and_reuses_the_cache(tmp_path, tiny_pipe):
    from spf_train.data import PortraitDataset
    from spf_train.tokencompose.data import MASK_CACHE, PhraseGrounding, write_demo_set

    folder = write_demo_set(tmp_path / "set", 1)
    row = json.loads((folder / "metadata.jsonl").read_text())
    del row["masks"]
    row["points"] = {"woman": [[32, 34]], "round glasses": [[32, 24], [26, 24]]}
    (folder / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    rows = PortraitDataset(folder, 64).rows
    first = PhraseGrounding(folder, rows, tiny_pipe.tokenizer, 64, sam_source="tiny")
    cached = sorted((folder / MASK_CACHE).glob("*.png"))
    assert len(cached) == 2
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = PhraseGrounding(folder, rows, tiny_pipe.tokenizer, 64, sam_source="tiny")
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert torch.equal(first.batch([0])["masks"], again.batch([0])["masks"])


# ----------------------------------------------------------------------------- training on tiny

def test_training_raises_attention_mass_inside_masks_on_held_out_data(tmp_path, tiny_pipe):
    """A few TokenCompose steps through ``spf-train tokencompose`` put more of the grounded
    tokens' attention inside their masks on unseen portraits; the same steps with the
    grounding weights at 0 (plain fine-tuning) do not."""
    from spf_bench import zoo
    from spf_bench.zoo.networks.sd15 import load_folder
    from spf_train.cli import main as spf_train_main
    from spf_train.tokencompose.train import held_out_grounding, train_tokencompose
    from spf_train.tokencompose.config import TokenComposeConfig
    from spf_train.tokencompose.data import write_demo_set

    train_set = write_demo_set(tmp_path / "train", 12, seed=0)
    held_out = write_demo_set(tmp_path / "held", 8, seed=1)
    before = held_out_grounding(tiny_pipe, held_out)

    # lambda 1 instead of the paper's 1e-3 / 5e-5: 8 steps must move the maps measurably
    assert spf_train_main([
        "tokencompose", "--data", str(train_set), "--out", str(tmp_path / "tc"), "--steps", "8",
        "--train-batch-size", "4", "--gradient-accumulation-steps", "1", "--learning-rate", "1e-3",
        "--token-loss-weight", "1", "--pixel-loss-weight", "1", "--checkpoint-every", "0", "--device", "cpu",
        "--resume", "none"]) == 0
    tc = load_folder(tmp_path / "tc", torch.device("cpu"), torch.float32)
    after = held_out_grounding(tc, held_out)

    # the same run with the grounding weights at 0 (plain fine-tuning), measured in memory
    plain = zoo.load("sd15", source="tiny")
    train_tokencompose(TokenComposeConfig(
        data_dir=str(train_set), output_dir=str(tmp_path / "plain"), max_steps=8, train_batch_size=4,
        gradient_accumulation_steps=1, learning_rate=1e-3, token_loss_weight=0.0, pixel_loss_weight=0.0,
        checkpoint_every=0, device="cpu", resume="none"), pipe=plain, report=lambda _: None)
    control = held_out_grounding(plain, held_out)
    assert after > before + 0.05, (before, after)
    assert after > control + 0.05, (control, after)

    saved = json.loads((tmp_path / "tc" / "spf_config.json").read_text())
    assert saved["config_class"] == "TokenComposeConfig" and saved["token_loss_weight"] == 1.0
    assert saved["grounding_places"] == "mid,up"
    log = [json.loads(line) for line in (tmp_path / "tc" / "train_log.jsonl").read_text().splitlines()]
    assert {"diff", "token", "pixel"} <= set(log[-1]) and len(log) == 8
    # the text encoder and VAE were frozen: the saved ones equal the base model's
    for name in ("text_encoder", "vae"):
        for (k, a), (_, b) in zip(getattr(tc, name).state_dict().items(), getattr(tiny_pipe, name).state_dict().items()):
            assert torch.equal(a, b), f"{name}.{k} changed"


def test_defaults_are_the_papers(tmp_path):
    from spf_train.tokencompose.config import TokenComposeConfig

    cfg = TokenComposeConfig()
    assert (cfg.token_loss_weight, cfg.pixel_loss_weight) == (1e-3, 5e-5)
    assert (cfg.learning_rate, cfg.train_batch_size, cfg.gradient_accumulation_steps, cfg.max_steps) == (5e-6, 1, 4, 24000)
    assert cfg.places() == ("mid", "up") and cfg.lr_scheduler == "constant" and cfg.max_grad_norm == 1.0
    with pytest.raises(SpfError, match="grounding_places"):
        TokenComposeConfig(grounding_places="middle").places()
