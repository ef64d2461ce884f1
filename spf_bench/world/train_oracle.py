"""Training the attribute oracle from the rendered set."""

from __future__ import annotations

from pathlib import Path

import torch

from spf_bench.world import oracle
from spf_bench.world.dataset import PortraitSet
from spf_bench.world.loop import step_generator, train_steps
from spf_bench.world.recipe import Recipe


def train(recipe: Recipe, data: PortraitSet, fresh: PortraitSet, work: Path, log) -> tuple[oracle.AttributeOracle, dict]:
    stage = recipe.oracle
    torch.manual_seed(stage.seed)
    model = oracle.AttributeOracle(size=recipe.size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=1e-4)
    images = torch.from_numpy(data.images)  # uint8; converted per batch to spare memory
    labels = torch.from_numpy(data.labels)

    def step(i: int) -> torch.Tensor:
        model.train()
        gen = step_generator(stage.seed, i)
        idx = torch.randint(0, len(images), (stage.batch,), generator=gen)
        return oracle.loss_fn(model, oracle.degrade(oracle.to_input(images[idx].numpy()), gen), labels[idx])

    timing = train_steps("oracle", {"model": model}, optimizer, step, stage.steps, work / "oracle.ckpt", stage.lr, log=log)
    model.eval()
    acc = oracle.accuracy(model, fresh)
    log(f"oracle accuracy on {len(fresh)} fresh renders: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    return model, {**timing, "fresh_accuracy": acc, "parameters": sum(p.numel() for p in model.parameters())}
