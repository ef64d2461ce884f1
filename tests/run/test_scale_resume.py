"""Resume at scale: a run killed during generation and again during scoring redoes at most
the batch that was in flight, counted in rendered images and backbone passes."""

from __future__ import annotations

import numpy as np
import pytest

import spf_bench.evaluation.scoring as evaluate_module  # where each batch's metric updates happen
import spf_bench.generation.sampling as generate_module
from spf_bench.evaluation.evaluator import evaluate_run
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.generation.sampling import GenerationSettings, Job, generate
from spf_bench.methods.registry import build_method
from spf_bench.triples.captions import compose_triples
from spf_bench.triples.triple_set import build_triple_set

pytestmark = pytest.mark.usefixtures("single_thread")

N, BATCH = 20, 4
SETTINGS = GenerationSettings(sampler="ddim", steps=2, guidance=7.5, height=64, width=64)
METRICS = ("CLIP-I", "CLIP-T", "ID", "HPSv2")


class Killed(Exception):
    pass


class CountingCache(FeatureCache):
    """A feature cache that counts, per backbone, the images it had to have computed."""

    def __init__(self, root):
        super().__init__(root)
        self.computed: dict[str, int] = {}

    def put(self, backbone, sha256, feature):
        self.computed[backbone.name] = self.computed.get(backbone.name, 0) + 1
        super().put(backbone, sha256, feature)


@pytest.fixture(scope="module")
def triple_set(tmp_path_factory, tiny_pipe):
    return build_triple_set(tmp_path_factory.mktemp("scale-set") / "triples", compose_triples(N, seed=7), weights="tiny",
                            settings=SETTINGS, batch_size=BATCH, progress=False, pipe=tiny_pipe)


def _jobs(ts):
    return [Job(t.id, t.full_caption, t.seed) for t in ts.triples]


def test_generation_killed_mid_run_redoes_only_the_batch_in_flight(tmp_path, triple_set, monkeypatch):
    model = build_method("base", "tiny")
    real_render = generate_module.render
    rendered: list[int] = []

    def render(model, jobs, settings, batch_size=8, on_image=None, kill_at=None):
        for batch, images in real_render(model, jobs, settings, batch_size, on_image):
            rendered.append(len(batch))
            if kill_at is not None and len(rendered) == kill_at:
                raise Killed()  # this batch was rendered but never written: it is lost
            yield batch, images

    cache_root, out = tmp_path / "generations", tmp_path / "images"
    monkeypatch.setattr(generate_module, "render", lambda *a, **k: render(*a, **k, kill_at=3))
    with pytest.raises(Killed):
        generate(model, _jobs(triple_set), SETTINGS, out, cache_root, batch_size=BATCH, progress=False)
    assert sum(rendered) == 3 * BATCH
    monkeypatch.setattr(generate_module, "render", render)
    written = generate(model, _jobs(triple_set), SETTINGS, out, cache_root, batch_size=BATCH, progress=False)
    assert len(written) == N
    assert sum(rendered) - N == BATCH  # exactly one batch rendered twice
    # and the resumed images are the ones an uninterrupted run makes
    fresh = generate(model, _jobs(triple_set)[:BATCH * 3], SETTINGS, tmp_path / "fresh", tmp_path / "fresh-cache",
                     batch_size=BATCH, progress=False)
    assert all(fresh[i].read_bytes() == written[i].read_bytes() for i in fresh)


def test_scoring_killed_mid_run_redoes_at_most_one_batch_of_each_backbone(tmp_path, triple_set, tiny_networks, monkeypatch):
    from PIL import Image, ImageOps

    # the customized images: the originals mirrored stand in (scoring does not care)
    images = tmp_path / "method" / "images"
    images.mkdir(parents=True)
    for t in triple_set.triples:
        with Image.open(triple_set.original(t.id)) as original:
            ImageOps.mirror(original.convert("RGB")).save(images / f"{t.id}.png")
    common = dict(weights="tiny", metrics=METRICS, batch_size=BATCH, networks=tiny_networks, progress=False, write=False,
                  n_bootstrap=10)
    reference_cache = CountingCache(tmp_path / "reference-cache")
    reference = evaluate_run(triple_set.root, images, cache=reference_cache, **common)

    real_update = evaluate_module._update_metrics
    calls = []

    def update(*args):
        calls.append(1)
        if len(calls) == 3:
            raise Killed()  # killed in the third batch, after its features were encoded
        return real_update(*args)

    cache = CountingCache(tmp_path / "cache")
    monkeypatch.setattr(evaluate_module, "_update_metrics", update)
    with pytest.raises(Killed):
        evaluate_run(triple_set.root, images, cache=cache, **common)
    monkeypatch.setattr(evaluate_module, "_update_metrics", real_update)
    resumed = evaluate_run(triple_set.root, images, cache=cache, **common)
    # each original and customized image is encoded once by each feature backbone and each
    # customized image scored once by HPS, plus at most the batch in flight
    once = {"clip": 2 * N, "face": 2 * N, "hps": N}
    assert reference_cache.computed == once  # the uninterrupted run
    for name, expected in once.items():
        assert expected <= cache.computed.get(name, 0) <= expected + 2 * BATCH, (name, cache.computed)
    for name in ("CLIP-I", "CLIP-T", "ID", "HPSv2"):
        np.testing.assert_array_equal(resumed.scores.per_pair[name], reference.scores.per_pair[name])
