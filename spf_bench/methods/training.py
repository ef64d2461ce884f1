"""Small checkpoints for the methods a run needs, trained with spf-train and cached.

On the tiny default and on the synthetic world a user brings no checkpoints, so
``spf-bench run`` trains each method it needs here. On tiny: a few optimizer steps on a small
training set that the base model draws from composed captions (a caption seed disjoint from
the test triples'). On synth: enough steps for the world's pipeline to learn something, on
portraits the world's renderer draws with their target (ground truth, not the base model's
guess), captioned as the synth test triples are, from a seed range of its own. Every output lands in
the cache folder under a key that hashes the trainer, its config, the training data, the
base model, the checkpoint it starts from and the spf-train source itself, so a second run
reuses it and any change retrains it. A checkpoint is trained in a ``.partial`` folder and
renamed into place when finished: a killed training never looks finished.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from spf_bench.core.atomic import atomic_folder
from spf_bench.generation.base_model import base_sha256, load_base
from spf_bench.triples.captions import compose_triples
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json, hash_path, hash_path_cached
from spf_bench.methods.registry import TrainRecipe, get_method
from spf_bench.generation.protocol import WEIGHT_SOURCES, WORLD_RENDERS, settings_for, source_record
from spf_bench.core import paths
from spf_bench.zoo import registry

# trainer name -> (module, function, config class); the function takes (config, report=...).
TRAINERS: dict[str, tuple[str, str, str]] = {
    "stage1": ("spf_train.stage1", "train_stage1", "Stage1Config"),
    "stage2": ("spf_train.stage2", "train_stage2", "Stage2Config"),
    "lora": ("spf_train.baselines", "train_lora", "LoraTrainConfig"),
    "adalora": ("spf_train.baselines", "train_adalora", "AdaLoraTrainConfig"),
    "tokencompose": ("spf_train.tokencompose.train", "train_tokencompose", "TokenComposeConfig"),
}
TRAIN_CAPTION_SEED = 10_000  # far from the test sets' default seeds, so train and test captions differ
_DONE = ".spf-trained"


def register_trainer(name: str, module: str, function: str, config_class: str) -> None:
    """Make ``TrainRecipe(trainer=name)`` train with ``module.function(config_class(...))``."""
    TRAINERS[name] = (module, function, config_class)


@dataclass(frozen=True)
class QuickTraining:
    """How the automatic checkpoints are trained; a field left None takes the weight
    source's default from ``QUICK_DEFAULTS`` (see :meth:`resolved`)."""

    steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    n_images: int | None = None
    image_steps: int | None = None  # sampling steps of training images the base model draws (tiny)
    seed: int = 0

    def resolved(self, weights: str) -> QuickTraining:
        if weights not in QUICK_DEFAULTS:
            raise SpfError(f"Checkpoints are only trained automatically on the {' or '.join(QUICK_DEFAULTS)} weights, not on '{weights}'.")
        default = QUICK_DEFAULTS[weights]
        return replace(self, **{f.name: getattr(default, f.name) for f in fields(self) if getattr(self, f.name) is None})

    def overrides(self, device: str = "cpu") -> dict:
        """spf-train config fields; ``device`` is the run's (cpu, cuda or cuda:N)."""
        return {"max_steps": self.steps, "train_batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "seed": self.seed, "checkpoint_every": 0, "resume": "none", "mixed_precision": "no", "device": device}


# Each weight source's quick-training defaults (its record in spf_bench.generation.protocol).
QUICK_DEFAULTS = {name: QuickTraining(**record.quick_training)
                  for name, record in WEIGHT_SOURCES.items() if record.quick_training is not None}


def trained_root() -> Path:
    return paths.cache_dir() / "trained"


def checkpoint_for(method: str, weights: str, quick: QuickTraining = QuickTraining(), report=print,
                   device: str = "cpu") -> Path:
    """The cached checkpoint of ``method`` on ``weights``, trained on ``device`` (with what it
    starts from) if absent. The device is part of the key: a GPU's rounding differs from the CPU's."""
    spec = get_method(method)
    if spec.recipe is None:
        raise SpfError(f"The method '{method}' has no training recipe, so its checkpoint must be given with --checkpoint {method}=PATH.")
    if weights not in QUICK_DEFAULTS:
        raise SpfError(f"The method '{method}' needs a checkpoint, and checkpoints are only trained automatically on the "
                       f"{' or '.join(QUICK_DEFAULTS)} weights; give --checkpoint {method}=PATH for --weights {weights}.")
    quick = quick.resolved(weights)
    recipe = spec.recipe
    init = None
    if recipe.init_from is not None:
        init = checkpoint_for(recipe.init_from, weights, quick, report, device)
    data = training_data(weights, quick)
    models = _model_specs(weights)
    config = {**quick.overrides(str(device)), **recipe.overrides, "data_dir": str(data), **models}
    if recipe.trainer == "stage2":
        config["init_from"] = str(init) if init is not None else "original"
    # Paths stay out of the key (the same data or model elsewhere is the same checkpoint);
    # what they hold is in it, by hash.
    paths_in_config = ("data_dir", "init_from", *models)
    key = hash_json({
        "trainer": recipe.trainer, "config": {k: v for k, v in config.items() if k not in paths_in_config},
        "weights": weights, "data": hash_path_cached(data), "init": hash_path_cached(init) if init is not None else None,
        "base": base_sha256(weights), "clip": _clip_hash(weights), "code": _trainer_code_hash(),
    })
    out = trained_root() / f"{method}-{key[:16]}"
    if (out / _DONE).is_file():
        return out
    report(f"training a small '{method}' checkpoint ({recipe.trainer}, {quick.steps} steps, batch {quick.batch_size}) into {out}")
    _train(recipe, config, out, report)
    return out


def run_trainer(trainer: str, config: dict, output_dir: Path, source: str, report) -> None:
    """Run spf-train's ``trainer`` on ``config`` (a plain dict, checked by its config class)
    into ``output_dir``; ``source`` names the config in error sentences."""
    if trainer not in TRAINERS:
        raise SpfError(f"Unknown trainer '{trainer}'; known trainers are: {', '.join(TRAINERS)}.")
    module_name, function, config_class = TRAINERS[trainer]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SpfError(f"Training '{trainer}' needs {module_name}, which is not installed ({exc.name}).") from None
    from spf_train.config import from_dict

    cls = getattr(module, config_class, None) or getattr(importlib.import_module("spf_train.config"), config_class)
    getattr(module, function)(from_dict(cls, {**config, "output_dir": str(output_dir)}, source=source), report=report)


def _train(recipe: TrainRecipe, config: dict, out: Path, report) -> None:
    # Checkpoints are off, so a killed attempt has nothing to resume from: its temporary
    # folder is swept by the next run and training starts over.
    with atomic_folder(out) as partial:
        run_trainer(recipe.trainer, config, partial, f"the '{recipe.trainer}' recipe", report)
        (partial / _DONE).write_text(hash_json(config) + "\n")


def _model_specs(weights: str) -> dict:
    """spf-train's base_model / clip_model for ``weights``: spf-train knows the zoo's own
    sources by name, and takes the synthetic world's shipped networks as folders."""
    if not source_record(weights).folder_checkpoints:
        return {"base_model": weights, "clip_model": weights}
    from spf_bench.zoo import synth_source

    for name in ("sd15", "clip"):
        synth_source.verify(name)  # spf-train reads the folders directly, past the zoo's hash check
    return {"base_model": str(registry.folder_for("sd15", weights)), "clip_model": str(registry.folder_for("clip", weights))}


def _clip_hash(weights: str) -> str | None:
    # The tiny CLIP is a pure function of its seed (in the code hash); the world's is a file.
    return hash_path_cached(registry.folder_for("clip", weights)) if source_record(weights).folder_checkpoints else None


def training_data(weights: str, quick: QuickTraining) -> Path:
    """A small portrait training set for ``weights``, cached by what makes it."""
    quick = quick.resolved(weights)
    if source_record(weights).training_images == WORLD_RENDERS:
        return _rendered_training_data(weights, quick)
    from spf_train.data import make_training_set

    triples = compose_triples(quick.n_images, seed=TRAIN_CAPTION_SEED)
    captions = [(t.base_caption, t.target_caption, t.category) for t in triples]
    key = hash_json({"captions": captions, "base": base_sha256(weights), "steps": quick.image_steps, "seed": quick.seed})
    return _cached_folder(key, lambda partial: make_training_set(load_base(weights), captions, partial,
                                                                 steps=quick.image_steps, seed=quick.seed))


def _rendered_training_data(weights: str, quick: QuickTraining) -> Path:
    """The world's customization set for its synth targets (``spf_bench.world.custom_sets``'
    defaults: a few identities and biased backgrounds, shirts and styles, as a user's own
    photos would have), rendered."""
    from spf_bench.triples import world as synth_triples
    from spf_bench.world import custom_sets

    seed, size = TRAIN_CAPTION_SEED + quick.seed, settings_for(weights).height
    # The renderer and caption code are what make the set, so their source is in the key.
    import spf_bench.world as world

    sources = sorted(Path(world.__file__).parent.glob("*.py")) + [Path(synth_triples.__file__)]
    code = hash_json({p.name: hash_path(p) for p in sources})
    key = hash_json({"synth": True, "n": quick.n_images, "seed": seed, "size": size, "code": code})
    spec = custom_sets.CustomSet(images=quick.n_images, seed=seed)
    return _cached_folder(key, lambda partial: custom_sets.write(partial, spec, size))


def _made(folder: Path) -> bool:
    """A finished cached folder; its key names its content, so any finished copy is the one wanted."""
    return (folder / _DONE).is_file()


def _cached_folder(key: str, make) -> Path:
    """``paths.cache_dir()/train-data/<key>``, made by ``make(folder)`` when absent."""
    folder = paths.cache_dir() / "train-data" / key[:16]
    if _made(folder):
        return folder
    with atomic_folder(folder, finished=_made) as partial:
        make(partial)
        (partial / _DONE).write_text(key + "\n")
    return folder


def _trainer_code_hash() -> str:
    # The trained checkpoint depends on spf-train's code as much as on its config.
    import spf_train

    root = Path(spf_train.__file__).parent
    return hash_json({p.relative_to(root).as_posix(): hash_path(p) for p in sorted(root.rglob("*.py"))})
