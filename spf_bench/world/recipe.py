"""The recipe that rebuilds the world's models: every seed, size and step count in one place.

``spf-bench synth train`` writes the recipe it ran beside the weights, so a shipped model
says exactly how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Stage:
    steps: int
    batch: int
    lr: float
    seed: int


@dataclass
class Recipe:
    size: int = 32  # rendered portraits are size x size RGB (32 px is what two CPU cores afford)
    train_images: int = 16000  # the rendered training set, shared by every model
    data_seed: int = 1
    # The oracle and the CLIP learn the novel attributes from a second set, drawn with them;
    # the identity embedder and the diffusion model learn from the known set only.
    world_images: int = 16000
    world_seed: int = 2
    eval_images: int = 500  # fresh renders (new seeds and identities) for the accuracy figures
    eval_seed: int = 99
    oracle: Stage = field(default_factory=lambda: Stage(steps=600, batch=64, lr=2e-3, seed=11))
    identity: Stage = field(default_factory=lambda: Stage(steps=600, batch=64, lr=2e-3, seed=12))
    clip: Stage = field(default_factory=lambda: Stage(steps=1200, batch=128, lr=1e-3, seed=13))
    # The known world's CLIP, trained further on the set with the novel attributes: the
    # words and parts it has not seen are all it must learn, so it need not start again.
    clip_novel: Stage = field(default_factory=lambda: Stage(steps=160, batch=64, lr=3e-4, seed=17))
    vae: Stage = field(default_factory=lambda: Stage(steps=1200, batch=32, lr=1e-3, seed=14))
    diffusion: Stage = field(default_factory=lambda: Stage(steps=7000, batch=32, lr=1e-3, seed=15))
    # The decoder alone, trained further with an edge term after the latents are fixed, so
    # small parts (mouth, glasses) come out sharp without changing what the UNet learned on.
    decoder: Stage = field(default_factory=lambda: Stage(steps=1500, batch=32, lr=5e-4, seed=16))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        stages = {k: Stage(**v) for k, v in data.items() if isinstance(v, dict)}
        plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
        return cls(**plain, **stages)

    def scaled(self, factor: float) -> "Recipe":
        """The same recipe with every stage's steps multiplied by ``factor`` (at least 2)."""
        data = self.to_dict()
        for value in data.values():
            if isinstance(value, dict):
                value["steps"] = max(2, int(round(value["steps"] * factor)))
        return Recipe.from_dict(data)
