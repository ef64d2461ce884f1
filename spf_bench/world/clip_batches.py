"""One contrastive batch of the world's CLIP: portraits, twins, captions, and the pairs that
must not count as negatives.

A batch of the ``clip_novel`` stage holds random portraits, and portraits with their twins
(``twins.py``). Two things make the twins teach what CLIP-T and the response loss ask of the
CLIP, which is to put an attribute's own phrase ("wearing a tie") closer to the portrait
that shows it:

- *Phrase captions*: a twin row whose image shows the flipped attribute is captioned now and
  then by that attribute's phrase alone, the way short captions and target texts are written.
  Full captions alone left the CLIP reading a lone phrase backwards (the hat) or at chance.
- *False negatives left out*: "wearing a tie" describes every portrait with a tie, so the
  other tie portraits of the batch are not its negatives. Any caption that fixes only values
  another image has is masked out of that image's row and column of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spf_bench.world.attributes import NAMES
from spf_bench.world.captions import attribute_phrase, compose_caption, parse_caption
from spf_bench.world.dataset import PortraitSet


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 portraits [N, S, S, 3] as the world CLIP's input (CLIP's mean and std)."""
    from spf_bench.zoo.networks.clip import OPENAI_MEAN, OPENAI_STD

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(OPENAI_MEAN)[:, None, None]) / torch.tensor(OPENAI_STD)[:, None, None]


@dataclass
class ClipBatch:
    images: np.ndarray  # uint8 [B, S, S, 3]
    captions: list[str]
    attributes: list[dict[str, str]]  # each image's values
    phrases: list[bool]  # which captions are a lone phrase (not a whole portrait caption)

    def false_negatives(self) -> torch.Tensor:
        """bool [B images, B captions]: caption j also describes image k (k != j)."""
        fixed = [parse_caption(c, complete=not is_phrase) for c, is_phrase in zip(self.captions, self.phrases)]
        out = torch.zeros(len(self.images), len(self.captions), dtype=torch.bool)
        for j, values in enumerate(fixed):
            for k, attributes in enumerate(self.attributes):
                out[k, j] = k != j and all(attributes[name] == value for name, value in values.items())
        return out


def compose_batch(data: PortraitSet, twins: PortraitSet | None, idx: np.ndarray, pairs: int, rng: np.random.Generator,
                  novel: bool, phrase_share: float = 0.0) -> ClipBatch:
    """The portraits ``idx`` of ``data``, the first ``pairs`` of them with their twins in
    place of the last ``pairs`` ones, each with a caption drawn from ``rng``."""
    batch = len(idx)
    sources = [(data, int(j), False) for j in idx[:batch - pairs]] + [(twins, int(j), True) for j in idx[:pairs]]
    captions, attributes, phrases = [], [], []
    for k, (source, j, is_twin) in enumerate(sources):
        values = source.attributes(j)
        in_pair = k < pairs or is_twin
        caption = None
        if in_pair and phrase_share > 0:
            name = NAMES[int(np.argmax(twins.labels[j] != data.labels[j]))]  # the flipped attribute
            shows = values[name] == "yes"
            if shows and rng.random() < phrase_share:
                caption = attribute_phrase(name, "yes", int(rng.integers(2)))
        phrases.append(caption is not None)
        captions.append(caption if caption is not None else compose_caption(values, rng, novel_absent=novel))
        attributes.append(values)
    return ClipBatch(np.stack([s.images[j] for s, j, _ in sources]), captions, attributes, phrases)
