"""``spf-bench synth``: the synthetic portrait world.

``synth train`` rebuilds every model of the world from seeds into a work folder (resumable:
run it again after an interruption), writing the recipe, the figures and, with ``--ship``,
copying the weights and their sha256 into the package. ``synth check`` verifies the shipped
weights and measures them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spf_bench.commands.synth_options import (add_customization_options, add_lab_options, customization_fields, lab_design,
                                              metric_list as _metrics, stage2_budget)
from spf_bench.core.errors import SpfError


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="train or check the synthetic portrait world")
    sub = parser.add_subparsers(dest="synth_command", required=True, metavar="SYNTH_COMMAND")
    train = sub.add_parser("train", help="train the world's models from seeds (resumable)")
    train.add_argument("--work", type=Path, required=True, help="folder for the rendered set, checkpoints, log and trained weights")
    train.add_argument("--stages", default="oracle,identity,clip,clip_novel,diffusion,decoder_novel", help="comma-separated stages to run (default: all, in order)")
    train.add_argument("--adopt", default="",
                       help="comma-separated stages taken over from the shipped weights instead of trained, e.g. "
                            "oracle,clip,clip_novel,diffusion,decoder_novel to retrain only the identity embedder")
    train.add_argument("--scale", type=float, default=1.0, help="multiply every stage's steps (for quick trials)")
    train.add_argument("--train-images", type=int, default=None, help="size of each rendered training set, known and world (default: the recipe's)")
    train.add_argument("--threads", type=int, default=1,
                       help="torch threads (default 1: on a shared machine, more threads than free cores slow training down)")
    train.add_argument("--ship", action="store_true", help="copy the finished weights and hashes into the package")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.set_defaults(func=run_train)
    check = sub.add_parser("check", help="verify the shipped weights' hashes and measure the oracle and the pipeline")
    check.add_argument("--captions", type=int, default=64, help="random captions for the pipeline's accuracy (default 64)")
    check.set_defaults(func=run_check)
    lab = sub.add_parser("lab", help="measure semantic pollution: fine-tune on correlated data (or, with --customization, on a "
                                     "customization set), compare methods")
    lab.add_argument("--out", type=Path, required=True, help="folder for the sets, checkpoints, images and summary (resumable)")
    from spf_bench.lab.methods import DEFAULT_METHODS, LAB_METHODS  # the registry's trainable methods

    add_lab_options(lab, methods_default=",".join(DEFAULT_METHODS),
                    methods_help=f"comma-separated lab methods, of: {', '.join(LAB_METHODS)} (default: {','.join(DEFAULT_METHODS)})",
                    prompts_default=100, prompts_help="base prompts each model draws (default 100)")
    lab.set_defaults(func=run_lab)
    custom = sub.add_parser("customset", help="render a customization set that teaches the novel attributes from a narrow, "
                                              "polluting distribution (and, with --control, its unbiased control)")
    custom.add_argument("--out", type=Path, required=True, help="folder for the images, metadata.jsonl and customization.json")
    add_customization_options(custom)
    custom.add_argument("--images", type=int, default=112, help="portraits in the set (default 112)")
    custom.add_argument("--seed", type=int, default=0, help="seed of the whole set (default 0)")
    custom.add_argument("--control", action="store_true", help="the control set: the same attributes, no bias, identities from the whole range")
    custom.set_defaults(func=run_customset)
    from spf_bench.commands import synth_table

    synth_table.register(sub)


def _recipe(args: argparse.Namespace):
    from spf_bench.world.recipe import Recipe

    recipe = Recipe()
    if args.scale != 1.0:
        if args.scale <= 0:
            raise SpfError(f"--scale must be positive, got {args.scale}.")
        recipe = recipe.scaled(args.scale)
    if args.train_images is not None:
        if args.train_images < 8:
            raise SpfError(f"--train-images must be at least 8, got {args.train_images}.")
        recipe.train_images = recipe.world_images = args.train_images  # both rendered sets
    return recipe


def run_train(args: argparse.Namespace) -> int:
    import torch

    from spf_bench.world.trainer import STAGES, WorldTrainer

    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SpfError(f"Unknown stage '{unknown[0]}'; the stages are: {', '.join(STAGES)}.")
    torch.set_num_threads(max(1, args.threads))
    trainer = WorldTrainer(args.work, _recipe(args))
    trainer.adopt(tuple(s.strip() for s in args.adopt.split(",") if s.strip()))
    figures = trainer.run(stages)
    (Path(args.work) / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    if args.ship:
        from spf_bench.world.ship import ship

        missing = [s for s in STAGES if not trainer.done(s)]
        if missing:
            raise SpfError(f"--ship needs every stage finished; still to run: {', '.join(missing)}.")
        print(f"shipped to {ship(args.work, trainer.run(STAGES))}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from spf_bench import zoo
    from spf_bench.world import measure
    from spf_bench.world.ship import load_shipped_oracle
    from spf_bench.zoo import synth_source

    oracle = load_shipped_oracle()
    for name in synth_source.world_networks():
        synth_source.verify(name)
        print(f"{name}: hashes match")
    acc = measure.oracle_accuracy(oracle)
    print("oracle on 500 fresh renders: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    pipe = zoo.load("sd15", source="synth")
    result = measure.pipeline_accuracy(pipe, oracle, n=args.captions)
    print(f"pipeline: mean oracle accuracy {result['mean']:.3f} on {result['n']} captions (chance {result['chance']:.3f}, guidance {result['guidance']})")
    print("  per attribute: " + ", ".join(f"{k} {v:.2f}" for k, v in result["per_attribute"].items()))
    from spf_bench.world import capacity

    round_trip = capacity.vae_round_trip(pipe.vae, oracle)
    reading = capacity.text_reading(pipe.tokenizer, pipe.text_encoder)
    print("what the frozen parts carry (VAE round trip of 200 fresh renders; text encoder's reading of each content word):")
    print(capacity.novel_summary(round_trip, reading))
    novel = measure.novel_draw_rates(pipe, oracle, n=args.captions)
    print(f"novel attributes drawn when asked ({args.captions} captions each; 95% Wilson interval):")
    for name, r in novel.items():
        print(f"  {name} ('{r['phrase']}'): {r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    return 0


def run_lab(args: argparse.Namespace) -> int:
    import torch

    from spf_bench.metrics import METRIC_ORDER
    from spf_bench.lab.experiment import Lab, LabConfig
    from spf_bench.lab.methods import check_methods
    from spf_bench.world.ship import load_shipped_oracle
    from spf_bench.zoo import synth_source

    torch.set_num_threads(max(1, args.threads))
    design = lab_design(args)
    methods = check_methods(tuple(m.strip() for m in args.methods.split(",") if m.strip()))
    config = LabConfig(**design, **stage2_budget(args), steps=args.steps, prompts=args.prompts, methods=methods,
                       metrics=_metrics(args.metrics, METRIC_ORDER))
    for name in ("sd15", "clip"):
        synth_source.verify(name)
    lab = Lab(args.out, config, synth_source.folder("sd15"), synth_source.folder("clip"))
    summary = lab.measure(load_shipped_oracle())
    print(json.dumps(summary["verdict"], indent=1))
    print(f"summary: {Path(args.out) / 'summary.json'} and summary.md, grid: {Path(args.out) / 'grid.png'} (rows: grid.txt)")
    return 0


def run_customset(args: argparse.Namespace) -> int:
    from spf_bench.world.custom_sets import CustomSet, write

    spec = CustomSet(images=args.images, seed=args.seed, control=args.control, **customization_fields(args))
    if (args.out / "metadata.jsonl").exists():
        raise SpfError(f"{args.out} already holds a set (metadata.jsonl); choose another --out folder.")
    folder = write(args.out, spec)
    held = json.loads((folder / "customization.json").read_text())["held"]
    print(f"wrote {held['portraits']} portraits of {held['distinct_identities']} identities to {folder}")
    for bias in spec.biases:
        h = held[bias.attribute]
        print(f"  {bias.attribute}: " + ", ".join(f"{v} {s:.2f}" for v, s in h["shares"].items()) + f"; said in {h['said_in_captions']:.0%} of captions")
    return 0
