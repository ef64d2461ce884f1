"""Training under ``accelerate launch`` with two CPU processes (gloo): gradients are
synchronised, the effective batch is the global one, one checkpoint is written, a killed run
resumes exactly, and processes that disagree stop together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from spf_train.data import make_training_set

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launched(tiny_pipe, spf_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist-train")
    captions = [("a woman, long hair", "wearing glasses"), ("a man, short hair", "in a hat"),
                ("an old man, a beard", "smiling"), ("a girl, curly hair", "wearing earrings")]
    data = make_training_set(tiny_pipe, captions, root / "data", steps=2)
    env = {**os.environ, "SPF_CACHE": str(spf_cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    # accelerate's --cpu flag starts a single process; --multi_gpu goes through torchrun, and
    # the loop's Accelerator(cpu=True) then joins a gloo process group
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               str(HERE / "dist_train_worker.py"), str(data), str(root / "out")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((root / "out" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    return root / "out", ranks


def test_both_processes_hold_identical_weights_after_each_step(launched):
    _, (r0, r1) = launched
    assert r0["world"] == r1["world"] == 2 and r0["stage1_step1_moved"]
    for key in ("stage1_step1", "stage1_full", "stage2_step1", "lora_step1"):
        assert r0[key] == r1[key], key


def test_the_step_applies_the_mean_gradient_of_the_global_batch(launched):
    _, (r0, r1) = launched
    # each process drew a different sample; together they are the global batch of 2
    assert r0["indices_step1"] != r1["indices_step1"]
    for r in (r0, r1):
        assert r["gradient"]["applied_vs_mean"] < 1e-5  # the averaged gradient of both micro-batches
        assert r["gradient"]["local_vs_mean"] > 1e-3  # not this process's own
    # an epoch of 4 images at 1 image per process is 2 optimizer steps
    assert r0["total_steps_for_one_epoch"] == 2


def test_a_killed_run_resumes_to_the_uninterrupted_weights_from_one_checkpoint(launched):
    out, (r0, r1) = launched
    assert r0["resumed_from"] == r1["resumed_from"] == "step-2"
    assert r0["stage1_resumed"] == r0["stage1_full"] == r1["stage1_resumed"]
    step = out / "killed" / "checkpoints" / "step-2"
    names = sorted(p.name for p in step.iterdir())
    # one copy of the weights and optimizer (main process), each process's RNG state
    assert names.count("model.safetensors") == 1 and {"random_states_0.pkl", "random_states_1.pkl"} <= set(names)
    assert not list((out / "killed" / "checkpoints").glob(".tmp-*"))
    assert (out / "killed" / "model_index.json").is_file() and (out / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_processes_that_disagree_stop_together_with_one_sentence(launched):
    _, (r0, r1) = launched
    assert r0["disagreement"] and r0["disagreement"] == r1["disagreement"]
    assert "disagree on options 'seed' (options 'seed': process 0 3, process 1 4)" in r0["disagreement"]
    assert r0["disagreement"].count(". ") == 0 and r0["disagreement"].endswith("weights.")
