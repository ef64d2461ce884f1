"""Grounding masks of a portrait training set, for TokenCompose.

The set is the suite's usual image folder (see :mod:`spf_train.data`); each row of
``metadata.jsonl`` additionally says where its grounded phrases are::

    {"file_name": "0001.png", "base_caption": "a photo of a young woman, long brown hair",
     "target_caption": "wearing round glasses", "category": "accessories",
     "masks": {"woman": "masks/0001-woman.png", "round glasses": "masks/0001-glasses.png"}}

``masks`` maps each grounded phrase (its words as they appear in the caption) to a mask image
relative to the folder: any mode, non-zero pixels inside, same framing as the image. A row may
instead give ``points``: ``{"phrase": [[x, y], ...]}`` in image pixels; the zoo's SAM then
computes each mask once (the best of SAM's three masks for the positive points, by its
predicted IoU) and caches it under ``.spf-masks/`` in the set's folder, keyed by the SAM
weights' source, the image bytes, the phrase and the points. Which phrases to ground for
portrait captions is described in :mod:`spf_train.grounding`.

A set without any grounding (the suite's generated training sets) can be used with
``missing_grounding="layout-sam"`` **(choice)**: each such row grounds the default phrases
(subject and target attribute) at points of a portrait layout, the subject at the image
centre and the attribute where its category usually sits (:data:`LAYOUT_POINTS`), segmented
by SAM as above; an ``image style`` attribute has no place and gets the whole image. A
rough prior, meant for framed portraits; real sets should bring their own masks or points.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spf_bench.core.errors import SpfError

from spf_train.data import METADATA_FILE, PortraitRow
from spf_train.grounding import default_phrases, phrase_token_indices

MASK_CACHE = ".spf-masks"
MISSING_GROUNDING = ("error", "layout-sam")
# (x, y) as fractions of the image, for a centred head-and-shoulders portrait.
SUBJECT_POINT = (0.5, 0.5)
LAYOUT_POINTS = {
    "facial_attributes": (0.5, 0.4),  # the face
    "accessories": (0.5, 0.35),  # glasses, hats, earrings: around the upper face
    "appearance": (0.5, 0.3),  # hair, skin, build: the head
    "clothing": (0.5, 0.85),  # the torso
}
WHOLE_IMAGE_CATEGORIES = {"image_style", "style"}


def _parse_groundings(folder: Path, sam_source: str, missing: str = "error") -> dict[str, dict[str, Path]]:
    """file_name -> {phrase: mask path}, for every row of the set's metadata."""
    out = {}
    for line_no, line in enumerate((folder / METADATA_FILE).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # spf_train.data reports malformed rows with their line numbers
        where = f"{folder / METADATA_FILE} line {line_no}"
        name = str(row.get("file_name", ""))
        if "masks" in row:
            masks = row["masks"]
            if not isinstance(masks, dict) or not masks:
                raise SpfError(f"{where}: 'masks' must map each grounded phrase to a mask file.")
            out[name] = {phrase: _mask_path(folder, rel, phrase, where) for phrase, rel in masks.items()}
        elif "points" in row:
            out[name] = sam_masks(folder, folder / name, row["points"], sam_source, where)
        elif missing == "layout-sam" and name:
            out[name] = layout_masks(folder, row, sam_source, where)
    return out


def layout_masks(folder: Path, row: dict, sam_source: str, where: str) -> dict[str, Path]:
    """Default phrases grounded by SAM at portrait-layout points (see the module's docstring)."""
    image = folder / str(row["file_name"])
    try:
        with Image.open(image) as img:
            width, height = img.size
    except OSError:
        raise SpfError(f"{where}: the image {image} cannot be read.") from None
    subject, attribute = default_phrases(str(row.get("base_caption", "")), str(row.get("target_caption", "")))
    category = str(row.get("category", "")).strip().lower().replace(" ", "_")
    point = lambda fx, fy: [[round(fx * (width - 1)), round(fy * (height - 1))]]  # noqa: E731
    masks = sam_masks(folder, image, {subject: point(*SUBJECT_POINT)}, sam_source, where)
    if category in WHOLE_IMAGE_CATEGORIES:
        masks[attribute] = whole_image_mask(folder, width, height)
    else:
        fx, fy = LAYOUT_POINTS.get(category, SUBJECT_POINT)
        masks.update(sam_masks(folder, image, {attribute: point(fx, fy)}, sam_source, where))
    return masks


def whole_image_mask(folder: Path, width: int, height: int) -> Path:
    path = folder / MASK_CACHE / f"whole-{width}x{height}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        Image.new("L", (width, height), 255).save(tmp)
        tmp.replace(path)
    return path


def _mask_path(folder: Path, rel: str, phrase: str, where: str) -> Path:
    path = Path(rel) if Path(rel).is_absolute() else folder / rel
    if not path.is_file():
        raise SpfError(f"{where} names the mask {path} for '{phrase}', which does not exist.")
    return path


# ----------------------------------------------------------------------------- SAM from points

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "phrase"


def sam_masks(folder: Path, image: Path, points: dict, sam_source: str, where: str = "") -> dict[str, Path]:
    """Masks of phrases from point prompts by the zoo's SAM, computed once and cached as PNGs."""
    from spf_bench.core.fingerprint import hash_json
    from spf_bench.core.fingerprint import sha256_file

    if not isinstance(points, dict) or not points:
        raise SpfError(f"{where}: 'points' must map each grounded phrase to a list of [x, y] pixels.")
    if not image.is_file():
        raise SpfError(f"{where}: the image {image} does not exist.")
    image_hash = sha256_file(image)
    cache = folder / MASK_CACHE
    wanted = {}
    for phrase, pts in points.items():
        if not (isinstance(pts, list) and pts and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pts)):
            raise SpfError(f"{where}: the points of '{phrase}' must be a non-empty list of [x, y] pairs.")
        key = hash_json({"sam": sam_source, "image": image_hash, "phrase": phrase, "points": pts})[:16]
        wanted[phrase] = cache / f"{image.stem}-{_slug(phrase)}-{key}.png"
    todo = {p: path for p, path in wanted.items() if not path.is_file()}
    if todo:
        _run_sam(image, {p: points[p] for p in todo}, todo, sam_source)
    return wanted


def _run_sam(image: Path, points: dict, paths: dict[str, Path], sam_source: str) -> None:
    from segment_anything import SamPredictor

    predictor = SamPredictor(_sam_model(sam_source))
    with Image.open(image) as img:
        predictor.set_image(np.asarray(img.convert("RGB")))
    for phrase, pts in points.items():
        coords = np.asarray(pts, dtype=np.float32)
        masks, scores, _ = predictor.predict(point_coords=coords, point_labels=np.ones(len(coords)), multimask_output=True)
        best = masks[int(np.argmax(scores))]
        path = paths[phrase]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        Image.fromarray((best * 255).astype(np.uint8), mode="L").save(tmp)
        tmp.replace(path)


_SAM: dict[str, object] = {}


def _sam_model(source: str):
    # One SAM per source for the whole process: it is large and runs once per image.
    from spf_bench import zoo

    if source not in _SAM:
        _SAM[source] = zoo.load("sam", source=source)
    return _SAM[source]


# ----------------------------------------------------------------------------- tensors

def _square(img: Image.Image, resolution: int) -> Image.Image:
    # Shorter side to the resolution, then a centre crop: the framing spf_train.data gives images.
    w, h = img.size
    scale = resolution / min(w, h)
    img = img.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - resolution) // 2, (h - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


def load_mask(path: Path, resolution: int) -> torch.Tensor:
    """``(R, R)`` float, 1 inside the mask."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(_square(img.convert("L"), resolution), dtype=np.float32)
    except OSError as exc:
        raise SpfError(f"The mask {path} cannot be read ({exc}).") from None
    return torch.from_numpy((arr > 0).astype(np.float32))


class PhraseGrounding:
    """Per training row: its grounded phrases' token selectors and masks, as padded tensors.

    ``batch(indices)`` gives ``selector (B, P, 77)``, ``masks (B, P, R, R)`` and ``valid (B, P)``
    for dataset indices, P being the largest number of phrases of any row. Token positions
    and mask files are checked for every row when this is built, so a phrase missing from its
    caption stops the run before the first step.
    """

    def __init__(self, folder: str | Path, rows: list[PortraitRow], tokenizer, resolution: int, sam_source: str = "tiny",
                 missing: str = "error"):
        if missing not in MISSING_GROUNDING:
            raise SpfError(f"missing_grounding must be one of {', '.join(MISSING_GROUNDING)}, not '{missing}'.")
        folder = Path(folder)
        by_file = _parse_groundings(folder, sam_source, missing)
        self.resolution = resolution
        self.length = tokenizer.model_max_length
        self.rows = []
        for row in rows:
            name = row.image_path.relative_to(folder).as_posix()
            if name not in by_file:
                raise SpfError(f"The row of {name} in {folder / METADATA_FILE} has no 'masks' or 'points' to ground TokenCompose's "
                               "losses (or train with --missing-grounding layout-sam).")
            phrases = {}
            for phrase, path in by_file[name].items():
                try:
                    phrases[phrase] = (phrase_token_indices(tokenizer, row.base_caption, row.target_caption, phrase), path)
                except SpfError as exc:
                    raise SpfError(f"In {folder / METADATA_FILE} ({name}): {exc}") from None
            self.rows.append(phrases)
        self.max_phrases = max(len(p) for p in self.rows)

    def item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.resolution
        selector = torch.zeros(self.max_phrases, self.length)
        masks = torch.zeros(self.max_phrases, r, r)
        valid = torch.zeros(self.max_phrases, dtype=torch.bool)
        for p, (tokens, path) in enumerate(self.rows[index].values()):
            selector[p, tokens] = 1.0
            masks[p] = load_mask(path, r)
            valid[p] = True
        return selector, masks, valid

    def batch(self, indices) -> dict[str, torch.Tensor]:
        items = [self.item(int(i)) for i in indices]
        return {"selector": torch.stack([i[0] for i in items]), "masks": torch.stack([i[1] for i in items]),
                "valid": torch.stack([i[2] for i in items])}


# ----------------------------------------------------------------------------- a demo set

_DEMO_CAPTIONS = (
    ("a photo of a young woman, long brown hair, in a park", "wearing round glasses"),
    ("a portrait of an elderly man, short grey hair, studio lighting", "wearing round glasses"),
    ("a photo of a smiling girl, curly red hair, at the beach", "wearing round glasses"),
    ("a close-up photo of a man, black hair, city street", "wearing round glasses"),
)


def write_demo_set(folder: str | Path, n: int, seed: int = 0, resolution: int = 64) -> Path:
    """Write ``n`` procedurally drawn portraits with subject and glasses masks.

    A stand-in for a real grounded portrait set, for tests and the tiny default: a face-coloured
    ellipse (the subject) at a jittered place on a random background, and a dark band across it
    (the glasses). The grounded phrases are those of :func:`default_phrases`.
    """
    folder = Path(folder)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        base, target = _DEMO_CAPTIONS[i % len(_DEMO_CAPTIONS)]
        subject, attribute = default_phrases(base, target)
        img, subject_mask, glasses_mask = _draw_portrait(rng, resolution)
        name = f"{i:04d}"
        img.save(folder / f"{name}.png")
        subject_mask.save(folder / "masks" / f"{name}-subject.png")
        glasses_mask.save(folder / "masks" / f"{name}-target.png")
        lines.append(json.dumps({
            "file_name": f"{name}.png", "base_caption": base, "target_caption": target, "category": "accessories",
            "masks": {subject: f"masks/{name}-subject.png", attribute: f"masks/{name}-target.png"},
        }))
    (folder / METADATA_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _draw_portrait(rng: random.Random, r: int):
    from PIL import ImageDraw

    img = Image.new("RGB", (r, r), tuple(rng.randrange(40, 220) for _ in range(3)))
    subject = Image.new("L", (r, r), 0)
    glasses = Image.new("L", (r, r), 0)
    cx, cy = r // 2 + rng.randint(-r // 8, r // 8), r // 2 + rng.randint(-r // 10, r // 10)
    rx, ry = r // 4 + rng.randint(-r // 16, r // 16), r // 3
    box = (cx - rx, cy - ry, cx + rx, cy + ry)
    skin = (rng.randrange(170, 250), rng.randrange(120, 200), rng.randrange(90, 170))
    ImageDraw.Draw(img).ellipse(box, fill=skin)
    ImageDraw.Draw(subject).ellipse(box, fill=255)
    band = (cx - rx + 2, cy - ry // 3, cx + rx - 2, cy - ry // 3 + max(2, r // 12))
    ImageDraw.Draw(img).rectangle(band, fill=(20, 20, 30))
    ImageDraw.Draw(glasses).rectangle(band, fill=255)
    return img, subject, glasses
