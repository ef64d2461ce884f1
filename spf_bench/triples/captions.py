"""Test triples' captions: composed from the portrait vocabulary, or read from a user's file.

(On ``--weights synth`` :func:`compose_for` composes them in the synthetic world's words
instead; see ``spf_bench.triples.world``.)

A composed set is deterministic for its seed and *prefix-stable*: the first ``k`` triples of
a set of ``n`` are the set of ``k`` (each triple draws from its own seeded generator), so a
larger set extends a smaller one instead of reshuffling it. Categories take turns, so every
category holds ``n // 5`` or ``n // 5 + 1`` triples, and within a category the targets are
dealt from a seeded shuffle of the whole list before any repeats, so a set of ``5 * 40``
triples already uses 40 distinct targets per category.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from spf_bench.triples.vocab import BASE_PARTS, CATEGORIES, SUBJECTS, TARGETS, Phrase, Subject
from spf_bench.core.captions import PROMPT_JOIN, join_caption
from spf_bench.core.errors import SpfError

CLIP_MAX_TOKENS = 77  # BOS and EOS included
SEED_RANGE = 2**31  # torch.Generator.manual_seed accepts any int; this keeps seeds portable


@dataclass(frozen=True)
class Triple:
    id: str
    category: str
    base_caption: str
    target_caption: str
    seed: int

    @property
    def full_caption(self) -> str:
        return full_caption(self.base_caption, self.target_caption)

    def to_dict(self) -> dict:
        return asdict(self)


def full_caption(base: str, target: str) -> str:
    return join_caption(base, target)


def triple_id(index: int) -> str:
    return f"t{index:05d}"


# ----------------------------------------------------------------------------- composing

def compose_triples(n: int, seed: int = 0) -> list[Triple]:
    """``n`` portrait triples, categories in turn, bases compatible with their targets."""
    if n < 0:
        raise SpfError(f"The number of triples must be zero or more, not {n}.")
    decks = {cat: _shuffled(TARGETS[cat], random.Random(f"spf-deck:{seed}:{cat}")) for cat in CATEGORIES}
    triples = []
    for index in range(n):
        category = CATEGORIES[index % len(CATEGORIES)]
        deck = decks[category]
        target = deck[(index // len(CATEGORIES)) % len(deck)]
        # A string seed hashes deterministically (unlike hash() of a str), and one generator
        # per triple is what makes a set prefix-stable.
        rng = random.Random(f"spf-triple:{seed}:{index}")
        base = compose_base(target, rng)
        triples.append(Triple(triple_id(index), category, base, target.text, rng.randrange(SEED_RANGE)))
    return triples


def _shuffled(items, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


def compose_base(target: Phrase, rng: random.Random) -> str:
    """A base caption that leaves every slot of ``target`` open and suits its needs."""
    subjects = [s for s in SUBJECTS if target.fits(s.tags) and not (s.slots & target.slots)]
    subject = rng.choice(subjects)
    parts = [f"a photo of {subject.text}"]
    for _name, (probability, options) in BASE_PARTS:
        usable = [o for o in options if not (o.slots & target.slots) and o.fits(subject.tags)]
        # Draw the coin and the option even when unused so that one part's compatibility
        # never shifts the random stream of the parts after it.
        coin, pick = rng.random(), rng.randrange(len(options))
        if usable and coin < probability:
            parts.append(usable[pick % len(usable)].text)
    return PROMPT_JOIN.join(parts)


# ----------------------------------------------------------------------------- rule checks

def parse_base(base_caption: str) -> tuple[Subject | None, list[Phrase]]:
    """Recover the subject and vocabulary parts of a composed base caption (for checks)."""
    pieces = base_caption.split(PROMPT_JOIN)
    subject = next((s for s in SUBJECTS if pieces[0] == f"a photo of {s.text}"), None)
    by_text = {o.text: o for _n, (_p, options) in BASE_PARTS for o in options}
    return subject, [by_text[p] for p in pieces[1:] if p in by_text]


def contradictions(base_caption: str, target_caption: str) -> list[str]:
    """Why ``target`` cannot be added to ``base`` under the vocabulary's rules (empty: it can)."""
    target = next((t for group in TARGETS.values() for t in group if t.text == target_caption), None)
    if target is None:
        return [f"'{target_caption}' is not in the vocabulary"]
    subject, parts = parse_base(base_caption)
    problems = []
    if subject is None:
        return [f"'{base_caption}' does not start with a known subject"]
    if not target.fits(subject.tags):
        problems.append(f"'{target.text}' does not suit '{subject.text}'")
    for piece in [subject, *parts]:
        shared = piece.slots & target.slots
        if shared:
            problems.append(f"'{target.text}' and '{piece.text}' both set {sorted(shared)}")
    if target.text in base_caption:
        problems.append(f"'{target.text}' repeats the base")
    return problems


def token_count(text: str, tokenizer) -> int:
    """CLIP tokens of ``text`` including BOS and EOS, untruncated."""
    return len(tokenizer(text, truncation=False)["input_ids"])


def check_token_lengths(triples: list[Triple], tokenizer, limit: int = CLIP_MAX_TOKENS) -> None:
    """Refuse triples whose full caption would be cut by CLIP's context, naming them."""
    too_long = [t.id for t in triples if token_count(t.full_caption, tokenizer) > limit]
    if too_long:
        shown = ", ".join(too_long[:10]) + (f" and {len(too_long) - 10} more" if len(too_long) > 10 else "")
        raise SpfError(f"The full caption of triple(s) {shown} is longer than CLIP's {limit} tokens; shorten them.")


# ----------------------------------------------------------------------------- user files

REQUIRED_COLUMNS = ("id", "category", "base_caption", "target_caption")


def read_user_triples(path: Path, seed: int = 0) -> list[Triple]:
    """Triples from a CSV or JSONL file with ``id, category, base_caption, target_caption[, seed]``.

    A row without a seed gets one derived from the set seed and its id, so adding rows to a
    file leaves the other rows' seeds unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise SpfError(f"The triples file {path} does not exist.")
    rows = _read_rows(path)
    if not rows:
        raise SpfError(f"The triples file {path} holds no triples.")
    triples, seen = [], set()
    for line, row in rows:
        missing = [c for c in REQUIRED_COLUMNS if not str(row.get(c) or "").strip()]
        if missing:
            raise SpfError(f"{path}, line {line}: the field(s) {', '.join(missing)} are missing or empty.")
        tid = str(row["id"]).strip()
        if tid in seen:
            raise SpfError(f"{path}, line {line}: the id '{tid}' appears twice.")
        if not all(ch.isalnum() or ch in "-_." for ch in tid):
            raise SpfError(f"{path}, line {line}: the id '{tid}' may only hold letters, digits, '-', '_' and '.' since it names image files.")
        seen.add(tid)
        triples.append(Triple(tid, str(row["category"]).strip(), str(row["base_caption"]).strip(),
                              str(row["target_caption"]).strip(), _row_seed(row, tid, seed, path, line)))
    return triples


def _row_seed(row: dict, tid: str, seed: int, path: Path, line: int) -> int:
    value = row.get("seed")
    if value is None or str(value).strip() == "":
        return random.Random(f"spf-user-seed:{seed}:{tid}").randrange(SEED_RANGE)
    try:
        return int(str(value).strip())
    except ValueError:
        raise SpfError(f"{path}, line {line}: the seed '{value}' is not an integer.") from None


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise SpfError(f"The triples file {path} lacks the column(s) {', '.join(missing)}.")
            return [(i + 2, row) for i, row in enumerate(reader)]  # line 1 is the header
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpfError(f"{path}, line {i}: not valid JSON ({exc.msg}).") from None
            if not isinstance(row, dict):
                raise SpfError(f"{path}, line {i}: expected a JSON object per line.")
            rows.append((i, row))
        return rows
    raise SpfError(f"The triples file {path} must end in .csv or .jsonl.")
