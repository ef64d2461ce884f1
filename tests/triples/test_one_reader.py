"""One triple-set reader: ``run``, ``evaluate`` and ``report`` read a set the same way, and
``evaluate`` refuses a set whose original changed after the manifest was written."""

from __future__ import annotations

import json

import pytest

from spf_bench.core.errors import SpfError
from spf_bench.triples import triple_set
from support.metric_images import make_method_run, make_triple_set, portrait


def test_evaluate_refuses_an_original_changed_after_the_manifest(tmp_path, capsys):
    from spf_bench.cli import main

    triples = make_triple_set(tmp_path / "set", n=3)
    run = make_method_run(tmp_path / "out", triples, method="m")
    portrait(99).save(triples / "originals" / "t00001.png")  # redrawn after the manifest
    code = main(["evaluate", "--triples", str(triples), "--images", str(run), "--metrics", "CLIP-I", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "t00001" in err and "no longer match" in err
    assert err.count("\n") == 1  # one sentence
    assert not (run / "summary.json").exists() and not (run / "per_pair.csv").exists()


def test_every_part_reads_a_set_with_the_one_reader(tmp_path):
    from spf_bench.evaluation.pairs import read_manifest as evaluator_read
    from spf_bench.results.runs import load_triple_set as report_read

    triples = make_triple_set(tmp_path / "set", n=3)
    shown = report_read(triples)
    assert type(shown) is triple_set.TripleSet and [t.id for t in shown.triples] == ["t00000", "t00001", "t00002"]
    info, entries, sha = evaluator_read(triples)
    assert entries == shown.entries() and sha == shown.manifest_sha256()
    # a repeated id: the same sentence from every reader
    manifest = json.loads((triples / "manifest.json").read_text())
    manifest["triples"][2]["id"] = "t00001"
    (triples / "manifest.json").write_text(json.dumps(manifest))
    for read in (evaluator_read, report_read, lambda root: triple_set.read_manifest(root, settings_required=False)):
        with pytest.raises(SpfError, match="missing or repeated triple ids"):
            read(triples)


def test_generating_from_a_set_needs_its_settings(tmp_path):
    triples = make_triple_set(tmp_path / "set", n=2)  # made by another tool: no sampler, steps ...
    with pytest.raises(SpfError, match=r"lacks the set field\(s\) base_model_sha256, sampler"):
        triple_set.load_triple_set(triples)
    assert len(triple_set.load_triple_set(triples, settings_required=False).triples) == 2
