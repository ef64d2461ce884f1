"""Does the world's CLIP see each presence attribute? Paired renders, one attribute flipped.

    python benchmarks/world_clip_probe.py [--clip FOLDER] [--pairs 96] [--seed 5]

For every presence attribute (the known glasses, hat and beard and the five novel ones) the
renderer draws ``--pairs`` portraits twice, identical but for that attribute (present, then
absent): same identity, other attributes and grain, so the two images differ only inside the
attribute's mask. The CLIP embeds both and the attribute's own phrase ("wearing a tie", the
target caption CLIP-T and ``L_re`` use). One line per attribute:

- ``with`` / ``without``: mean cosine of the phrase with the image that shows the attribute,
  and with the one that does not;
- ``paired_diff``: the mean of (with - without) over the pairs, and ``wins``: the share of
  pairs where the image with the attribute is the closer one (0.5: the CLIP cannot tell).

A CLIP that knows an attribute has ``wins`` near 1. ``--clip`` probes another open_clip
folder (a retrained CLIP) instead of the shipped one. Figures and their reading:
docs/synth.md, "The whole world Tab. 1".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

PRESENCE = ("glasses", "hat", "beard", "freckles", "tie", "watercolour", "hair_streak", "earrings")


def paired_renders(name: str, pairs: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images with ``name`` present, the same portraits with it absent)."""
    from spf_bench.world.attributes import sample_attributes
    from spf_bench.world.dataset import N_IDENTITIES
    from spf_bench.world.render import render

    rng = np.random.default_rng([seed, PRESENCE.index(name)])
    shown, hidden = [], []
    for _ in range(pairs):
        attributes = sample_attributes(rng, novel=True)
        identity, grain = int(rng.integers(0, N_IDENTITIES)), int(rng.integers(0, 2**31))
        shown.append(render({**attributes, name: "yes"}, identity, grain, size))
        hidden.append(render({**attributes, name: "no"}, identity, grain, size))
    return np.stack(shown), np.stack(hidden)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="an open_clip folder (default: the shipped world CLIP)")
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spf_bench.world.captions import attribute_phrase
    from spf_bench.world.train_clip import _normalise
    from spf_bench.zoo import synth_source
    from spf_bench.zoo.networks.clip import load_folder

    folder = args.clip or synth_source.folder("clip")
    bundle = load_folder(folder, torch.device("cpu"), torch.float32)
    size = int(bundle.model.visual.image_size[0])  # render at the CLIP's own input size

    def embed(images: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.normalize(bundle.encode_image(_normalise(images)), dim=-1)

    for name in PRESENCE:
        shown, hidden = paired_renders(name, args.pairs, args.seed, size)
        phrase = attribute_phrase(name, "yes")
        text = torch.nn.functional.normalize(bundle.encode_text([phrase]), dim=-1)[0]
        with_attr, without = (embed(shown) @ text).numpy(), (embed(hidden) @ text).numpy()
        diff = with_attr - without
        print(json.dumps({"attribute": name, "phrase": phrase, "with": round(float(with_attr.mean()), 4),
                          "without": round(float(without.mean()), 4), "paired_diff": round(float(diff.mean()), 4),
                          "wins": round(float((diff > 0).mean()), 3), "pairs": args.pairs, "clip": str(folder)}))


if __name__ == "__main__":
    main()
