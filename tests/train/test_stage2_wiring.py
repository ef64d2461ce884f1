"""The stage-2 step as wired: real optimizer steps through the training loop, checked against
an independent recomputation of the SFCM (Eq. 8-10) and of the masked alignment losses
(Eq. 6, 7, 11) from what the step captured; the M = 0 ablation through the loss; the frozen
reference path holding the original weights when training starts from a stage-1 folder; and
``spf-train stage2`` from the command line to a checkpoint the method registry loads."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from spf_bench import zoo
from spf_bench.methods.registry import build_method, get_method
from spf_train.cli import main as train_main
from spf_train.config import Stage2Config
from spf_train.data import make_training_set
from spf_train.sfcm import phrase_token_spans, sfcm_from_maps
from spf_train.stage2 import DualPathTask
from spf_train.loop import train
from support.training import fresh_copy

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.slow]

ROWS = [("a photo of a young woman, long brown hair, in a park", "wearing round glasses"),
        ("a man, short hair and a beard", "in a red hat")]


@pytest.fixture(scope="module")
def data(tiny_pipe, tmp_path_factory):
    return make_training_set(tiny_pipe, ROWS, tmp_path_factory.mktemp("stage2-data"), steps=2)


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1") / "naive"
    assert train_main(["stage1", "--data-dir", str(data), "--output-dir", str(out), "--max-steps", "1",
                       "--train-batch-size", "2", "--learning-rate", "1e-3", "--device", "cpu"]) == 0
    return out


def _minmax(x: torch.Tensor) -> torch.Tensor:
    low, high = x.min(), x.max()
    return (x - low) / (high - low).clamp_min(1e-8)


def _independent_sfcm(task, step: dict, b: int) -> torch.Tensor:
    """Eq. 8-10 for sample ``b`` from the captured tensors, written out here from METHOD.md;
    only the final combination (Eq. 10's M = norm(M_soft ⊙ (1 - X))) is the package's."""
    eps_res, eps_ref = step["eps_response"][b], step["eps_reference"][b]
    soft = _minmax((eps_res - eps_ref).abs().mean(dim=0))
    h, w = soft.shape
    base, target = step["base"][b], step["target"][b]
    maps, texts = [], []
    for text, tokens in phrase_token_spans(task.tokenizer, base):
        total = torch.zeros(h, w)
        for probs in step["probs"]:  # (B, N, T) head-mean probabilities per layer
            side = int(round((probs.shape[1] * h / w) ** 0.5))
            layer = probs[b, :, tokens.start:tokens.stop].mean(dim=-1).view(1, 1, side, probs.shape[1] // side)
            total += F.interpolate(layer, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        maps.append(_minmax(total / len(step["probs"])))
        texts.append(text)
    emb = F.normalize(task.clip.text_embeddings(texts + [target]).float(), dim=-1)
    weights = 1.0 - (emb[:-1] @ emb[-1]).clamp_min(0.0)
    return sfcm_from_maps(soft, torch.stack(maps), weights)


def _alignment(response: list, reference: list, maps: torch.Tensor) -> torch.Tensor:
    """sum over layers of mean((1 - M_l) ⊙ (response - reference)^2), M_l the map at the layer's grid."""
    total = torch.zeros(())
    h, w = maps.shape[-2:]
    for res, ref in zip(response, reference):
        n = res.shape[-2]
        side = int(round((n * h / w) ** 0.5))
        m = F.interpolate(maps[:, None], size=(side, n // side), mode="bilinear", align_corners=False).flatten(1)
        keep = (1.0 - m)[:, None, :, None] if res.ndim == 4 else (1.0 - m)[:, :, None]
        total = total + (keep * (res - ref) ** 2).mean()
    return total


def _train_capturing(config: Stage2Config, tiny_pipe, tiny_clip):
    """Run ``config`` through the real loop; returns the task and what each step captured."""
    task = DualPathTask(config, pipe=fresh_copy(tiny_pipe), clip=fresh_copy(tiny_clip), report=lambda *_: None)
    steps = []

    def capture(context):
        res, ref = task.response_record, task.reference_record
        steps.append({
            "eps_response": context.noise_pred.detach().clone(), "eps_reference": context.extras["eps_reference"].clone(),
            "map": None if context.extras["sfcm"] is None else context.extras["sfcm"].clone(),
            "probs": [p.clone() for p in res.probs.values()],
            "variant": ([v.detach().clone() for v in res.variant.values()], [v.clone() for v in ref.variant.values()]),
            "hidden": ([v.detach().clone() for v in res.hidden.values()], [v.clone() for v in ref.hidden.values()]),
            "base": list(context.batch["base_caption"]), "target": list(context.batch["target_caption"]),
        })
        return {}

    out = train(task, hooks=(capture,), report=lambda *_: None)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return task, steps, log


def test_stage2_steps_use_the_sfcm_recomputed_from_captured_maps(data, stage1, tiny_pipe, tiny_clip, tmp_path):
    config = Stage2Config(data_dir=str(data), output_dir=str(tmp_path / "ours"), init_from=str(stage1), max_steps=2,
                          train_batch_size=2, learning_rate=1e-3, device="cpu", no_re=True, log_every=1)
    task, steps, log = _train_capturing(config, tiny_pipe, tiny_clip)
    assert len(steps) == len(log) == 2
    for step, logged in zip(steps, log):
        expected = torch.stack([_independent_sfcm(task, step, b) for b in range(2)])
        assert step["map"].shape == expected.shape == (2, 8, 8)
        torch.testing.assert_close(step["map"], expected, atol=1e-5, rtol=0)
        # a real map: neither empty nor everywhere 1, and it differs between the two samples
        assert 0.05 < float(expected.mean()) < 0.95 and not torch.allclose(expected[0], expected[1], atol=1e-3)
        # the losses the loop logged are the masked errors under exactly this map
        assert logged["attn"] == pytest.approx(float(_alignment(*step["variant"], expected)), rel=1e-4)
        assert logged["unet"] == pytest.approx(float(_alignment(*step["hidden"], expected)), rel=1e-4)
        # ... and not those under no map at all
        assert logged["unet"] < float(_alignment(*step["hidden"], torch.zeros_like(expected))) * (1 - 1e-3)

    # the frozen reference path is the original model, bit for bit, before and after training
    original = zoo.load("sd15", source="tiny").unet.state_dict()
    reference = task.reference_unet.state_dict()
    assert reference.keys() == original.keys()
    assert all(torch.equal(reference[k], original[k]) for k in original)
    # while the response path started from the stage-1 weights, not the original ones
    from diffusers import UNet2DConditionModel

    naive = UNet2DConditionModel.from_pretrained(str(stage1), subfolder="unet").state_dict()
    assert any(not torch.equal(naive[k], original[k]) for k in original)


def test_no_sfcm_ablation_aligns_everywhere(data, stage1, tiny_pipe, tiny_clip, tmp_path):
    assert get_method("ours-no-sfcm").recipe.overrides.get("no_sfcm") is True
    config = Stage2Config(data_dir=str(data), output_dir=str(tmp_path / "no-sfcm"), init_from=str(stage1), max_steps=1,
                          train_batch_size=2, learning_rate=1e-3, device="cpu", no_re=True, no_sfcm=True, log_every=1)
    task, steps, log = _train_capturing(config, tiny_pipe, tiny_clip)
    assert task.sfcm is None
    step, logged = steps[0], log[0]
    assert step["map"] is not None and torch.count_nonzero(step["map"]) == 0
    zero = torch.zeros(2, 8, 8)
    assert logged["attn"] == pytest.approx(float(_alignment(*step["variant"], zero)), rel=1e-4)
    assert logged["unet"] == pytest.approx(float(_alignment(*step["hidden"], zero)), rel=1e-4)
    assert logged["unet"] > 0


def test_stage2_command_trains_and_the_registry_loads_its_output(data, stage1, tmp_path):
    out = tmp_path / "ours"
    code = train_main(["stage2", "--data-dir", str(data), "--init-from", str(stage1), "--output-dir", str(out),
                       "--max-steps", "1", "--train-batch-size", "2", "--learning-rate", "1e-3", "--device", "cpu"])
    assert code == 0
    saved = json.loads((out / "spf_config.json").read_text())
    assert saved["config_class"] == "Stage2Config" and saved["init_from"] == str(stage1)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert {"diff", "attn", "unet", "re"} <= set(log[0])

    model = build_method("ours", "tiny", checkpoint=out)
    from diffusers import UNet2DConditionModel

    trained = UNet2DConditionModel.from_pretrained(str(out), subfolder="unet").state_dict()
    naive = UNet2DConditionModel.from_pretrained(str(stage1), subfolder="unet").state_dict()
    loaded = model.pipe.unet.state_dict()
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    # stage 2 trains the cross-attention (the default trainable part), and only that
    changed = {k for k in trained if not torch.equal(trained[k], naive[k])}
    assert changed and all(".attn2." in k for k in changed)
