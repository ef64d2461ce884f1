"""Triple sets: a killed build resumes to the same manifest and images; tampering is refused."""

from __future__ import annotations

import json

import pytest

from spf_bench.triples.captions import compose_triples
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.triples.triple_set import MANIFEST, build_triple_set, load_triple_set, read_manifest

# tiny-network ops: one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = GenerationSettings(sampler="ddim", steps=3, guidance=7.5, height=64, width=64)
N, BATCH = 4, 2


class Killed(KeyboardInterrupt):
    pass


def _build(folder, pipe, **kw):
    return build_triple_set(folder, compose_triples(N, seed=5), weights="tiny", settings=SETTINGS, batch_size=BATCH,
                            progress=False, pipe=pipe, **kw)


def _manifest_without_date(folder):
    data = json.loads((folder / MANIFEST).read_text())
    data["set"].pop("created")
    return data


@pytest.fixture(scope="module")
def reference_set(tmp_path_factory, tiny_pipe):
    return _build(tmp_path_factory.mktemp("uninterrupted"), tiny_pipe)


def test_manifest_records_protocol(reference_set):
    info = reference_set.info
    assert info["base_model"] == "sd15" and len(info["base_model_sha256"]) == 64 and info["weights"] == "tiny"
    assert (info["sampler"], info["steps"], info["guidance"], info["height"], info["width"]) == ("ddim", 3, 7.5, 64, 64)
    assert info["seed_policy"] and info["created"] and info["dtype"] == "float32"
    rows = json.loads((reference_set.root / MANIFEST).read_text())["triples"]
    assert [set(r) for r in rows] == [{"id", "category", "base_caption", "target_caption", "seed", "sha256"}] * N
    assert all((reference_set.root / "originals" / f"{r['id']}.png").is_file() for r in rows)


def test_killed_build_resumes_to_identical_set(tmp_path, tiny_pipe, reference_set):
    folder = tmp_path / "killed"
    calls = []

    def kill_after_first_batch(ts):
        calls.append(1)
        raise Killed()

    with pytest.raises(Killed):
        _build(folder, tiny_pipe, on_batch=kill_after_first_batch)
    partial = read_manifest(folder)
    # the manifest is written every few seconds, not per batch; the finished batch's files are
    # complete (atomic writes) and a resume adopts them
    assert len([h for h in partial.hashes.values() if h]) in (0, BATCH) and not partial.complete
    done = sorted(p.stem for p in (folder / "originals").glob("*.png"))
    assert len(done) == BATCH
    with pytest.raises(SpfError, match="unfinished"):
        load_triple_set(folder)
    stamps = {i: (folder / "originals" / f"{i}.png").stat().st_mtime_ns for i in done}

    batches = []
    resumed = _build(folder, tiny_pipe, on_batch=lambda ts: batches.append(1))
    assert len(batches) == N // BATCH - 1  # only the unfinished batches ran
    assert all((folder / "originals" / f"{i}.png").stat().st_mtime_ns == s for i, s in stamps.items())  # never rewritten
    assert resumed.complete and _manifest_without_date(folder) == _manifest_without_date(reference_set.root)
    for t in resumed.triples:
        assert resumed.original(t.id).read_bytes() == reference_set.original(t.id).read_bytes()
    assert resumed.sha256 == reference_set.sha256


def test_tampered_image_is_refused_with_its_id(tmp_path, tiny_pipe, reference_set):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(reference_set.root, folder)
    victim = reference_set.triples[2].id
    path = folder / "originals" / f"{victim}.png"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SpfError, match=victim):
        load_triple_set(folder)
    with pytest.raises(SpfError, match=victim):  # nor is a build resumed on top of it
        _build(folder, tiny_pipe)
    path.unlink()
    with pytest.raises(SpfError, match=victim):
        load_triple_set(folder)


def test_resume_with_other_settings_is_refused(tmp_path, tiny_pipe, reference_set):
    import shutil

    folder = tmp_path / "other"
    shutil.copytree(reference_set.root, folder)
    with pytest.raises(SpfError, match="steps"):
        build_triple_set(folder, compose_triples(N, seed=5), weights="tiny", pipe=tiny_pipe, progress=False,
                         settings=GenerationSettings("ddim", 4, 7.5, 64, 64), batch_size=BATCH)


def test_a_build_writes_its_manifest_at_the_start_and_end_not_after_every_batch(tmp_path, tiny_pipe, reference_set, monkeypatch):
    import spf_bench.triples.triple_set as triples_module

    # a manifest rewrite grows with the set, so one per batch made a build quadratic
    writes = []
    real_save = triples_module.TripleSet.save
    monkeypatch.setattr(triples_module, "MANIFEST_EVERY_S", 1e9)
    monkeypatch.setattr(triples_module.TripleSet, "save", lambda self: writes.append(1) or real_save(self))
    built = _build(tmp_path / "set", tiny_pipe)
    assert len(writes) == 2  # the start and the end; one per batch would be 1 + N // BATCH = 3
    assert built.complete and _manifest_without_date(tmp_path / "set") == _manifest_without_date(reference_set.root)
