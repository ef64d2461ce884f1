"""How fast naive fine-tuning teaches the world's novel attributes, on a customization set.

    python benchmarks/world_teach.py --out DIR [--targets tie] [--lr 3e-4] [--steps 150,450]
                                     [--base FOLDER] [--prompts 20]

Stage 1 (the whole UNet, batch 8) trains on ``custom_sets.CustomSet(images=112, targets=...)``
with the checkpoint kept between the listed step counts (each count resumes the previous
one); after each, the checkpoint draws every taught attribute on ``--prompts`` random
known-world captions with its phrase added (guidance 2, 20 steps, seeds 0..) and the oracle
says how often it shows; the same captions drawn without the phrase say how often it shows
unasked (a checkpoint that draws its target everywhere has not bound the word). ``--base`` replaces the shipped pipeline folder (to try a rebuilt
VAE or text encoder). One JSON line per step count. Figures and their reading: docs/synth.md,
"Can fine-tuning teach the novel attributes?".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the set and the checkpoint (resumable)")
    parser.add_argument("--targets", default=None, help="comma-separated novel attributes taught (default: all five)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", default="150,450", help="comma-separated step counts to measure at, increasing")
    parser.add_argument("--base", type=Path, default=None, help="a world pipeline folder in place of the shipped one")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spf_bench.methods.registry import build_method
    from spf_bench.methods.training import run_trainer
    from spf_bench.world import custom_sets
    from spf_bench.world.attributes import NAMES, NOVEL_NAMES, index_of
    from spf_bench.world.captions import attribute_phrase
    from spf_bench.world.measure import generate, random_captions
    from spf_bench.world.ship import load_shipped_oracle
    from spf_bench.zoo import synth_source

    targets = tuple(t.strip() for t in args.targets.split(",")) if args.targets else NOVEL_NAMES
    steps = [int(s) for s in args.steps.split(",")]
    data, checkpoint = args.out / "set", args.out / "naive"
    if not (data / "metadata.jsonl").is_file():
        custom_sets.write(data, custom_sets.CustomSet(images=112, seed=10_000, targets=targets), 32)
    base = args.base or synth_source.folder("sd15")
    oracle, captions = load_shipped_oracle(), random_captions(args.prompts, 5)
    for count in steps:
        started = time.perf_counter()
        config = {"data_dir": str(data), "base_model": str(base), "clip_model": str(synth_source.folder("clip")),
                  "train_batch_size": 8, "learning_rate": args.lr, "max_steps": count, "checkpoint_every": steps[0],
                  "checkpoints_total_limit": 1, "seed": 0, "device": "cpu", "resume": "latest", "mixed_precision": "no"}
        run_trainer("stage1", config, checkpoint, "world_teach", lambda *a, **k: None)
        trained = time.perf_counter() - started
        model = build_method("naive", "synth", checkpoint=checkpoint)
        # The same captions without any phrase: a target drawn there was not bound to its word.
        unasked_labels = oracle.predict(generate(model.pipe, captions, 0))
        drawn, unasked = {}, {}
        for name in targets:
            images = generate(model.pipe, [f"{c}, {attribute_phrase(name, 'yes')}" for c in captions], 0)
            column, yes = NAMES.index(name), index_of(name, "yes")
            drawn[name] = float((oracle.predict(images)[:, column] == yes).mean())
            unasked[name] = float((unasked_labels[:, column] == yes).mean())
        print(json.dumps({"lr": args.lr, "steps": count, "train_s": round(trained), "drawn": drawn,
                          "mean": float(np.mean(list(drawn.values()))), "drawn_unasked": unasked,
                          "mean_unasked": float(np.mean(list(unasked.values())))}), flush=True)


if __name__ == "__main__":
    main()
