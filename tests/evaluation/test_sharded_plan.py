"""The shares of sharded scoring are the single process's own forward passes: the same images
in the same batches, in order, with what the cache held left out; two shares together fill
the cache a single process would, and the scores read from it are that process's, bit for bit."""

from __future__ import annotations

import hashlib
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from spf_bench.evaluation.backbone_major import score_jobs, scoring_job
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.evaluation.sharded import fill_share, plan_passes
from spf_bench.evaluation.scoring import _read_batch
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.metrics.backbones import BACKBONES, ScoreBackbone, make_backbone
from spf_bench.triples.captions import compose_triples
from spf_bench.triples.triple_set import build_triple_set

pytestmark = pytest.mark.usefixtures("single_thread")

N, BATCH = 6, 4  # batches of 4 and 2 pairs
METRICS = ("CLIP-I", "ID", "HPSv2")
NETWORKS = ("clip", "face", "hps")


def _digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:12]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, tiny_pipe):
    root = tmp_path_factory.mktemp("shard-plan")
    ts = build_triple_set(root / "triples", compose_triples(N, seed=5), weights="tiny",
                          settings=GenerationSettings("ddim", 2, 7.5, 64, 64), batch_size=BATCH, progress=False, pipe=tiny_pipe)
    mirrored = root / "mirrored"
    mirrored.mkdir()
    for t in ts.triples:
        Image.open(ts.original(t.id)).transpose(Image.FLIP_LEFT_RIGHT).save(mirrored / f"{t.id}.png")
    options = dict(metrics=METRICS, batch_size=BATCH, n_bootstrap=20)
    # a second job whose customized images are the originals (as a reconstruction that links
    # them): a single process finds all of them cached by then
    return [scoring_job(ts.root, mirrored, "tiny", method="mirrored", **options),
            scoring_job(ts.root, ts.root / "originals", "tiny", method="originals", **options)]


def _warm(cache_root, jobs):
    """A cache that already holds the CLIP features of one original, from an earlier run."""
    cache = FeatureCache(cache_root)
    clip = make_backbone("clip", "tiny")
    originals, _, keys, _, _ = _read_batch(jobs[0].pairs[1:2])
    cache.put(clip, keys[0], clip.encode(originals)[0])
    return cache


@pytest.fixture
def recorded(monkeypatch):
    """Every forward pass of the cached networks, in order: (network, digests of its images)."""
    calls: list[tuple[str, list[str]]] = []
    for name in NETWORKS:
        cls = BACKBONES[name]
        method = "_score" if issubclass(cls, ScoreBackbone) else "encode"
        real = getattr(cls, method)

        def spy(self, images, *rest, real=real, name=name):
            calls.append((name, [_digest(np.asarray(i)) for i in images]))
            return real(self, images, *rest)

        monkeypatch.setattr(cls, method, spy)
    return calls


def _planned(jobs, cache) -> list[tuple[str, list[str]]]:
    out = []
    for one in plan_passes(jobs, cache):
        originals, customized, _, _, _ = _read_batch(jobs[one.job].pairs[one.first:one.first + one.size])
        images = originals if one.side == "originals" else customized
        out.append((one.backbone, [_digest(images[i]) for i in one.positions]))
    return out


def _values(results):
    return [{k: v.tolist() for k, v in r.scores.per_pair.items()} | {"summary": r.summary["metrics"]} for r in results]


def test_the_plan_is_the_single_process_forward_passes(tmp_path, jobs, recorded):
    cache = _warm(tmp_path / "cache", jobs)
    recorded.clear()  # (the warming pass)
    planned = _planned(jobs, cache)
    assert recorded == []  # planning computes nothing
    score_jobs(jobs, cache_root=tmp_path / "cache", progress=False)
    assert planned == recorded
    # the warm original is left out, the second job's originals-as-customized are found cached
    assert sum(len(d) for n, d in planned if n == "clip") == 2 * N - 1
    assert sum(len(d) for n, d in planned if n == "face") == 2 * N
    assert [len(d) for n, d in planned if n == "hps"] == [4, 2, 4, 2]  # each job's customized images, scored


def test_two_shares_fill_what_one_process_computes_and_give_its_scores(tmp_path, jobs, recorded):
    reference = score_jobs(jobs, cache_root=_warm(tmp_path / "plain", jobs).root, progress=False)
    _warm(tmp_path / "start", jobs)
    counts = []
    for rank in (0, 1):  # each rank on its own copy of the starting cache: both plan from the same contents
        shutil.copytree(tmp_path / "start", tmp_path / f"rank{rank}")
        state = SimpleNamespace(process_index=rank, num_processes=2, wait_for_everyone=lambda: None)
        counts.append(fill_share(jobs, state, cache_root=tmp_path / f"rank{rank}", progress=False))
    assert counts[0] and counts[1]
    for name in NETWORKS:  # disjoint shares that add up to the whole
        assert counts[0].get(name, 0) + counts[1].get(name, 0) == {"clip": 2 * N - 1, "face": 2 * N, "hps": 2 * N}[name]
    shutil.copytree(tmp_path / "rank1", tmp_path / "rank0", dirs_exist_ok=True)
    recorded.clear()
    sharded = score_jobs(jobs, cache_root=tmp_path / "rank0", progress=False)
    assert recorded == []  # the main process found every feature and score in the cache
    assert _values(sharded) == _values(reference)
