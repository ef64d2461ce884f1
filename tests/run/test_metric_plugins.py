"""The metric contract from outside: a plug-in distribution (a ``*.dist-info`` with an
``entry_points.txt`` on ``sys.path``) appears in ``run``, ``evaluate``, their ``--help``, the
leaderboard and the report with no change to the suite; and ``evaluate`` scores a run's images
exactly as ``run`` did, by default."""

from __future__ import annotations

import csv
import json
import textwrap
import warnings

import numpy as np
import pytest

from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.metrics import SmallSetWarning, registry

pytestmark = pytest.mark.usefixtures("single_thread")

PLUGIN = "Norm-Ratio"
MODULE = '''
from typing import ClassVar

import torch

from spf_bench.metrics.base import PRESERVATION, PairMetric


class EmbeddingNormRatio(PairMetric):
    """||CLIP(C)|| / ||CLIP(O)||, a metric of a third party."""

    name: ClassVar[str] = "Norm-Ratio"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("clip",)
    default: ClassVar[bool] = True
    record_options: ClassVar[dict] = {"norm": "L2"}
    higher_is_better = True

    def update(self, emb_o: torch.Tensor, emb_c: torch.Tensor) -> None:
        self._append(emb_c.double().norm(dim=-1) / emb_o.double().norm(dim=-1))

    def feed(self, batch) -> None:
        self.update(*batch.stacked("clip", "image"))


class NotAMetric:
    name = "Broken"
'''


def install(root, entry_points: str, name: str = "spf_demo_metrics"):
    """A plug-in distribution as pip would leave it: the module and its dist-info."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(MODULE)
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return root


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install(tmp_path / "site", "[spf_bench.metrics]\nnorm = spf_demo_metrics:EmbeddingNormRatio\n")))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


def test_a_broken_plug_in_is_named_in_one_sentence(tmp_path, monkeypatch):
    for i, (target, message) in enumerate((("spf_demo_metrics:NotAMetric", "not a class following"),
                                           ("spf_demo_metrics:Missing", "could not be loaded"))):
        site = install(tmp_path / f"site{i}", f"[spf_bench.metrics]\nbroken = {target}\n", name=f"spf_demo_metrics{i}")
        (site / f"spf_demo_metrics{i}.py").rename(site / "spf_demo_metrics.py")
        with monkeypatch.context() as patch:
            patch.syspath_prepend(str(site))
            registry.refresh()
            with pytest.raises(SpfError, match=f"plug-in 'broken'.*{message}"):
                registry.metrics()
    registry.refresh()
    assert "Broken" not in registry.metrics()


def test_a_plug_in_appears_everywhere_and_evaluate_scores_like_run(plugin, tmp_path, tiny_networks, capsys):
    from spf_bench.cli import main
    from spf_bench.results.report import ReportOptions, build_report

    assert list(registry.metrics())[-1] == PLUGIN and PLUGIN in registry.default_metrics()
    for command in ("run", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert PLUGIN in capsys.readouterr().out

    out = tmp_path / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSetWarning)
        run_benchmark(RunRequest(methods=["base"], out=out, weights="tiny", n_triples=3, progress=False,
                                 settings=GenerationSettings("ddim", 2, 7.5, 64, 64), report=lambda *_: None,
                                 networks=tiny_networks))
    summary = json.loads((out / "base" / "summary.json").read_text())
    assert summary["metrics"][PLUGIN]["record"]["implementation"] == "spf_demo_metrics.EmbeddingNormRatio"
    assert summary["metrics"][PLUGIN]["record"]["options"]["norm"] == "L2"
    with open(out / "base" / "per_pair.csv", newline="") as handle:
        run_rows = list(csv.DictReader(handle))
    assert all(float(r[PLUGIN]) > 0 for r in run_rows)
    assert PLUGIN in (out / "leaderboard.csv").read_text().splitlines()[0]
    build_report(out, ReportOptions(bootstrap_draws=50))
    assert PLUGIN in (out / "report" / "index.md").read_text()

    # The same images through 'spf-bench evaluate' with every option left to its default.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSetWarning)
        code = main(["evaluate", "--triples", str(out / "triples"), "--images", str(out / "base"),
                     "--out", str(tmp_path / "again")])
    assert code == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert list(again["metrics"]) == list(summary["metrics"])
    for name, entry in summary["metrics"].items():
        assert again["metrics"][name]["record"]["fingerprint"] == entry["record"]["fingerprint"], name
        assert again["metrics"][name]["value"] == pytest.approx(entry["value"], rel=1e-6, nan_ok=True), name  # float32 round-off
    with open(tmp_path / "again" / "per_pair.csv", newline="") as handle:
        eval_rows = list(csv.DictReader(handle))
    for ours, theirs in zip(run_rows, eval_rows, strict=True):
        for column in ours:
            if column in ("id", "category", "face_found", "reason"):
                assert ours[column] == theirs[column]
            elif ours[column]:
                assert np.isclose(float(ours[column]), float(theirs[column]), rtol=1e-6), column
    assert summary["metrics"]["Seg-Cons"]["record"]["options"]["points_per_side"] == 4  # tiny's protocol grid
