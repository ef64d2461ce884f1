"""Training the whole world: the rendered sets, then each model, each resumable.

Everything goes to a work folder (checkpoints, the rendered sets, a log); each finished
model is exported in its shipped format into ``work/weights/<network>/`` and never redone.

Two sets are rendered: the known set (the known attributes only) for the diffusion model,
and the world set (with the novel attributes) for the oracle, the CLIP and the identity
embedder, which must read everything the world can draw (the identity embedder's set is the
recipe's ``identity_set``). Stage ``clip`` trains the CLIP on the known set into
``weights/clip-known``; stage ``clip_novel`` trains it further on the world set into
``weights/clip``, the one that ships. Likewise stage ``diffusion`` trains the pipeline on the
known set into ``weights/sd15-known``, and ``decoder_novel`` refines only its VAE's decoder on
the world set into ``weights/sd15``, the one that ships (the encoder, the UNet and the text
encoder are copied unchanged, so the diffusion model never sees a novel attribute).

``adopt`` takes finished stages over from the shipped weights instead of training them, so
that changing one model retrains only that one and ships the others byte for byte (the
diffusion model, which must never see the novel attributes, is always adopted or trained on
the known set).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


from spf_bench.core.atomic import write_json_atomic
from spf_bench.world.dataset import N_IDENTITIES, cached_set, render_set
from spf_bench.world.recipe import Recipe

STAGES = ("oracle", "identity", "clip", "clip_novel", "diffusion", "decoder_novel")
# Where each stage's trained network lies in the work folder, and the shipped one it may adopt.
# The known CLIP ships only as the start of clip_novel, so adopting "clip" copies the shipped
# CLIP; that copy is never shipped itself. The same holds for the known pipeline: adopting
# "diffusion" copies the shipped sd15 into sd15-known, whose UNet, text encoder and VAE encoder
# are the diffusion stage's but whose decoder is already decoder_novel's; so decoder_novel run
# on it trains that decoder further rather than repeating the recipe (adopt both to keep it).
STAGE_OUTPUT = {"oracle": ("oracle", "oracle"), "identity": ("face", "face"), "clip": ("clip-known", "clip"),
                "clip_novel": ("clip", "clip"), "diffusion": ("sd15-known", "sd15"), "decoder_novel": ("sd15", "sd15")}


class WorldTrainer:
    def __init__(self, work: Path, recipe: Recipe):
        self.work = Path(work)
        self.recipe = recipe
        self.work.mkdir(parents=True, exist_ok=True)
        self._data = None
        self._world = None
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
            for key in ("size", "train_images", "data_seed", "world_images", "world_seed"):
                if saved.get(key, current[key]) != current[key]:
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
    def world(self):
        """The set with the novel attributes (for the oracle, the CLIP and the identity embedder)."""
        if self._world is None:
            r = self.recipe
            self._world = cached_set(self.work / "world_set.npz", r.world_images, r.world_seed, r.size, novel=True)
        return self._world

    @property
    def fresh(self):
        # New seeds and identities no training portrait has, novel attributes included.
        if self._fresh is None:
            r = self.recipe
            self._fresh = render_set(r.eval_images, r.eval_seed, r.size, identities=(N_IDENTITIES, 2 * N_IDENTITIES), novel=True)
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

    def adopt(self, stages: tuple[str, ...]) -> None:
        """Mark ``stages`` finished with the shipped weights as their output (their figures
        are the shipped manifest's), unless they are finished already."""
        import shutil

        from spf_bench.core.errors import SpfError
        from spf_bench.world.ship import verify_shipped
        from spf_bench.zoo import synth_source

        shipped = synth_source.manifest().get("figures", {})
        for stage in stages:
            if stage not in STAGE_OUTPUT:
                raise SpfError(f"Stage '{stage}' cannot be adopted from the shipped weights; these can: {', '.join(STAGE_OUTPUT)}.")
            if self.done(stage):
                continue
            work_name, shipped_name = STAGE_OUTPUT[stage]
            verify_shipped(shipped_name)
            target = self.weights_dir(work_name)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(synth_source.folder(shipped_name), target)
            self.log(f"adopted {stage} from the shipped {shipped_name}")
            self.mark_done(stage, {"adopted_from_shipped": shipped_name, **shipped.get(stage, {})})

    def _stage_recipe(self, stage: str) -> dict:
        data = self.recipe.to_dict()
        if stage == "diffusion":
            return {k: data[k] for k in ("vae", "diffusion", "decoder")}
        if stage == "identity":  # its set is a choice of the recipe, so it is recorded with it
            return {**data[stage], "set": data["identity_set"]}
        if stage == "clip_novel":
            return {**data[stage], "twins": data["clip_twins"], "phrases": data["clip_phrases"]}
        return data[stage]

    def _train_oracle(self) -> dict:
        from spf_bench.world import oracle, train_oracle

        model, figures = train_oracle.train(self.recipe, self.world, self.fresh, self.work, self.log)
        oracle.save(model, self.weights_dir("oracle"))
        return figures

    def _train_identity(self) -> dict:
        from spf_bench.world import train_identity

        data = self.world if self.recipe.identity_set == "world" else self.data
        return train_identity.train(self.recipe, data, self.work, self.weights_dir("face"), self.log)

    def _train_clip(self) -> dict:
        from spf_bench.world import train_clip

        return train_clip.train(self.recipe, self.data, self.work, self.weights_dir("clip-known"), self.log)

    def _train_clip_novel(self) -> dict:
        from spf_bench.world import train_clip
        from spf_bench.world.twins import cached_twins

        twins = None
        if self.recipe.clip_twins > 0:
            twins = cached_twins(self.work / "world_twins.npz", self.world, self.recipe.world_seed, self.recipe.size)
        return train_clip.train(self.recipe, self.world, self.work, self.weights_dir("clip"), self.log,
                                start=self.weights_dir("clip-known"), twins=twins)

    def _train_diffusion(self) -> dict:
        from spf_bench.world import train_diffusion

        return train_diffusion.train(self.recipe, self.data, self.work, self.weights_dir("sd15-known"), self.log)

    def _train_decoder_novel(self) -> dict:
        from spf_bench.core.errors import SpfError
        from spf_bench.world import oracle, train_decoder_novel

        for stage, name in (("oracle", "oracle"), ("diffusion", "sd15-known")):
            if not self.weights_dir(name).is_dir():
                raise SpfError(f"Stage decoder_novel starts from {self.weights_dir(name)}, which is missing; "
                               f"train or --adopt the {stage} stage first.")
        judge = oracle.load(self.weights_dir("oracle"))  # the work folder's, trained or adopted
        return train_decoder_novel.train(self.recipe, self.world, self.work, self.weights_dir("sd15-known"),
                                         self.weights_dir("sd15"), judge, self.log)
