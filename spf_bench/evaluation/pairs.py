"""The evaluator's inputs: a triple set's manifest and the customized images, matched id for id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spf_bench.core.errors import SpfError
from spf_bench.triples.triple_set import MANIFEST, load_triple_set


@dataclass
class Pair:
    id: str
    category: str
    base_caption: str
    target_caption: str
    original: Path
    customized: Path


def read_manifest(triples_dir: Path) -> tuple[dict, list[dict], str]:
    """The triple set's ``set`` entry, its triples and the sha256 of ``manifest.json``, read by
    the suite's one triple-set reader: an unfinished set, or one whose originals changed after
    the manifest was written, is refused before anything is scored."""
    ts = load_triple_set(triples_dir, settings_required=False)
    if not ts.triples:
        raise SpfError(f"The triple set {Path(triples_dir) / MANIFEST} has no triples; an empty set cannot be scored.")
    return ts.info, ts.entries(), ts.manifest_sha256()


def customized_folder(images: Path) -> Path:
    """A method run folder (``OUT/<method>``) means its ``images`` subfolder."""
    images = Path(images)
    if not images.is_dir():
        raise SpfError(f"The images folder {images} does not exist.")
    if (images / "images").is_dir() and not any(images.glob("*.png")):
        return images / "images"
    return images


def _ids_sentence(ids: list[str]) -> str:
    shown = ", ".join(ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def load_pairs(triples_dir: Path, images_dir: Path) -> list[Pair]:
    """The (original, customized) pairs, refusing sets that do not match id for id."""
    _, triples, _ = read_manifest(triples_dir)
    originals = Path(triples_dir) / "originals"
    folder = customized_folder(images_dir)
    found = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and p.is_file()}
    ids = [t["id"] for t in triples]
    missing_o = [i for i in ids if not (originals / f"{i}.png").is_file()]
    if missing_o:
        raise SpfError(f"The triple set {triples_dir} lacks the original(s) {_ids_sentence(missing_o)} in {originals}.")
    missing_c = [i for i in ids if i not in found]
    if missing_c:
        raise SpfError(f"{folder} lacks the customized image(s) of triple(s) {_ids_sentence(missing_c)}.")
    extra = sorted(set(found) - set(ids))
    if extra:
        raise SpfError(f"{folder} holds image(s) {_ids_sentence(extra)} whose ids are not in the triple set {triples_dir}.")
    return [Pair(t["id"], t.get("category", ""), t.get("base_caption", ""), t.get("target_caption", ""),
                 originals / f"{t['id']}.png", found[t["id"]]) for t in triples]

