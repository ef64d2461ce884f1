"""Magnet: training-free prompt-embedding edits on the original model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spf_bench.core.captions import join_caption
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import GenerationSettings, Job, default_encode, render
from spf_bench.methods.magnet import (
    Magnet,
    MagnetConfig,
    adaptive_strengths,
    build_magnet,
    noun_position,
    portrait_concepts,
)
from spf_bench.methods.registry import BuildRequest, build_base

# tiny-network ops: one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

BASE = "a photo of a young woman, long brown hair, in a park"
TARGET = "wearing round glasses"
PROMPT = join_caption(BASE, TARGET)


def _position(tokenizer, word: str, after: int = 0) -> int:
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(PROMPT).input_ids)
    return tokens.index(f"{word}</w>", after)


def _changed_positions(a: torch.Tensor, b: torch.Tensor) -> set[int]:
    return set(torch.nonzero((a != b).any(dim=-1)[0]).flatten().tolist())


def test_zero_strength_reproduces_the_base_models_images_exactly(tiny_pipe):
    settings = GenerationSettings(sampler="ddim", steps=3, guidance=7.5, height=64, width=64)
    # the generator hands Magnet each job's captions apart
    jobs = [Job("t0", BASE, 7, TARGET), Job("t1", "a photo of an elderly man, smiling, in a kitchen", 8, "with blue eyes")]
    request = BuildRequest("base", "tiny", torch.device("cpu"), torch.float32, None)
    base = build_base(request)
    magnet0 = build_magnet(BuildRequest("magnet", "tiny", torch.device("cpu"), torch.float32, None, {"magnet": {"strength": 0.0}}))
    magnet1 = build_magnet(BuildRequest("magnet", "tiny", torch.device("cpu"), torch.float32, None))
    images = {name: np.concatenate([imgs for _, imgs in render(model, jobs, settings)])
              for name, model in (("base", base), ("zero", magnet0), ("magnet", magnet1))}
    assert np.array_equal(images["base"], images["zero"])
    assert not np.array_equal(images["base"], images["magnet"])  # the edit does reach the images
    assert magnet0.fingerprint != magnet1.fingerprint != base.fingerprint
    # and the plain diffusers call gives the same embeddings as the zero-strength edit
    plain = tiny_pipe.encode_prompt([PROMPT], torch.device("cpu"), 1, False)[0]
    assert torch.equal(Magnet(tiny_pipe, MagnetConfig(strength=0.0)).prompt_embeds([BASE], [TARGET]), plain)


def test_only_the_subject_token_changes(tiny_pipe):
    base = default_encode(tiny_pipe, [PROMPT])
    edited = Magnet(tiny_pipe, MagnetConfig()).prompt_embeds([BASE], [TARGET])
    woman = _position(tiny_pipe.tokenizer, "woman")
    assert _changed_positions(base, edited) == {woman}
    assert (edited[0, woman] - base[0, woman]).norm() > 1e-3

    # objects="all": every concept noun of the prompt, and nothing else
    everything = Magnet(tiny_pipe, MagnetConfig(objects="all")).prompt_embeds([BASE], [TARGET])
    expected = {woman, _position(tiny_pipe.tokenizer, "hair"), _position(tiny_pipe.tokenizer, "park")}
    assert _changed_positions(base, everything) == expected
    # the subject's edit is the same whether or not the other nouns are edited too
    assert torch.equal(everything[0, woman], edited[0, woman])


def test_edit_is_the_binding_vectors_scaled_by_the_adaptive_strengths(tiny_pipe):
    magnet = Magnet(tiny_pipe, MagnetConfig())
    near = magnet.neighbours("woman")
    assert near[0] == "woman" and len(near) == 5  # the noun itself is its own nearest neighbour
    alpha, beta, omega = adaptive_strengths(tiny_pipe, ["round glasses woman"], 0.6)
    assert alpha.item() == pytest.approx(float(np.exp(0.6 - omega.item())), rel=1e-6)
    assert beta.item() == pytest.approx(1 - omega.item() ** 2, rel=1e-6)
    positive = magnet.binding_vector("round glasses", near)
    negative = magnet.binding_vector("long brown", near)  # the hair's attribute; "park" has none
    expected = alpha.item() * positive - beta.item() * negative
    [(position, delta)] = magnet.edits(BASE, TARGET)
    assert position == _position(tiny_pipe.tokenizer, "woman")
    assert torch.allclose(delta, expected, atol=1e-6)

    # strength scales the whole edit; positive-only and negative-only split it
    [(_, double)] = Magnet(tiny_pipe, MagnetConfig(strength=2.0)).edits(BASE, TARGET)
    assert torch.allclose(double, 2 * delta, atol=1e-6)
    [(_, pos)] = Magnet(tiny_pipe, MagnetConfig(negative=False)).edits(BASE, TARGET)
    [(_, neg)] = Magnet(tiny_pipe, MagnetConfig(positive=False)).edits(BASE, TARGET)
    assert torch.allclose(pos + neg, delta, atol=1e-6)


def test_base_caption_alone_is_left_as_the_original_model_encodes_it(tiny_pipe):
    encode = build_magnet(BuildRequest("magnet", "tiny", torch.device("cpu"), torch.float32, None)).encode_captions
    prompts = [BASE, "", PROMPT]
    out = encode([(BASE, ""), ("", ""), (BASE, TARGET)])
    plain = default_encode(tiny_pipe, prompts)
    assert torch.equal(out[:2], plain[:2])  # reconstruction prompt and the empty prompt
    assert _changed_positions(plain[2:], out[2:]) == {_position(tiny_pipe.tokenizer, "woman")}


def test_captions_travel_apart_and_concepts():
    # a target with a comma of its own is bound as the whole target: nothing splits a prompt
    job = Job("t0", "a photo of a man, in a field", 0, "holding a red kite, at dusk")
    assert job.captions == ("a photo of a man, in a field", "holding a red kite, at dusk")
    assert job.prompt == "a photo of a man, in a field, holding a red kite, at dusk" == join_caption(*job.captions)
    assert Job("t1", BASE, 0).prompt == BASE
    concepts = portrait_concepts(BASE, TARGET)
    assert [(c.noun, c.attribute, c.is_subject) for c in concepts] == [
        ("woman", "round glasses", True), ("hair", "long brown", False), ("park", "", False)]
    with pytest.raises(SpfError, match="subject noun"):
        portrait_concepts("a bowl of fruit, on a table", TARGET)
    with pytest.raises(SpfError, match="objects"):
        MagnetConfig(objects="everything")


def test_noun_position_ignores_words_inside_other_words(tiny_pipe):
    base, target = "a photo of a little boy, in a garden", "wearing a cowboy hat"
    [subject, *_] = portrait_concepts(base, target)
    assert noun_position(tiny_pipe.tokenizer, base, target, subject) == 6
