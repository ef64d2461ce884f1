"""What each part of a world pipeline can carry of each attribute, before any UNet is asked to
draw it: whether the VAE's round trip keeps it, and how strongly the text encoder reads the
words that ask for it.

Fine-tuning can teach a UNet an attribute only where the frozen parts let it through: an
attribute the decoder cannot reproduce caps every method's target accuracy, and a word the
text encoder barely reads gives the UNet almost nothing to condition on. In a real SD 1.5 both
parts are general (a VAE trained on web images, CLIP's text tower); in the world they were
trained with the known attributes only, so these figures say how far that differs.
"""

from __future__ import annotations

import numpy as np
import torch

from spf_bench.world.attributes import ATTRIBUTES, NOVEL_NAMES, index_of
from spf_bench.world.captions import attribute_phrase
from spf_bench.world.dataset import N_IDENTITIES, render_set
from spf_bench.world.measure import random_captions


@torch.no_grad()
def vae_round_trip(vae, oracle, n: int = 200, seed: int = 7, batch: int = 50) -> dict[str, dict]:
    """Per attribute, on ``n`` fresh renders with the novel attributes drawn too: ``agreement``
    (the oracle reads the same value before and after encode -> decode, latent mean) and, for
    presence attributes, ``kept`` (share of renders showing it that still show it after)."""
    data = render_set(n, seed, oracle.config["size"], identities=(3 * N_IDENTITIES, 4 * N_IDENTITIES), novel=True)
    decoded = []
    for start in range(0, n, batch):
        x = torch.from_numpy(data.images[start : start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = x.to(vae.device, vae.dtype)
        out = vae.decode(vae.encode(x).latent_dist.mean).sample.float().clamp(-1, 1)
        decoded.append(((out + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    before, after = oracle.predict(data.images), oracle.predict(np.concatenate(decoded))
    result = {}
    for i, attribute in enumerate(ATTRIBUTES):
        entry = {"agreement": float((before[:, i] == after[:, i]).mean())}
        if attribute.presence:
            shown = data.labels[:, i] == index_of(attribute.name, "yes")
            entry["kept"] = float((after[shown, i] == data.labels[shown, i]).mean()) if shown.any() else float("nan")
            entry["shown"] = int(shown.sum())
        result[attribute.name] = entry
    return result


@torch.no_grad()
def text_reading(tokenizer, text_encoder, n: int = 32, seed: int = 3) -> dict[str, float]:
    """Per presence attribute, how strongly the text encoder reads its phrase: appended to ``n``
    known-world captions, the mean norm of the change of the encoder's output at the phrase's
    own token positions, relative to the mean norm of an output feature. A word the encoder
    was never trained on changes little more than the padding it replaces."""
    captions = random_captions(n, seed)
    plain = _encode(tokenizer, text_encoder, captions)
    lengths = [len(tokenizer(c).input_ids) - 2 for c in captions]
    scale = plain.norm(dim=-1).mean().item()
    result = {}
    for attribute in ATTRIBUTES:
        if not attribute.presence:
            continue
        phrase = attribute_phrase(attribute.name, "yes")
        said = _encode(tokenizer, text_encoder, [f"{c}, {phrase}" for c in captions])
        n_phrase = len(tokenizer(phrase).input_ids) - 2  # without start and end of text
        change = []
        for b, k in enumerate(lengths):
            # [start, k caption tokens, ",", phrase ...]: the phrase starts at k + 2; a causal
            # encoder leaves everything before it as it was.
            span = slice(k + 1 + n_phrase, k + 2 + n_phrase)
            change.append((said[b, span] - plain[b, span]).norm(dim=-1).mean())
        result[attribute.name] = float(torch.stack(change).mean().item() / scale)
    return result


def _encode(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0].float().cpu()


def novel_summary(round_trip: dict, reading: dict) -> str:
    """One line per novel attribute, for ``spf-bench synth check``."""
    known = [reading[a.name] for a in ATTRIBUTES if a.presence and a.name not in NOVEL_NAMES]
    lines = [f"  known presence words read at {min(known):.2f}-{max(known):.2f} (change / feature norm)"]
    for name in NOVEL_NAMES:
        lines.append(f"  {name}: VAE round trip keeps {round_trip[name]['kept']:.2f} of {round_trip[name]['shown']}, "
                     f"its words read at {reading[name]:.2f}")
    return "\n".join(lines)

