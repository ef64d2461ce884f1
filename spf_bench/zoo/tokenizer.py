"""The real CLIP BPE tokenizer, built offline.

open_clip ships the BPE merges of OpenAI's CLIP (``bpe_simple_vocab_16e6.txt.gz``). The
Hugging Face ``CLIPTokenizer`` that Stable Diffusion pipelines use reads a ``vocab.json`` and
a ``merges.txt`` derived from the same merges, so both files are rebuilt here byte for byte
deterministically instead of being downloaded: no hub is reachable, and the ids must equal
open_clip's (tested on varied captions).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

# Number of merges CLIP uses: 49152 vocabulary entries minus the 256 byte tokens and the two
# special tokens' slots, as in CLIP's own tokenizer.
_N_MERGES = 49152 - 256 - 2
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77


def bpe_vocab_path() -> Path:
    spec = importlib.util.find_spec("open_clip")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> dict[int, str]:
    # CLIP maps every byte to a printable unicode character so that BPE never sees
    # whitespace or control bytes; this is the fixed table that defines its vocabulary order.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


@lru_cache(maxsize=1)
def _merges() -> tuple[tuple[str, str], ...]:
    lines = gzip.open(bpe_vocab_path()).read().decode("utf-8").split("\n")
    return tuple(tuple(line.split()) for line in lines[1 : _N_MERGES + 1])


def vocabulary() -> dict[str, int]:
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in _merges()] + [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def write_clip_tokenizer(folder: Path) -> None:
    """Write a diffusers/transformers ``CLIPTokenizer`` folder (as in SD1.5's ``tokenizer/``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocabulary(), ensure_ascii=False), encoding="utf-8")
    merges = "#version: 0.2\n" + "\n".join(" ".join(m) for m in _merges()) + "\n"
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "model_max_length": MAX_LENGTH,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True))
