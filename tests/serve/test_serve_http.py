"""The web app over HTTP: the browser's list and triple pages, refusals, traversal, escaping."""

from __future__ import annotations

import re
import sqlite3

import pandas as pd
import pytest
from starlette.testclient import TestClient

from support.serve_runs import IDS, METHODS, write_world_runs
from spf_bench.results.runs import load_runs
from spf_bench.serve.app import create_app
from spf_bench.study.db import default_db, ensure_schema
from spf_bench.study.sampling import create_study

HOSTILE = "<script>alert('m')</script>&\"x"
ONE_SENTENCE = re.compile(r"^[A-Z][^\n]*[.!]$")


@pytest.fixture()
def app(tmp_path):
    runs_dir = write_world_runs(tmp_path / "runs", hostile=HOSTILE)
    manifest = runs_dir / "triples" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("wearing glasses", "wearing glasses <img src=x onerror=alert(1)>"))
    db = ensure_schema(default_db(runs_dir))
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["base", "naive"], per_rater=6, raters=2)
    return runs_dir, db, TestClient(create_app(runs_dir, db))


def _order(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)">', html)


def test_list_sorts_by_a_metric_and_by_a_difference(app):
    runs_dir, _db, client = app
    frames = {m: pd.read_csv(runs_dir / m / "per_pair.csv").set_index("id") for m in METHODS}
    page = client.get("/", params={"metric": "CLIP-T", "sort": "ours", "order": "asc"})
    assert page.status_code == 200
    assert _order(page.text) == list(frames["ours"]["CLIP-T"].sort_values().index)
    diff = (frames["ours"]["ID"] - frames["base"]["ID"]).sort_values(ascending=False)
    page = client.get("/", params={"metric": "ID", "a": "ours", "b": "base", "sort": "diff", "order": "desc"})
    assert _order(page.text) == list(diff.index)
    assert f"{diff.iloc[0]:.3f}" in page.text  # the difference column shows the runs' numbers, unrecomputed
    page = client.get("/", params={"category": "clothing"})
    assert set(_order(page.text)) == set(frames["ours"].index[frames["ours"]["category"] == "clothing"])


def test_triple_page_shows_every_method_with_its_scores(app):
    runs_dir, _db, client = app
    page = client.get(f"/triple/{IDS[3]}")
    assert page.status_code == 200
    for method in METHODS:
        assert f'data-method="{method}"' in page.text
        value = pd.read_csv(runs_dir / method / "per_pair.csv").set_index("id").at[IDS[3], "Attr-Pres"]
        assert f"{value:.3f}" in page.text
    assert "reconstruction" in page.text and "Original portrait" in page.text
    images = re.findall(r'src="(/img/[0-9a-f]+)"', page.text)
    assert len(images) == 1 + len(METHODS) + 1 + 1  # original, each method (hostile one too), ours' reconstruction
    served = client.get(images[0])
    assert served.status_code == 200 and served.content == (runs_dir / "triples/originals" / f"{IDS[3]}.png").read_bytes()


def test_hostile_names_and_captions_are_escaped(app):
    _runs, _db, client = app
    for url in ("/", f"/triple/{IDS[0]}"):
        text = client.get(url).text
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get(f"/triple/{IDS[0]}").text


@pytest.mark.parametrize("url", ["/img/../../../../etc/passwd", "/img/..%2F..%2F..%2Fetc%2Fpasswd",
                                 "/img/%2e%2e%2fper_pair.csv", "/triple/..%2F..%2F..%2Fetc%2Fpasswd",
                                 "/img/" + "0" * 24, "/img/ours/images/w00.png"])
def test_traversal_and_unregistered_images_are_refused(app, url):
    _runs, _db, client = app
    reply = client.get(url)
    assert reply.status_code == 404
    assert "root:" not in reply.text and "Target-Acc" not in reply.text


def test_bad_queries_get_one_sentence_and_400(app):
    _runs, _db, client = app
    for params in ({"metric": "nope"}, {"sort": "diff", "a": "ours"}, {"category": "x"}, {"method": "ghost"}):
        reply = client.get("/", params=params, headers={"accept": "application/json"})
        assert reply.status_code == 400
        assert ONE_SENTENCE.match(reply.json()["error"]), reply.json()


def _tokens(db):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT r.token, c.id FROM raters r JOIN comparisons c ON c.rater_id = r.id ORDER BY r.id, c.position").fetchall()
    con.close()
    first = rows[0][0]
    return first, [c for t, c in rows if t == first], [c for t, c in rows if t != first]


def _count(db) -> int:
    con = sqlite3.connect(db)
    n = con.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    con.close()
    return n


def test_vote_refusals_store_nothing(app):
    _runs, db, client = app
    token, mine, theirs = _tokens(db)
    good = {"comparison": mine[0], "OBC": "left", "TAR": "tie", "AP": "right"}
    cases = [
        ("/rate/not-a-token/vote", good, 404),
        (f"/rate/{token}/vote", {**good, "comparison": theirs[0]}, 403),
        (f"/rate/{token}/vote", {**good, "comparison": 10**9}, 403),
        (f"/rate/{token}/vote", {**good, "OBC": "up"}, 400),
        (f"/rate/{token}/vote", {"OBC": "left", "TAR": "tie", "AP": "tie"}, 400),
        (f"/rate/{token}/vote", {**good, "comparison": "1; DROP TABLE votes"}, 400),
    ]
    for url, body, status in cases:
        reply = client.post(url, json=body)
        assert reply.status_code == status, (body, reply.text)
        assert ONE_SENTENCE.match(reply.json()["error"]), reply.json()
    bad_json = client.post(f"/rate/{token}/vote", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and ONE_SENTENCE.match(bad_json.json()["error"])
    assert _count(db) == 0
    assert client.post(f"/rate/{token}/vote", json=good).json()["stored"] is True
    again = client.post(f"/rate/{token}/vote", json=good)  # a resent vote is idempotent
    assert again.status_code == 200 and again.json() == {"stored": False, "done": 1, "total": len(mine)}
    changed = client.post(f"/rate/{token}/vote", json={**good, "OBC": "right"})
    assert changed.status_code == 409 and ONE_SENTENCE.match(changed.json()["error"])
    con = sqlite3.connect(db)
    assert con.execute("SELECT obc, tar, ap FROM votes").fetchall() == [("left", "tie", "right")]
    con.close()
    page = client.get("/rate/not-a-token")  # a person gets the sentence on a page, escaped
    assert page.status_code == 404 and "not valid" in page.text


def test_form_votes_advance_the_rater(app):
    _runs, db, client = app
    token, mine, _theirs = _tokens(db)
    for comparison in mine:
        state = client.get(f"/rate/{token}/next.json").json()
        assert state["comparison"]["id"] == comparison
        reply = client.post(f"/rate/{token}/vote", data={"comparison": comparison, "OBC": "left", "TAR": "left", "AP": "tie"},
                            follow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"] == f"/rate/{token}"
    assert client.get(f"/rate/{token}/next.json").json()["comparison"] is None
    assert "All" in client.get(f"/rate/{token}").text and _count(db) == len(mine)


def test_untrained_weights_are_flagged_on_results_pages_only(tmp_path):
    import json

    runs_dir = write_world_runs(tmp_path / "runs")
    for method in METHODS:
        path = runs_dir / method / "summary.json"
        summary = json.loads(path.read_text())
        summary["identity"]["weights"] = "tiny"
        path.write_text(json.dumps(summary))
    db = ensure_schema(default_db(runs_dir))
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["naive"], per_rater=2, raters=1)
    client = TestClient(create_app(runs_dir, db))
    token, _mine, _theirs = _tokens(db)
    assert 'class="banner"' in client.get("/").text and "untrained tiny" in client.get(f"/triple/{IDS[0]}").text
    assert 'class="banner"' not in client.get(f"/rate/{token}").text  # raters judge images, not numbers
