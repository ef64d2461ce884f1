"""Attention capture, text features and the dual-path losses on the tiny SD1.5."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from spf_train.capture import AttentionRecord, capturing, cross_attention_names
from spf_train.config import Stage2Config
from spf_train.data import PortraitDataset, collate, join_caption, make_training_set
from spf_train.models import base_token_counts, encode_text
from spf_train.sfcm import phrase_token_spans
from spf_train.stage2 import DualPathTask
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")

BASE = "a photo of a young woman, long brown hair, in a park"
TARGET = "wearing round glasses"


@pytest.fixture(scope="module")
def portrait_set(tiny_pipe, tmp_path_factory):
    folder = make_training_set(tiny_pipe, [(BASE, TARGET), ("a man, short hair and a beard", "in a red hat")],
                               tmp_path_factory.mktemp("capture-set"), steps=2)
    return PortraitDataset(folder, 64)


def _task(tiny_pipe, tiny_clip, dataset, tmp_path, response_unet=None, **overrides):
    config = Stage2Config(output_dir=str(tmp_path), train_batch_size=2, device="cpu", **{"init_from": "original", **overrides})
    return DualPathTask(config, pipe=fresh_copy(tiny_pipe), dataset=dataset, clip=fresh_copy(tiny_clip),
                        response_unet=response_unet)


def test_base_features_inside_full_prompt_equal_prefix_of_base_prompt(tiny_pipe):
    full = encode_text(tiny_pipe.tokenizer, tiny_pipe.text_encoder, [join_caption(BASE, TARGET)])
    base = encode_text(tiny_pipe.tokenizer, tiny_pipe.text_encoder, [BASE])
    n_b = int(base_token_counts(tiny_pipe.tokenizer, [BASE])[0])
    assert torch.equal(full.input_ids[0, :n_b], base.input_ids[0, :n_b])
    assert torch.allclose(full.features[0, :n_b], base.features[0, :n_b], atol=1e-6, rtol=0)
    # the next token differs (EOS in c_b, the comma in c), so the features do too
    assert not torch.allclose(full.features[0, n_b], base.features[0, n_b], atol=1e-3)


def test_phrase_token_spans_point_at_the_phrase_tokens(tiny_pipe):
    tok = tiny_pipe.tokenizer
    ids = tok(join_caption(BASE, TARGET)).input_ids
    for phrase, tokens in phrase_token_spans(tok, BASE):
        assert ids[tokens.start:tokens.stop] == tok(phrase, add_special_tokens=False).input_ids


def test_capture_processors_record_every_layer_and_leave_the_output_unchanged(tiny_pipe):
    unet = copy.deepcopy(tiny_pipe.unet)
    torch.manual_seed(0)
    z, t = torch.randn(1, 4, 8, 8), torch.tensor([500])
    text = encode_text(tiny_pipe.tokenizer, tiny_pipe.text_encoder, [BASE]).features
    with torch.no_grad():
        plain = unet(z, t, text).sample
        record = AttentionRecord(base_lengths=torch.tensor([5]), want_probs=True)
        with capturing(unet, record):
            captured = unet(z, t, text).sample
    assert torch.allclose(plain, captured, atol=1e-5)
    names = [n.removesuffix(".processor") for n in cross_attention_names(unet)]
    assert sorted(record.hidden) == sorted(names) == sorted(record.variant) == sorted(record.probs)
    for name in names:
        n = record.hidden[name].shape[1]
        assert record.probs[name].shape == (1, n, 77)
        assert torch.allclose(record.probs[name].sum(-1), torch.ones(1, n), atol=1e-5)
        assert record.variant[name].shape[0] == 1 and record.variant[name].shape[2] == n  # (B, heads, N, d)


def _batch(dataset, targets):
    batch = collate([dataset[0], dataset[1]])
    batch["target_caption"] = list(targets)
    batch["caption"] = [join_caption(b, t) for b, t in zip(batch["base_caption"], targets)]
    return batch


@pytest.fixture(scope="module")
def original_weights_task(tiny_pipe, tiny_clip, portrait_set, tmp_path_factory):
    """Stage 2 with the response path initialised from the original weights ("only stage 2")."""
    return _task(tiny_pipe, tiny_clip, portrait_set, tmp_path_factory.mktemp("stage2-task"))


def test_identical_paths_and_empty_target_give_zero_alignment_losses(original_weights_task, portrait_set):
    task = original_weights_task
    terms, _ = task.compute_losses(_batch(portrait_set, ["", ""]), torch.Generator().manual_seed(0), 0)
    assert terms["attn"].value.item() == 0.0
    assert terms["unet"].value.item() == 0.0
    # with a target the prompts differ, and so do the paths
    terms, _ = task.compute_losses(_batch(portrait_set, [TARGET, TARGET]), torch.Generator().manual_seed(0), 0)
    assert terms["unet"].value.item() > 0.0


def test_alignment_losses_vanish_with_full_control_map_whatever_the_paths(tiny_pipe, tiny_clip, portrait_set, tmp_path):
    other = copy.deepcopy(tiny_pipe.unet)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    task = _task(tiny_pipe, tiny_clip, portrait_set, tmp_path, response_unet=other, no_re=True)
    task.control_map = lambda eps_res, eps_ref, batch: torch.ones(eps_res.shape[0], *eps_res.shape[-2:])
    terms, _ = task.compute_losses(_batch(portrait_set, [TARGET, TARGET]), torch.Generator().manual_seed(0), 0)
    assert terms["attn"].value.item() == 0.0 and terms["unet"].value.item() == 0.0


def test_sfcm_of_a_step_lies_in_unit_interval_at_latent_size(original_weights_task, portrait_set):
    task = original_weights_task
    terms, context = task.compute_losses(_batch(portrait_set, [TARGET, "in a red hat"]), torch.Generator().manual_seed(1), 0)
    m = context.extras["sfcm"]
    assert m.shape == (2, 8, 8)
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0 and float(m.max()) > 0.5
    assert set(terms) == {"diff", "attn", "unet", "re"}


def test_ablation_switches_remove_their_terms(original_weights_task, portrait_set):
    task = original_weights_task
    original = task.config
    try:
        task.config = dataclasses.replace(original, no_attn=True, no_unet=True, direct_clip=True)
        terms, _ = task.compute_losses(_batch(portrait_set, [TARGET, TARGET]), torch.Generator().manual_seed(1), 0)
        assert set(terms) == {"diff", "clip"}
        task.config = dataclasses.replace(original, no_re=True)
        terms, _ = task.compute_losses(_batch(portrait_set, [TARGET, TARGET]), torch.Generator().manual_seed(1), 0)
        assert set(terms) == {"diff", "attn", "unet"}
    finally:
        task.config = original
