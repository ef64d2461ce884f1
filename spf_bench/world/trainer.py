"""Training the whole world: the rendered set, then each model, each resumable.

Everything goes to a work folder (checkpoints, the rendered set, a log); each finished
model is exported in its shipped format into ``work/weights/<network>/`` and never redone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


from spf_bench.core.atomic import write_json_atomic
from spf_bench.world.dataset import N_IDENTITIES, cached_set, render_set
from spf_bench.world.recipe import Recipe

STAGES = ("oracle", "identity", "clip", "diffusion")


class WorldTrainer:
    def __init__(self, work: Path, recipe: Recipe):
        self.work = Path(work)
        self.recipe = recipe
        self.work.mkdir(parents=True, exist_ok=True)
        self._data = None
        self._fresh = None
        self._check_recipe()

    def _check_recipe(self) -> None:
        # The rendered set is shared by every stage, so its fields must match a resumed
        # folder's; each stage records its own settings in its done file.
        from spf_bench.core.errors import SpfError

        path = self.work / "recipe.json"
        current = self.recipe.to_dict()
        if path.is_file():
            saved = json.loads(path.read_text())
            for key in ("size", "train_images", "data_seed"):
                if saved.get(key) != current[key]:
                    raise SpfError(f"{path} was made with {key}={saved.get(key)}, not {current[key]}; use another --work folder to train with a different rendered set.")
        write_json_atomic(path, current, sort_keys=False)

    def log(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with open(self.work / "train.log", "a") as handle:
            handle.write(f"{stamp} {line}\n")
        print(f"{stamp} {line}", flush=True)

    @property
    def data(self):
        if self._data is None:
            r = self.recipe
            self._data = cached_set(self.work / "train_set.npz", r.train_images, r.data_seed, r.size)
        return self._data

    @property
    def fresh(self):
        # New seeds and identities no training portrait has.
        if self._fresh is None:
            r = self.recipe
            self._fresh = render_set(r.eval_images, r.eval_seed, r.size, identities=(N_IDENTITIES, 2 * N_IDENTITIES))
        return self._fresh

    def weights_dir(self, network: str) -> Path:
        return self.work / "weights" / network

    def done(self, stage: str) -> bool:
        return (self.work / f"{stage}.done.json").is_file()

    def mark_done(self, stage: str, figures: dict) -> None:
        path = self.work / f"{stage}.done.json"
        write_json_atomic(path, figures, sort_keys=False)

    def run(self, stages: tuple[str, ...] = STAGES) -> dict:
        figures = {}
        for stage in stages:
            if self.done(stage):
                figures[stage] = json.loads((self.work / f"{stage}.done.json").read_text())
                continue
            self.log(f"training {stage}")
            figures[stage] = {"recipe": self._stage_recipe(stage), **getattr(self, f"_train_{stage}")()}
            self.mark_done(stage, figures[stage])
        return figures

    def _stage_recipe(self, stage: str) -> dict:
        data = self.recipe.to_dict()
        return {k: data[k] for k in ("vae", "diffusion", "decoder")} if stage == "diffusion" else data[stage]

    def _train_oracle(self) -> dict:
        from spf_bench.world import oracle, train_oracle

        model, figures = train_oracle.train(self.recipe, self.data, self.fresh, self.work, self.log)
        oracle.save(model, self.weights_dir("oracle"))
        return figures

    def _train_identity(self) -> dict:
        from spf_bench.world import train_identity

        return train_identity.train(self.recipe, self.data, self.work, self.weights_dir("face"), self.log)

    def _train_clip(self) -> dict:
        from spf_bench.world import train_clip

        return train_clip.train(self.recipe, self.data, self.work, self.weights_dir("clip"), self.log)

    def _train_diffusion(self) -> dict:
        from spf_bench.world import train_diffusion

        return train_diffusion.train(self.recipe, self.data, self.work, self.weights_dir("sd15"), self.log)
