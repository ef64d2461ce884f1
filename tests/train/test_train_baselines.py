"""The LoRA and AdaLoRA baselines: what they save and that it loads the documented way."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_train.baselines import AdaLoraTask, LoraTask
from spf_train.config import AdaLoraTrainConfig, LoraTrainConfig
from spf_train.data import PortraitDataset, make_training_set
from spf_train.loop import TrainingLoop
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def portrait_set(tiny_pipe, tmp_path_factory):
    folder = make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses"), ("a man, short hair", "in a hat")],
                               tmp_path_factory.mktemp("baseline-set"), steps=2)
    return PortraitDataset(folder, 64)


def _images(pipe, seed=7):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe("a woman, long hair, wearing glasses", num_inference_steps=2, guidance_scale=1.0,
                generator=generator, output_type="np").images


def test_lora_loads_with_diffusers_and_gives_the_training_pipelines_images(tiny_pipe, portrait_set, tmp_path):
    config = LoraTrainConfig(output_dir=str(tmp_path), train_batch_size=2, max_steps=2, checkpoint_every=0,
                             learning_rate=5e-2, device="cpu")
    task = LoraTask(config, pipe=fresh_copy(tiny_pipe), dataset=portrait_set, report=lambda m: None)
    out = TrainingLoop(task, report=lambda m: None).run()
    assert (out / "pytorch_lora_weights.safetensors").is_file() and (out / "spf_config.json").is_file()
    trained = _images(task.pipe)

    loaded = zoo.load("sd15", source="tiny")
    loaded.load_lora_weights(str(out))
    np.testing.assert_allclose(_images(loaded), trained, atol=1e-5)
    assert np.abs(_images(tiny_pipe) - trained).max() > 1e-3  # the LoRA does change the images


def test_adalora_reallocates_ranks_every_step_and_saves_the_rank_pattern(tiny_pipe, portrait_set, tmp_path):
    from peft import PeftModel

    config = AdaLoraTrainConfig(output_dir=str(tmp_path), train_batch_size=1, max_steps=4, checkpoint_every=0,
                                learning_rate=1e-2, init_r=4, target_r=2, device="cpu",
                                target_modules="to_q,to_k,to_v")
    task = AdaLoraTask(config, pipe=fresh_copy(tiny_pipe), dataset=portrait_set, report=lambda m: None)
    loop = TrainingLoop(task, report=lambda m: None)
    patterns = [copy.deepcopy(task.rank_pattern())]
    for _ in range(3):
        loop.train_step()
        patterns.append(copy.deepcopy(task.rank_pattern()))
    out = loop.run()  # the last step fixes the final budget
    final = task.rank_pattern()
    assert patterns[0] is None  # nothing allocated before training
    ranks = [sum(sum(mask) for mask in p.values()) for p in patterns[1:] + [final]]
    assert len({json.dumps(p, sort_keys=True) for p in patterns[1:] + [final]}) > 1  # re-allocated over the run
    assert ranks[-1] < ranks[0] <= 4 * len(final)  # the budget shrinks towards target_r
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["peft_type"] == "ADALORA"
    assert {k: sum(v) for k, v in saved["rank_pattern"].items()} == {
        k.replace(".default", ""): sum(v) for k, v in final.items()}
    loaded = PeftModel.from_pretrained(copy.deepcopy(tiny_pipe.unet), str(out))  # the documented way
    modules = dict(loaded.named_modules())
    for key, mask in saved["rank_pattern"].items():
        layer = modules["base_model.model." + key.removesuffix(".lora_E")]
        assert layer.lora_E["default"].shape[0] == sum(mask)  # loaded at the re-allocated rank
