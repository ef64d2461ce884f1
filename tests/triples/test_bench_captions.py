"""Caption composer: determinism, balance, no contradictions, CLIP token lengths; user files."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from spf_bench.triples.vocab import BASE_PARTS, CATEGORIES, SUBJECTS, TARGETS
from spf_bench.triples.captions import (
    CLIP_MAX_TOKENS,
    compose_triples,
    contradictions,
    read_user_triples,
    token_count,
)
from spf_bench.core.errors import SpfError

# Word groups checked independently of the vocabulary's slot tags: a base and its target
# must never both use a word of the same group (two hats, two hair descriptions, ...).
CONFLICT_GROUPS = {
    "eyewear": r"\b(glasses|sunglasses|goggles|monocle|eye patch)\b",
    "headwear": r"\b(hat|cap|beanie|beret|fedora|crown|headband|bandana|hijab|turban)\b",
    "facial hair": r"\b(beard|mustache|goatee|stubble|sideburns)\b",
    "hair": r"\b(\w+ hair|pixie cut|dreadlocks|ponytail|bun|mohawk|buzz cut|afro|bangs|cornrows|space buns|bald)\b",
    "expression": r"\b(smiling|smile|laughing|grin|frowning|winking|pouting|smirk|angry|expression|thoughtful)\b",
    "age": r"\b(young|middle-aged|elderly|teenage|little|wrinkles|aged|years old)\b",
    "top": r"\b(t-shirt|sweater|shirt|turtleneck|blouse|dress|hoodie|tank top|kimono|sari|uniform|suit|tuxedo|pajamas|overalls|jersey|tank top|sequin top|mesh top|dirndl|qipao|armor)\b",
    "style": r"\b(painting|drawing|sketch|style|print|render|illustration|art|poster|aesthetic)\b",
}
# Hair words that state a condition or an ornament, not a second hairstyle.
_HAIR_STATE = re.compile(r"\b(wet|windswept) hair\b|\bin the hair\b|\bhair clip\b")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    from spf_bench.zoo.tokenizer import write_clip_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    write_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def test_same_seed_same_triples_other_seed_others():
    assert compose_triples(60, seed=3) == compose_triples(60, seed=3)
    assert compose_triples(60, seed=3) != compose_triples(60, seed=4)
    # prefix-stable: a bigger set extends a smaller one
    assert compose_triples(200, seed=3)[:60] == compose_triples(60, seed=3)


def test_categories_balanced_and_forty_distinct_targets_each():
    assert all(len({t.text for t in TARGETS[c]}) >= 40 for c in CATEGORIES)
    triples = compose_triples(5 * 40 + 3, seed=1)
    counts = Counter(t.category for t in triples)
    assert set(counts) == set(CATEGORIES) and max(counts.values()) - min(counts.values()) <= 1
    for category in CATEGORIES:
        targets = [t.target_caption for t in triples[: 5 * 40] if t.category == category]
        assert len(targets) == 40 and len(set(targets)) == 40  # dealt without repeats first
    assert len({t.id for t in triples}) == len(triples)
    assert len({t.seed for t in triples}) > len(triples) * 0.99


def test_no_target_contradicts_or_repeats_its_base():
    triples = compose_triples(3000, seed=7)
    for t in triples:
        assert contradictions(t.base_caption, t.target_caption) == [], t
        assert t.target_caption not in t.base_caption
        target = _HAIR_STATE.sub("", t.target_caption)
        for group, pattern in CONFLICT_GROUPS.items():
            if group == "style":
                continue  # "a photo of" is the base's medium, which style targets replace by design
            assert not (re.search(pattern, target) and re.search(pattern, t.base_caption)), (group, t)
        if re.search(CONFLICT_GROUPS["facial hair"], t.target_caption):
            assert re.search(r"\b(man|elderly man|middle-aged man|young man)\b", t.base_caption), t
            assert not re.search(r"\b(boy|girl|woman)\b", t.base_caption), t


def test_rule_check_catches_contradictions():
    base = "a photo of a young woman, long brown hair, smiling, wearing a white t-shirt, in a park"
    assert contradictions(base, "with pink hair")  # a second hairstyle
    assert contradictions(base, "laughing") or contradictions(base, "frowning")  # a second expression
    assert contradictions(base, "wearing a red dress")  # a second top
    assert contradictions(base, "with a full beard")  # needs an adult man
    assert contradictions(base, "aged about sixty")  # the subject already states an age
    assert contradictions("a photo of a little boy, in a park", "wearing red lipstick")
    assert contradictions(base, "wearing round glasses") == []


def test_full_captions_fit_clip_context(tokenizer):
    for t in compose_triples(1500, seed=11):
        assert token_count(t.full_caption, tokenizer) <= CLIP_MAX_TOKENS, t
    # the worst case the vocabulary allows: the longest option of every part and target
    longest = lambda texts: max(texts, key=lambda s: token_count(s, tokenizer))  # noqa: E731
    parts = [f"a photo of {longest([s.text for s in SUBJECTS])}"]
    parts += [longest([o.text for o in options]) for _n, (_p, options) in BASE_PARTS]
    target = longest([t.text for group in TARGETS.values() for t in group])
    assert token_count(", ".join(parts + [target]), tokenizer) <= CLIP_MAX_TOKENS


def test_user_triples_from_csv_and_jsonl(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("id,category,base_caption,target_caption,seed\n"
                        "a1,clothing,a photo of a man,wearing a scarf,5\n"
                        "a2,style,a photo of a woman,oil painting style,\n")
    rows = read_user_triples(csv_file, seed=1)
    assert [r.id for r in rows] == ["a1", "a2"] and rows[0].seed == 5
    assert rows[1].seed == read_user_triples(csv_file, seed=1)[1].seed != read_user_triples(csv_file, seed=2)[1].seed
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps(r.to_dict()) for r in rows) + "\n")
    assert read_user_triples(jsonl) == rows

    bad = tmp_path / "bad.csv"
    bad.write_text("id,category,base_caption\nx,clothing,a photo\n")
    with pytest.raises(SpfError, match="target_caption"):
        read_user_triples(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text(jsonl.read_text() + json.dumps(rows[0].to_dict()) + "\n")
    with pytest.raises(SpfError, match="line 3.*'a1' appears twice"):
        read_user_triples(dup)
