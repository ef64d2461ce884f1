"""Which phrases of a portrait caption TokenCompose grounds, and where their tokens are.

TokenCompose supervises the cross-attention of *grounded* phrases (in the paper, the nouns
of a COCO caption, each with a segmentation mask from Grounded-SAM). For portrait captions
``c = c_b ⊕ c_t`` the suite grounds two phrases by default:

- the **subject**: the person noun of the base caption (``woman`` in "a photo of a young
  woman, long brown hair, in a park"), the first word of :data:`SUBJECT_WORDS` found in it;
  its mask covers the person;
- the **target attribute**: the target caption without its leading function words
  (``round glasses`` from "wearing round glasses", ``mohawk hairstyle`` from "with a mohawk
  hairstyle"); its mask covers the attribute's region (the glasses, the hair), or the whole
  image for the ``image style`` category, whose attribute has no place of its own.

A training set may ground other phrases too: every phrase named in a row's ``masks`` is used.
A phrase is located in the target segment of the prompt when it occurs in the target caption,
otherwise in the base segment, so "hair" in "long brown hair, ..., with curly hair" binds the
right occurrence.
"""

from __future__ import annotations

import re

from spf_bench.core.errors import SpfError

from spf_bench.core.captions import join_caption

# Person nouns of portrait captions, longest first so "grandmother" wins over "mother".
SUBJECT_WORDS = tuple(sorted((
    "woman", "man", "girl", "boy", "person", "lady", "gentleman", "child", "kid", "teenager",
    "grandmother", "grandfather", "mother", "father", "baby", "toddler", "student", "soldier",
    "bride", "groom", "doctor", "nurse", "chef", "businessman", "businesswoman", "athlete",
    "model", "actor", "actress", "people", "adult", "senior", "youth", "guy", "female", "male",
), key=len, reverse=True))

# Words that open a target caption without naming what is shown.
_LEADING = {"wearing", "with", "in", "a", "an", "the", "has", "having", "holding", "and", "is", "who"}
STYLE_CATEGORY = "image style"


def subject_phrase(base_caption: str) -> str:
    words = re.findall(r"[a-z]+", base_caption.lower())
    for candidate in SUBJECT_WORDS:
        if candidate in words:
            return candidate
    raise SpfError(f"No subject noun (one of {', '.join(SUBJECT_WORDS[:6])}, ...) found in the base caption '{base_caption}'.")


def attribute_phrase(target_caption: str) -> str:
    words = target_caption.strip().rstrip(".").split()
    while len(words) > 1 and words[0].lower() in _LEADING:
        words = words[1:]
    return " ".join(words)


def default_phrases(base_caption: str, target_caption: str) -> tuple[str, str]:
    """The two phrases grounded by default: (subject, target attribute)."""
    return subject_phrase(base_caption), attribute_phrase(target_caption)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, truncation=False).input_ids


def _find(haystack: list[int], needle: list[int], start: int, stop: int) -> int:
    for i in range(start, stop - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i
    return -1


def phrase_token_indices(tokenizer, base_caption: str, target_caption: str, phrase: str) -> list[int]:
    """Positions of ``phrase``'s tokens in the tokenized full prompt (BOS at position 0)."""
    prompt_ids = [tokenizer.bos_token_id] + _ids(tokenizer, join_caption(base_caption, target_caption))
    if len(prompt_ids) + 1 > tokenizer.model_max_length:
        raise SpfError(f"The prompt '{join_caption(base_caption, target_caption)}' is longer than CLIP's {tokenizer.model_max_length} tokens.")
    needle = _ids(tokenizer, phrase)
    if not needle:
        raise SpfError(f"The grounded phrase '{phrase}' has no tokens.")
    # The base segment is BOS + base tokens; the target segment follows the joining comma.
    base_end = 1 + len(_ids(tokenizer, base_caption.strip()))
    in_target = re.search(rf"(?<![a-z0-9]){re.escape(phrase.lower())}(?![a-z0-9])", target_caption.lower()) is not None
    start, stop = (base_end, len(prompt_ids)) if in_target else (1, base_end)
    at = _find(prompt_ids, needle, start, stop)
    if at < 0:
        raise SpfError(f"The grounded phrase '{phrase}' does not occur in the caption '{join_caption(base_caption, target_caption)}'.")
    return list(range(at, at + len(needle)))
