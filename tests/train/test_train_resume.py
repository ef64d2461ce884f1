"""Checkpoints, resume and the NaN guard of the shared training loop (stage 1 on tiny)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from spf_bench.core.errors import SpfError
from spf_train.config import Stage1Config
from spf_train.data import PortraitDataset, make_training_set
from spf_train.loop import LossTerm, TrainingLoop, checkpoint_steps
from spf_train.stage1 import Stage1Task
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def portrait_set(tiny_pipe, tmp_path_factory):
    folder = make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses"), ("a man, short hair", "in a hat"),
                                           ("an old man, a beard", "smiling")], tmp_path_factory.mktemp("resume-set"), steps=2)
    return PortraitDataset(folder, 64)


def _loop(tiny_pipe, dataset, out, hooks=()):
    # linear warm-up over the whole run, so a wrongly restored LR schedule changes the weights
    config = Stage1Config(output_dir=str(out), train_batch_size=1, max_steps=4, checkpoint_every=2, learning_rate=1e-3,
                          lr_scheduler="linear", lr_warmup_steps=3, seed=3, device="cpu")
    return TrainingLoop(Stage1Task(config, pipe=fresh_copy(tiny_pipe), dataset=dataset), hooks=hooks, report=lambda m: None)


def _weights(loop):
    return {k: v.detach().clone() for k, v in loop.accelerator.unwrap_model(loop.model).state_dict().items()}


@pytest.fixture(scope="module")
def runs(tiny_pipe, portrait_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-runs")
    # uninterrupted, with its state noted at step 2
    full = _loop(tiny_pipe, portrait_set, root / "full")
    full.run(stop_at=2)
    at_two = {
        "weights": _weights(full),
        "optimizer": copy.deepcopy(full.optimizer.state_dict()),
        "scheduler": copy.deepcopy(full.lr_scheduler.state_dict()),
        "generator": full.state.generator.get_state().clone(),
    }
    full.run()
    # killed after step 3 (checkpoint at 2), then a fresh process resumes
    killed = _loop(tiny_pipe, portrait_set, root / "killed")
    killed.run(stop_at=3)
    resumed = _loop(tiny_pipe, portrait_set, root / "killed")
    resumed_from = resumed.resume()
    restored = {
        "step": resumed.state.step,
        "weights": _weights(resumed),
        "optimizer": copy.deepcopy(resumed.optimizer.state_dict()),
        "scheduler": copy.deepcopy(resumed.lr_scheduler.state_dict()),
        "generator": resumed.state.generator.get_state().clone(),
    }
    resumed.run()
    return {"full": full, "at_two": at_two, "resumed": resumed, "resumed_from": resumed_from, "restored": restored}


def test_killed_and_resumed_run_equals_uninterrupted_run(runs):
    assert runs["resumed_from"].name == "step-2"
    logged = [json.loads(line)["step"] for line in (runs["resumed"].output_dir / "train_log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]  # the lost step 3 is logged once, by the resumed run
    final_full, final_resumed = _weights(runs["full"]), _weights(runs["resumed"])
    assert all(torch.equal(final_full[k], final_resumed[k]) for k in final_full)


def test_resume_restores_optimizer_schedule_and_rng_and_training_continues(runs):
    at_two, restored = runs["at_two"], runs["restored"]
    assert restored["step"] == 2
    assert all(torch.equal(at_two["weights"][k], restored["weights"][k]) for k in at_two["weights"])
    assert restored["scheduler"]["last_epoch"] == at_two["scheduler"]["last_epoch"] == 2
    assert restored["scheduler"]["_last_lr"] == at_two["scheduler"]["_last_lr"]
    assert torch.equal(restored["generator"], at_two["generator"])
    saved_state, loaded_state = at_two["optimizer"]["state"], restored["optimizer"]["state"]
    assert len(saved_state) == len(loaded_state) > 0
    for key in saved_state:
        assert torch.equal(saved_state[key]["exp_avg"], loaded_state[key]["exp_avg"])
        assert torch.equal(saved_state[key]["exp_avg_sq"], loaded_state[key]["exp_avg_sq"])
    # the weights keep changing after the resume
    final = _weights(runs["resumed"])
    changed = [k for k in final if not torch.equal(final[k], restored["weights"][k])]
    assert len(changed) > len(final) // 2


def test_nan_loss_stops_with_step_and_term_and_keeps_last_good_checkpoint(tiny_pipe, portrait_set, tmp_path):
    def poison(context):
        bad = float("nan") if context.step == 2 else 0.0  # context.step counts from 0: the third step
        return {"grounding": LossTerm(torch.tensor(bad), 1.0)}

    loop = _loop(tiny_pipe, portrait_set, tmp_path / "nan", hooks=(poison,))
    with pytest.raises(SpfError, match=r"step 3.*'grounding'.*step-2"):
        loop.run()
    assert [step for step, _ in checkpoint_steps(tmp_path / "nan")] == [2]
    assert not (tmp_path / "nan" / "model_index.json").exists()
    # the kept checkpoint resumes
    again = _loop(tiny_pipe, portrait_set, tmp_path / "nan")
    assert again.resume().name == "step-2" and again.state.step == 2


def test_gradient_accumulation_makes_one_optimizer_step_per_group_of_micro_batches(tiny_pipe, portrait_set, tmp_path):
    config = Stage1Config(output_dir=str(tmp_path), train_batch_size=1, gradient_accumulation_steps=2, max_steps=1,
                          checkpoint_every=0, learning_rate=1e-3, device="cpu")
    task = Stage1Task(config, pipe=fresh_copy(tiny_pipe), dataset=portrait_set)
    seen = []
    loop = TrainingLoop(task, hooks=(lambda ctx: seen.append(ctx.batch["index"].tolist()) or {},), report=lambda m: None)
    before = _weights(loop)
    loop.train_step()
    assert len(seen) == 2 and seen[0] != seen[1]  # two different micro-batches
    assert loop.lr_scheduler.state_dict()["last_epoch"] == 1 and loop.state.step == 1
    assert loop.optimizer.state_dict()["state"][0]["step"] == 1
    assert any(not torch.equal(before[k], v) for k, v in _weights(loop).items())
