"""The pollution lab's methods: one small table, and the training of one entry.

A lab method is a method of the suite's registry (:mod:`spf_bench.methods.registry`), whose training
recipe (trainer, config overrides, the method it starts from) and pipeline builder the lab
reuses as they are, plus the fine-tuning set it trains on. The lab only adds what makes the
comparison fair: every method gets the lab's steps, batch and seed; the learning rate is
the lab's per kind of trainable part. Ablations of ours are therefore exactly the registry's
Stage2Config variants (``no_sfcm``, ``no_attn``, ``no_unet``, ``no_re``, ``direct_clip``,
``mask_variant``, ``trainable=full``, ``init_from=original``), with the same budget as ours' stage 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from spf_bench.core.errors import SpfError

CORRELATED, CONTROL = "correlated", "control"


@dataclass(frozen=True)
class LabMethod:
    suite: str  # the spf_bench.methods.registry entry: its recipe trains it, its builder loads it
    data: str = CORRELATED  # the fine-tuning set: CORRELATED or CONTROL
    summary: str = ""


# Which LabConfig learning rate each trainer gets: the lab trains these trainers' methods.
_LEARNING_RATE = {"stage1": "lr_full", "stage2": "lr_stage2", "lora": "lr_adapter", "adalora": "lr_adapter",
                  "tokencompose": "lr_full"}
# The lab's own method, beside the registry's: the suite's stage 1 on the set without the correlation.
CONTROL_METHOD = "control"


def _lab_methods() -> dict[str, LabMethod]:
    """Every registry method the lab can compare: those it can train (the recipe's trainer has
    a lab learning rate) and the training-free ones (Magnet), under their registry names and
    summaries, with the control placed after its stage-1 method. The base model is the lab's
    original, not a method of its own."""
    from spf_bench.methods.registry import known_methods

    out: dict[str, LabMethod] = {}
    for name, spec in known_methods().items():
        trainable = spec.recipe is not None and spec.recipe.trainer in _LEARNING_RATE
        if trainable or (spec.recipe is None and not spec.draws_originals):
            out[name] = LabMethod(name, summary=spec.summary)
        if trainable and spec.recipe.trainer == "stage1" and spec.recipe.init_from is None and CONTROL_METHOD not in out:
            out[CONTROL_METHOD] = LabMethod(name, CONTROL, f"{name} on the set without the correlation")
    return out


LAB_METHODS: dict[str, LabMethod] = _lab_methods()
DEFAULT_METHODS = ("naive", "control", "ours", "lora", "adalora")
# The world Tab. 1 (spf_bench.lab.table): the paper's Tab. 1 rows, the control and the mask variants.
TAB1_METHODS = ("naive", "control", "lora", "adalora", "tokencompose", "magnet", "ours", "ours-no-attn",
                "ours-no-unet", "ours-no-re", "ours-no-sfcm", "ours-direct-clip", "ours-mask-oracle",
                "ours-mask-inverted", "ours-mask-ones")
DONE = ".lab-trained"  # written last: a folder without it is an unfinished (resumable) training


def check_methods(methods) -> tuple[str, ...]:
    """The lab methods named, old names replaced by the suite's (spf_bench.methods.METHOD_ALIASES)."""
    from spf_bench.methods.registry import canonical_method

    methods = tuple(canonical_method(m) for m in methods)
    unknown = [m for m in methods if m not in LAB_METHODS]
    if unknown:
        raise SpfError(f"Unknown lab method '{unknown[0]}'; the lab trains: {', '.join(LAB_METHODS)}.")
    if not methods:
        raise SpfError("No lab method was given; name at least one of: " + ", ".join(LAB_METHODS) + ".")
    return tuple(methods)


def trains(name: str) -> bool:
    """Whether lab method ``name`` has a checkpoint to train (Magnet, training-free, has none)."""
    from spf_bench.methods.registry import get_method

    return get_method(LAB_METHODS[name].suite).recipe is not None


def _recipe(name: str):
    from spf_bench.methods.registry import get_method

    recipe = get_method(LAB_METHODS[name].suite).recipe
    if recipe is None or recipe.trainer not in _LEARNING_RATE:
        raise SpfError(f"The lab cannot train '{name}': its suite method has no {'/'.join(_LEARNING_RATE)} recipe.")
    return recipe


def start_of(name: str) -> str | None:
    """The lab method whose checkpoint ``name`` starts from (None: the original weights)."""
    start = _recipe(name).init_from
    if start is None:
        return None
    # Lab methods carry their registry names, so the method a recipe starts from is the lab's
    # method of that name, trained on the lab's data.
    if start not in LAB_METHODS:
        raise SpfError(f"The lab cannot train '{name}': it starts from '{start}', which the lab does not train.")
    return start


def training_config(name: str, lab, data: Path, start: Path | None, base_model: Path, clip_model: Path) -> dict:
    """The spf-train config of lab method ``name`` (``lab``: a LabConfig), as a plain dict."""
    recipe = _recipe(name)
    config = {
        **recipe.overrides,
        "data_dir": str(data), "base_model": str(base_model), "clip_model": str(clip_model),
        "train_batch_size": lab.batch, "learning_rate": getattr(lab, _LEARNING_RATE[recipe.trainer]),
        "max_steps": lab.steps, "checkpoint_every": max(1, lab.steps // 3), "checkpoints_total_limit": 1,
        "seed": lab.seed, "device": "cpu",
    }
    if recipe.trainer == "stage2":
        config["init_from"] = str(start) if start is not None else "original"
        if lab.stage2_steps is not None:
            config.update(max_steps=lab.stage2_steps, checkpoint_every=max(1, lab.stage2_steps // 3))
    if recipe.trainer == "tokencompose":
        # One micro-batch a step like every other method (its own default accumulates four).
        config["gradient_accumulation_steps"] = 1
    if recipe.trainer == "adalora":
        # AdaLoRA's rank schedule: a fifth of the steps of warm-up, a fifth with final ranks.
        config.update(tinit=lab.steps // 5, tfinal=lab.steps // 5)
    return config


def identity(config: dict, base_sha256: str, clip_sha256: str | None = None, start_sha256: str | None = None) -> dict:
    """What makes a checkpoint: its config without the lab's own paths, the base weights
    (the shipped world may be retrained under the same path), for a trainer that uses the
    CLIP (stage 2: the map's relevance weights and the response loss) the CLIP's, and the
    files of the finished checkpoint it starts from, so that a checkpoint is never reused on
    top of a start that was deleted and trained again to other weights."""
    made_of = {"config": {k: v for k, v in config.items() if k not in _PATHS}, "base_sha256": base_sha256}
    if clip_sha256 is not None:
        made_of["clip_sha256"] = clip_sha256
    if start_sha256 is not None:
        made_of["start_sha256"] = start_sha256
    return made_of


def uses_clip(name: str) -> bool:
    """Whether lab method ``name``'s training reads the CLIP."""
    return _recipe(name).trainer == "stage2"


_PATHS = ("data_dir", "base_model", "clip_model", "init_from", "output_dir")


def trained(folder: Path, made_of: dict) -> bool:
    """Whether ``folder`` holds a finished training made of ``made_of`` (see :func:`identity`)."""
    marker = Path(folder) / DONE
    if not marker.is_file():
        return False
    if json.loads(marker.read_text()) != made_of:
        raise SpfError(f"{folder} was trained with other settings, base weights, CLIP or starting checkpoint than this lab uses; "
                       "use another --out folder.")
    return True


def train(name: str, config: dict, folder: Path, made_of: dict, report: Callable = print) -> Path:
    """Run the trainer of lab method ``name`` into ``folder`` (resuming its checkpoints) and
    mark it finished with ``made_of``."""
    from spf_bench.methods.training import run_trainer

    trainer = _recipe(name).trainer
    report(f"lab: training '{name}' ({trainer}, {config['max_steps']} steps) into {folder}")
    run_trainer(trainer, config, Path(folder), f"the lab's '{name}' config", report)
    (Path(folder) / DONE).write_text(json.dumps(made_of, indent=1, sort_keys=True) + "\n")
    return Path(folder)
