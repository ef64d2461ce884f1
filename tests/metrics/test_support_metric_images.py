"""The metric tests' helpers build the triple-set layout they claim to."""

import json

from support.metric_images import make_triple_set


def test_triple_set_layout(tmp_path):
    triples = make_triple_set(tmp_path / "set", n=3)
    manifest = json.loads((triples / "manifest.json").read_text())
    assert [t["id"] for t in manifest["triples"]] == ["t00000", "t00001", "t00002"]
    assert all((triples / "originals" / f"{t['id']}.png").is_file() for t in manifest["triples"])
