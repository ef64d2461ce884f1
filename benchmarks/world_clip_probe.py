"""Does the world's CLIP see each small attribute? Paired renders, one attribute flipped.

    python benchmarks/world_clip_probe.py [--clip FOLDER] [--pairs 96] [--seed 5]

For every presence attribute (the known glasses, hat and beard and the five novel ones) and
the smile, the renderer draws ``--pairs`` fresh portraits twice, identical but for that
attribute (present, then absent; ``spf_bench.world.twins``): same identity, other attributes
and grain, so the two images differ only inside the attribute's mask. The CLIP embeds both and
the attribute's own phrase ("wearing a tie", the target caption CLIP-T and ``L_re`` use). One
line per attribute:

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

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="an open_clip folder (default: the shipped world CLIP)")
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spf_bench.world.captions import attribute_phrase
    from spf_bench.world.twins import TWIN_ATTRIBUTES, paired_wins
    from spf_bench.zoo import synth_source
    from spf_bench.zoo.networks.clip import load_folder

    folder = args.clip or synth_source.folder("clip")
    bundle = load_folder(folder, torch.device("cpu"), torch.float32)
    size = int(bundle.model.visual.image_size[0])  # render at the CLIP's own input size

    for name in TWIN_ATTRIBUTES:
        figures = paired_wins(bundle, name, args.pairs, args.seed, size)
        print(json.dumps({"attribute": name, "phrase": attribute_phrase(name, "yes"),
                          **{k: round(v, 4) for k, v in figures.items()}, "pairs": args.pairs, "clip": str(folder)}))


if __name__ == "__main__":
    main()
