"""Where naive fine-tuning keeps what it learnt: in the cross-attention, or in the rest of the UNet.

    python benchmarks/world_pollution_site.py --out DIR [--seeds 0] [--prompts 134] [--steps 150] [--lr 3e-4]

Ours' stage 2 trains only the cross-attention projections (every ``attn2``'s to_q, to_k, to_v
and to_out; ``spf_train.trainable``). It can undo naive's pollution only if the pollution lives
there. This diagnostic asks that directly, with no training beyond naive's. Per seed, a lab
folder (``spf_bench.lab``, the customization mode on the tie set of the whole world Tab. 1:
112 portraits of 4 identities, the default biases) trains naive, and four models draw the
lab's base and customized prompts with the lab's seeds:

- ``original``: the shipped pipeline;
- ``naive``: the fine-tuned one;
- ``naive, original xattn``: naive's UNet with the original's cross-attention projections
  put back (what naive learnt outside cross-attention);
- ``original, naive xattn``: the original UNet with naive's cross-attention projections
  (what naive learnt inside it).

Measured per model (means over seeds and prompts, 95% percentile bootstrap over the prompts of
every seed): Target-Acc (the oracle reads the tie on the customized prompt), the tie drawn
unasked (base prompt), ID-Pres (the world recogniser's cosine of the original's base-prompt
image and the model's customized one, the evaluator's ID-Pres) and the same on the base
prompt (``ID base``); then the share of naive's ID-Pres fall (from the original) that each
graft carries. The drawings of ``original`` and ``naive`` are the lab's own files (a later
``synth lab`` in the same folder reuses them), the grafts' are kept beside them in ``grafts/``;
so a killed run resumes, and seeds run as separate processes into one ``--out`` are summarised
by a last call with every seed. Figures and their reading: ``docs/synth.md``,
"Where naive keeps what it learnt".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("original", "naive", "naive, original xattn", "original, naive xattn")


def cross_attention_state(unet) -> dict[str, torch.Tensor]:
    """The weights ours' stage 2 trains by default, by the trainer's own rule."""
    from spf_train.trainable import is_cross_attention_parameter

    return {name: p.detach().clone() for name, p in unet.named_parameters() if is_cross_attention_parameter(name)}


def grafted(pipe, state: dict[str, torch.Tensor]):
    """``pipe`` with ``state`` loaded into its UNet; every name must exist there."""
    _, unexpected = pipe.unet.load_state_dict(state, strict=False)
    if unexpected:
        raise SystemExit(f"cross-attention weights without a place in the UNet: {unexpected[:3]}")
    return pipe


def cosines(face, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ea = np.stack([f["embedding"] for f in face.encode(list(a))])
    eb = np.stack([f["embedding"] for f in face.encode(list(b))])
    ea /= np.linalg.norm(ea, axis=1, keepdims=True)
    eb /= np.linalg.norm(eb, axis=1, keepdims=True)
    return (ea * eb).sum(axis=1)  # NaN where no face was found: left out below


def bootstrap(per_seed: list[np.ndarray], rounds: int = 2000) -> tuple[float, float, float]:
    """Mean over seeds of per-seed means, and a 95% interval resampling prompts within seeds."""
    rng = np.random.default_rng(0)
    clean = [v[np.isfinite(v)] for v in per_seed]
    mean = float(np.mean([v.mean() for v in clean]))
    draws = [np.mean([rng.choice(v, len(v)).mean() for v in clean]) for _ in range(rounds)]
    return mean, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def measure_seed(out: Path, seed: int, args, oracle, face) -> dict[str, dict[str, np.ndarray]]:
    from spf_bench.core.atomic import atomic_path
    from spf_bench.lab.customization import Customization
    from spf_bench.lab.experiment import Lab, LabConfig
    from spf_bench.methods.registry import build_method
    from spf_bench.world.attributes import NAMES, index_of
    from spf_bench.world.measure import generate
    from spf_bench.zoo import synth_source

    config = LabConfig(customization=Customization(targets=("tie",)), train_images=112, steps=args.steps,
                       lr_full=args.lr, lr_stage2=args.lr, prompts=args.prompts, seed=seed, methods=("naive",))
    lab = Lab(out / f"seed{seed}", config, synth_source.folder("sd15"), synth_source.folder("clip"))
    lab.train("naive")
    prompts = lab.prompts()
    drawn = {"original": lab.images("original"), "naive": lab.images("naive")}
    caches = {(model, kind): lab.out / "grafts" / f"{model.replace(', ', '-').replace(' ', '_')}-{kind}.npy"
              for model in MODELS[2:] for kind in ("base", "custom")}
    if not all(path.is_file() for path in caches.values()):
        naive = lambda: build_method("naive", "synth", checkpoint=lab.checkpoint("naive")).pipe
        original = lambda: build_method("base", "synth").pipe
        pipes = {"naive, original xattn": grafted(naive(), cross_attention_state(original().unet)),
                 "original, naive xattn": grafted(original(), cross_attention_state(naive().unet))}
        for (model, kind), path in caches.items():
            if not path.is_file():
                with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a killed run keeps what it finished
                    np.save(handle, generate(pipes[model], prompts[kind], seed=seed))
    for (model, kind), path in caches.items():
        drawn.setdefault(model, {})[kind] = np.load(path)

    tie, yes = NAMES.index("tie"), index_of("tie", "yes")
    reference = drawn["original"]["base"]
    values = {}
    for model in MODELS:
        images = drawn[model]
        values[model] = {
            "Target-Acc": (oracle.predict(images["custom"])[:, tie] == yes).astype(float),
            "tie unasked": (oracle.predict(images["base"])[:, tie] == yes).astype(float),
            "ID-Pres": cosines(face, reference, images["custom"]),
            "ID base": cosines(face, reference, images["base"]),
        }
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the per-seed labs (resumable)")
    parser.add_argument("--seeds", default="0", help="comma-separated lab seeds (the whole Tab. 1: 0,1,2)")
    parser.add_argument("--prompts", type=int, default=134)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spf_bench.metrics.backbones import make_backbone
    from spf_bench.world.ship import load_shipped_oracle

    oracle, face = load_shipped_oracle(), make_backbone("face", "synth")
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed = [measure_seed(args.out, s, args, oracle, face) for s in seeds]
    metrics = ("Target-Acc", "tie unasked", "ID-Pres", "ID base")
    summary = {m: {k: bootstrap([seed[m][k] for seed in per_seed]) for k in metrics} for m in MODELS}

    print(f"seeds {seeds}, {args.prompts} prompts each; mean [95% interval]")
    print("| model | " + " | ".join(metrics) + " |")
    print("|---|" + "---|" * len(metrics))
    for m in MODELS:
        print(f"| {m} | " + " | ".join(f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in summary[m].values()) + " |")
    fall = summary["original"]["ID-Pres"][0] - summary["naive"]["ID-Pres"][0]
    for m in MODELS[2:]:
        carried = (summary["original"]["ID-Pres"][0] - summary[m]["ID-Pres"][0]) / fall if fall > 0 else float("nan")
        print(f"{m}: carries {carried:.0%} of naive's ID-Pres fall ({fall:.3f})")
    print(json.dumps({"seeds": seeds, "prompts": args.prompts, "summary": summary}))


if __name__ == "__main__":
    main()
