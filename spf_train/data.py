"""Portrait training sets: an image folder with ``metadata.jsonl``.

Each line of ``metadata.jsonl`` is a JSON object with ``file_name`` (relative to the
folder), ``base_caption`` (c_b), ``target_caption`` (c_t) and ``category``: the layout of
Hugging Face image folders, so ``datasets.load_dataset("imagefolder", data_dir=...)`` reads
the same folder. Every row is validated when the set is opened, before any training step.

An optional ``target_mask`` names a greyscale image (relative to the folder, the size of the
portrait) that is white where the target attribute is: the ground-truth region that only a
set whose images are rendered, not photographed, can record. Stage 2's ``mask_variant=oracle``
reads it; nothing else does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from spf_bench.core.captions import join_caption
from spf_bench.core.errors import SpfError

METADATA_FILE = "metadata.jsonl"
REQUIRED_FIELDS = ("file_name", "base_caption", "target_caption", "category")
MASK_FIELD = "target_mask"


@dataclass(frozen=True)
class PortraitRow:
    image_path: Path
    base_caption: str
    target_caption: str
    category: str
    target_mask: Path | None = None
    line: int = field(default=0, compare=False)  # of metadata.jsonl, for error sentences

    @property
    def full_caption(self) -> str:
        return join_caption(self.base_caption, self.target_caption)


def _row_problem(line_no: int, line: str, folder: Path) -> tuple[PortraitRow | None, str | None]:
    where = f"{METADATA_FILE} line {line_no}"
    try:
        record = json.loads(line)
    except ValueError:
        return None, f"{where} is not valid JSON"
    if not isinstance(record, dict):
        return None, f"{where} is not a JSON object"
    missing = [k for k in REQUIRED_FIELDS if k not in record]
    if missing:
        return None, f"{where} lacks the field(s) {', '.join(missing)}"
    name = str(record["file_name"])
    where = f"{where} ({name})"
    for key in ("base_caption", "target_caption"):
        if not isinstance(record[key], str) or not record[key].strip():
            return None, f"{where} has an empty {key}"
    path = folder / name
    problem = _unreadable(path)
    if problem:
        return None, f"{where}: the image {problem}"
    mask = None
    if record.get(MASK_FIELD) is not None:
        mask = folder / str(record[MASK_FIELD])
        problem = "does not exist" if not mask.is_file() else _unreadable(mask)
        if problem:
            return None, f"{where}: its {MASK_FIELD} {record[MASK_FIELD]} {problem}"
    return PortraitRow(path, record["base_caption"].strip(), record["target_caption"].strip(), str(record["category"]),
                       mask, line_no), None


def _unreadable(path: Path) -> str | None:
    """Why the image file ``path`` cannot be used, or None."""
    if not path.is_file():
        return "file does not exist"
    try:
        with Image.open(path) as image:
            image.verify()  # reads the whole file's structure without decoding pixels
        with Image.open(path) as image:
            image.convert("RGB").load()
    except Exception as exc:  # PIL raises many types for corrupt files
        return f"cannot be read ({type(exc).__name__})"
    return None


def read_rows(folder: str | os.PathLike, skip_bad: bool = False, report=print) -> list[PortraitRow]:
    """Validate and return every row; a bad row stops with its line and file unless ``skip_bad``."""
    folder = Path(folder)
    meta = folder / METADATA_FILE
    if not meta.is_file():
        raise SpfError(f"The training folder {folder} has no {METADATA_FILE}.")
    rows, problems = [], []
    for line_no, line in enumerate(meta.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row, problem = _row_problem(line_no, line, folder)
        if problem is None:
            rows.append(row)
        elif not skip_bad:
            raise SpfError(f"In {folder}, {problem}; fix it or pass --skip-bad to drop such rows.")
        else:
            problems.append(problem)
    if problems:
        report(f"Skipped {len(problems)} bad row(s) of {meta}: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
    if not rows:
        raise SpfError(f"The training folder {folder} has no usable rows.")
    return rows


def _fit(image: Image.Image, resolution: int, resample) -> Image.Image:
    """Shortest side resized to R, then centre-cropped to R x R."""
    w, h = image.size
    scale = resolution / min(w, h)
    image = image.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), resample)
    w, h = image.size
    left, top = (w - resolution) // 2, (h - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def image_to_tensor(image: Image.Image, resolution: int) -> torch.Tensor:
    """RGB image -> (3, R, R) in [-1, 1]: shortest side resized to R, then centre-cropped."""
    array = np.asarray(_fit(image.convert("RGB"), resolution, Image.BICUBIC), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def mask_to_tensor(image: Image.Image, resolution: int) -> torch.Tensor:
    """Greyscale mask -> (R, R) in [0, 1], cropped exactly as its portrait (bilinear, so a
    resized edge pixel keeps its covered fraction instead of cubic overshoot)."""
    array = np.asarray(_fit(image.convert("L"), resolution, Image.BILINEAR), dtype=np.float32) / 255.0
    return torch.from_numpy(array).contiguous()


def check_caption_tokens(folder: Path, rows: list[PortraitRow], tokenizer) -> None:
    """Refuse a row whose full caption is longer than the text encoder's context.

    The encoder would see only its first ``model_max_length`` tokens, so the model would be
    trained on a caption other than the one written, without a word said; the first such row
    is named by file and line before any step is taken.
    """
    limit = tokenizer.model_max_length
    for row in rows:
        count = len(tokenizer(row.full_caption, truncation=False).input_ids)
        if count > limit:
            raise SpfError(f"In {folder}, {METADATA_FILE} line {row.line} ({row.image_path.name}) has a caption of {count} "
                           f"CLIP tokens, longer than the {limit} the text encoder reads; shorten it.")


class PortraitDataset(torch.utils.data.Dataset):
    """Validated rows; an item is ``{"pixels", "base_caption", "target_caption", "caption", "index"}``.
    With ``tokenizer``, a caption longer than its context is refused (see ``check_caption_tokens``)."""

    def __init__(self, folder: str | os.PathLike, resolution: int, skip_bad: bool = False, report=print, tokenizer=None):
        self.folder = Path(folder)
        self.resolution = resolution
        self.rows = read_rows(folder, skip_bad=skip_bad, report=report)
        if tokenizer is not None:
            check_caption_tokens(self.folder, self.rows, tokenizer)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_target_masks(self) -> bool:
        return all(row.target_mask is not None for row in self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        with Image.open(row.image_path) as image:
            pixels = image_to_tensor(image, self.resolution)
        item = {
            "pixels": pixels, "base_caption": row.base_caption, "target_caption": row.target_caption,
            "caption": row.full_caption, "index": index,
        }
        if row.target_mask is not None:
            with Image.open(row.target_mask) as mask:
                item[MASK_FIELD] = mask_to_tensor(mask, self.resolution)
        return item


def collate(items: Sequence[dict]) -> dict:
    batch = {
        "pixels": torch.stack([it["pixels"] for it in items]),
        "base_caption": [it["base_caption"] for it in items],
        "target_caption": [it["target_caption"] for it in items],
        "caption": [it["caption"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }
    if all(MASK_FIELD in it for it in items):
        batch[MASK_FIELD] = torch.stack([it[MASK_FIELD] for it in items])
    return batch


def batch_indices(dataset_size: int, batch_size: int, micro_step: int, seed: int) -> list[int]:
    """The dataset indices of micro-batch number ``micro_step``: a pure function of its
    arguments (each epoch a seeded permutation), so a resumed run sees exactly the batches the
    uninterrupted run would have seen, without saving any sampler state."""
    out = []
    for position in range(micro_step * batch_size, (micro_step + 1) * batch_size):
        epoch, offset = divmod(position, dataset_size)
        order = torch.randperm(dataset_size, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        out.append(int(order[offset]))
    return out


def make_training_set(
    pipe, captions: Sequence[tuple[str, str] | tuple[str, str, str]], out_dir: str | os.PathLike,
    steps: int = 4, seed: int = 0, guidance_scale: float = 1.0,
) -> Path:
    """Write a small training set made by ``pipe`` (tiny by default in tests and demos).

    ``captions`` holds ``(base_caption, target_caption[, category])`` tuples; each image is
    generated from the full caption c_b ⊕ c_t with seed ``seed + i``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, entry in enumerate(captions):
        base, target = entry[0], entry[1]
        category = entry[2] if len(entry) > 2 else "accessories"
        generator = torch.Generator("cpu").manual_seed(seed + i)
        image = pipe(join_caption(base, target), num_inference_steps=steps, guidance_scale=guidance_scale,
                     generator=generator, output_type="pil").images[0]
        name = f"{i:05d}.png"
        image.save(out / name)
        lines.append(json.dumps({"file_name": name, "base_caption": base, "target_caption": target, "category": category}))
    (out / METADATA_FILE).write_text("\n".join(lines) + "\n")
    return out
