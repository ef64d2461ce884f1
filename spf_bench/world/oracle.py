"""The attribute oracle: a multi-head classifier that reads every attribute off a portrait.

It is the world's ground-truth judge of generated images, so it is trained on renders
degraded the way generated images are (grain, blur) and must score at least 99% per
attribute on fresh clean renders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spf_bench.world.attributes import ATTRIBUTES
from spf_bench.world.dataset import PortraitSet

CONFIG_FILE = "oracle_config.json"
WEIGHTS_FILE = "oracle.safetensors"


class AttributeOracle(nn.Module):
    """[N, 3, S, S] in [-1, 1] -> one logit vector per attribute."""

    def __init__(self, widths=(32, 64, 128), hidden: int = 256, size: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        cells = (size // 2 ** len(widths)) ** 2
        # Flattening keeps where things are: a red shirt and red hair differ only by place.
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(c_in * cells, hidden), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(hidden, len(a.values)) for a in ATTRIBUTES)
        self.config = {"widths": list(widths), "hidden": hidden, "size": size}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.neck(self.body(x))
        return [head(h) for head in self.heads]

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
        """Value indices [N, n_attributes] for uint8 images [N, S, S, 3] or float [N, 3, S, S] in [-1, 1]."""
        self.eval()
        x = to_input(images) if isinstance(images, np.ndarray) else images
        if tuple(x.shape[-2:]) != (self.config["size"],) * 2:
            from spf_bench.core.errors import SpfError

            raise SpfError(f"The attribute oracle reads {self.config['size']} px portraits, not {tuple(x.shape[-2:])}; generate at the world's size.")
        out = []
        for i in range(0, len(x), batch):
            logits = self(x[i : i + batch].float())
            out.append(torch.stack([l.argmax(-1) for l in logits], dim=1))
        return torch.cat(out).numpy()


def to_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Grain and blur of random strength, as a decoder or an under-trained model leaves them."""
    n = x.shape[0]
    sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.12
    blurred = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    mix = (torch.rand(n, 1, 1, 1, generator=gen) < 0.4).float() * torch.rand(n, 1, 1, 1, generator=gen)
    x = (1 - mix) * x + mix * blurred
    return x + sigma * torch.randn(x.shape, generator=gen)


def loss_fn(model: AttributeOracle, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return sum(nn.functional.cross_entropy(l, labels[:, i]) for i, l in enumerate(logits))


def accuracy(model: AttributeOracle, data: PortraitSet) -> dict[str, float]:
    pred = model.predict(data.images)
    return {a.name: float((pred[:, i] == data.labels[:, i]).mean()) for i, a in enumerate(ATTRIBUTES)}


def save(model: AttributeOracle, folder: Path, dtype: torch.dtype = torch.float16) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    config = {**model.config, "attributes": {a.name: list(a.values) for a in ATTRIBUTES}}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")


def load(folder: Path) -> AttributeOracle:
    from spf_bench.zoo.checkpoints import load_into, read_state_dict

    config = json.loads((folder / CONFIG_FILE).read_text())
    model = AttributeOracle(tuple(config["widths"]), config["hidden"], config["size"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in read_state_dict(folder / WEIGHTS_FILE).items()}
    load_into(model, state, folder / WEIGHTS_FILE)
    return model.eval()
