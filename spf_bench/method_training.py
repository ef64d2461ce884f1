"""Small checkpoints for the methods a run needs, trained with spf-train and cached.

On the tiny default a user brings no checkpoints, so ``spf-bench run`` trains each method
it needs here: a few optimizer steps on a small training set that the base model draws from
composed captions (a caption seed disjoint from the test triples'). Every output lands in
the cache folder under a key that hashes the trainer, its config, the training data, the
base model, the checkpoint it starts from and the spf-train source itself, so a second run
reuses it and any change retrains it. A checkpoint is trained in a ``.partial`` folder and
renamed into place when finished: a killed training never looks finished.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from .base_model import base_sha256, load_base
from .captions import compose_triples
from .errors import SpfError
from .fingerprint import hash_json, hash_path, hash_path_cached
from .methods import TrainRecipe, get_method
from .zoo import paths

# trainer name -> (module, function, config class); the function takes (config, report=...).
TRAINERS: dict[str, tuple[str, str, str]] = {
    "stage1": ("spf_train.stage1", "train_stage1", "Stage1Config"),
    "stage2": ("spf_train.stage2", "train_stage2", "Stage2Config"),
    "lora": ("spf_train.baselines", "train_lora", "LoraTrainConfig"),
    "adalora": ("spf_train.baselines", "train_adalora", "AdaLoraTrainConfig"),
    "tokencompose": ("spf_train.tokencompose", "train_tokencompose", "TokenComposeConfig"),
}
TRAIN_CAPTION_SEED = 10_000  # far from the test sets' default seeds, so train and test captions differ
_DONE = ".spf-trained"


def register_trainer(name: str, module: str, function: str, config_class: str) -> None:
    """Make ``TrainRecipe(trainer=name)`` train with ``module.function(config_class(...))``."""
    TRAINERS[name] = (module, function, config_class)


@dataclass(frozen=True)
class QuickTraining:
    """How the automatic checkpoints are trained: small and fast, on the tiny model."""

    steps: int = 4
    batch_size: int = 2
    learning_rate: float = 1e-4  # few steps at the paper's 1e-5 would leave the weights as they were
    n_images: int = 8
    image_steps: int = 4  # sampling steps of the training images
    seed: int = 0

    def overrides(self) -> dict:
        return {"max_steps": self.steps, "train_batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "seed": self.seed, "checkpoint_every": 0, "resume": "none", "mixed_precision": "no", "device": "cpu"}


def trained_root() -> Path:
    return paths.cache_dir() / "trained"


def checkpoint_for(method: str, weights: str, quick: QuickTraining = QuickTraining(), report=print) -> Path:
    """The cached checkpoint of ``method`` on ``weights``, training it (and what it starts from) if absent."""
    spec = get_method(method)
    if spec.recipe is None:
        raise SpfError(f"The method '{method}' has no training recipe, so its checkpoint must be given with --checkpoint {method}=PATH.")
    if weights != "tiny":
        raise SpfError(f"The method '{method}' needs a checkpoint, and checkpoints are only trained automatically on the "
                       f"tiny weights; give --checkpoint {method}=PATH for --weights {weights}.")
    recipe = spec.recipe
    init = None
    if recipe.init_from is not None:
        init = checkpoint_for(recipe.init_from, weights, quick, report)
    data = training_data(weights, quick)
    config = {**quick.overrides(), **recipe.overrides, "data_dir": str(data), "base_model": weights, "clip_model": weights}
    if recipe.trainer == "stage2":
        config["init_from"] = str(init) if init is not None else "original"
    key = hash_json({
        "trainer": recipe.trainer, "config": {k: v for k, v in config.items() if k not in ("data_dir", "init_from")},
        "data": hash_path_cached(data), "init": hash_path_cached(init) if init is not None else None,
        "base": base_sha256(weights), "code": _trainer_code_hash(),
    })
    out = trained_root() / f"{method}-{key[:16]}"
    if (out / _DONE).is_file():
        return out
    report(f"training a small '{method}' checkpoint ({recipe.trainer}, {quick.steps} steps) into {out}")
    _train(recipe, config, out, report)
    return out


def _train(recipe: TrainRecipe, config: dict, out: Path, report) -> None:
    if recipe.trainer not in TRAINERS:
        raise SpfError(f"Unknown trainer '{recipe.trainer}'; known trainers are: {', '.join(TRAINERS)}.")
    module_name, function, config_class = TRAINERS[recipe.trainer]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SpfError(f"Training '{recipe.trainer}' needs {module_name}, which is not installed ({exc.name}).") from None
    from spf_train.config import from_dict

    cls = getattr(module, config_class, None) or getattr(importlib.import_module("spf_train.config"), config_class)
    partial = out.with_name(f".{out.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)  # a killed attempt; checkpoints are off, so nothing there to resume from
    config_obj = from_dict(cls, {**config, "output_dir": str(partial)}, source=f"the '{recipe.trainer}' recipe")
    getattr(module, function)(config_obj, report=report)
    (partial / _DONE).write_text(hash_json(config) + "\n")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)


def training_data(weights: str, quick: QuickTraining) -> Path:
    """A small portrait training set drawn by the base model, cached by what makes it."""
    from spf_train.data import make_training_set

    triples = compose_triples(quick.n_images, seed=TRAIN_CAPTION_SEED)
    captions = [(t.base_caption, t.target_caption, t.category) for t in triples]
    key = hash_json({"captions": captions, "base": base_sha256(weights), "steps": quick.image_steps, "seed": quick.seed})
    folder = paths.cache_dir() / "train-data" / key[:16]
    if (folder / _DONE).is_file():
        return folder
    partial = folder.with_name(f".{folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    make_training_set(load_base(weights), captions, partial, steps=quick.image_steps, seed=quick.seed)
    (partial / _DONE).write_text(key + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return folder


def _trainer_code_hash() -> str:
    # The trained checkpoint depends on spf-train's code as much as on its config.
    import spf_train

    root = Path(spf_train.__file__).parent
    return hash_json({p.relative_to(root).as_posix(): hash_path(p) for p in sorted(root.rglob("*.py"))})
