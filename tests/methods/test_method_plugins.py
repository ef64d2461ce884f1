"""A method from another distribution: registered through the ``spf_bench.methods`` entry
point group, it shows in the registry, --help, a run, the leaderboard and the tables'
labels and order without a change to the suite. The distribution is made here: a package
and a ``*.dist-info`` with ``entry_points.txt`` on ``sys.path``."""

from __future__ import annotations

import csv
import textwrap

import pytest

from spf_bench.core.errors import SpfError
from spf_bench.methods import registry

pytestmark = pytest.mark.usefixtures("single_thread")

PLUGIN = '''
from spf_bench.methods.registry import MethodModel, MethodSpec, PaperRow


def build(request):
    # the base model, with an identity of its own so its images are cached apart
    return MethodModel(request.method, request.base_pipe(), request.fingerprint(plugin="{value}"))


RECORD = MethodSpec("sharp-portrait", summary="a third-party method (the base model under another name)",
                    build=build, label="Sharp Portrait (third party)",
                    paper_rows=(PaperRow("tab1", 99, "Sharp Portrait", "Baselines"),))
BROKEN = MethodSpec("other-name", summary="named unlike its entry point", build=build)
TAKEN = MethodSpec("base", summary="a name the suite has", build=build)
NOT_A_RECORD = 3
'''


def _distribution(root, entry_points: str, value: str = "ok"):
    package = root / "sharp_plugin"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(PLUGIN.replace("{value}", value))
    info = root / "sharp_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sharp-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    _distribution(tmp_path / "site", "[spf_bench.methods]\nsharp-portrait = sharp_plugin:RECORD\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.reload_methods()
    yield registry.get_method("sharp-portrait")
    monkeypatch.undo()
    registry.reload_methods()
    assert "sharp-portrait" not in registry.known_methods()


def test_a_plugin_method_is_in_the_registry_the_help_and_the_tables(plugin, capsys):
    from spf_bench.cli import main
    from spf_bench.results import tables

    assert plugin.origin == "sharp-plugin" and plugin.checkpoint is None
    assert list(registry.known_methods())[-1] == "sharp-portrait"  # after the suite's own
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "sharp-portrait" in capsys.readouterr().out
    assert tables.method_label("sharp-portrait") == "Sharp Portrait (third party)"
    assert tables.table_layout("tab1").rows[-1] == ("sharp-portrait", "Sharp Portrait", "Baselines")
    order = tables.method_order()
    assert order.index("sharp-portrait") > order.index("magnet")
    assert tables.method_sort_key("sharp-portrait") < tables.method_sort_key("zz-unregistered")


def test_a_plugin_method_runs_and_enters_the_leaderboard(plugin, tmp_path, tiny_networks):
    from spf_bench.benchmark import RunRequest, run_benchmark
    from spf_bench.generation.sampling import GenerationSettings

    out = tmp_path / "runs"
    run_benchmark(RunRequest(
        methods=["sharp-portrait"], out=out, weights="tiny", n_triples=2, settings=GenerationSettings("ddim", 2, 7.5, 64, 64),
        batch_size=2, progress=False, report=lambda *_: None, networks=tiny_networks,
        eval_options={"metrics": ("LPIPS",), "n_bootstrap": 20}))
    assert sorted(p.name for p in (out / "sharp-portrait" / "images").iterdir()) == ["t00000.png", "t00001.png"]
    with open(out / "leaderboard.csv", newline="") as handle:
        assert [r["method"] for r in csv.DictReader(handle)] == ["sharp-portrait"]
    assert "| sharp-portrait |" in (out / "leaderboard.md").read_text()


def test_a_broken_plugin_is_one_sentence_naming_it(tmp_path, monkeypatch):
    cases = {
        "sharp-portrait = sharp_plugin:MISSING": "Loading the 'sharp-portrait' entry point of sharp-plugin",
        "sharp-portrait = sharp_plugin:BROKEN": "name the entry point after its method",
        "sharp-portrait = sharp_plugin:NOT_A_RECORD": "must give a spf_bench.methods.registry.MethodSpec",
        "base = sharp_plugin:TAKEN": "which the suite already has",
    }
    for i, (line, message) in enumerate(cases.items()):
        site = tmp_path / f"site{i}"
        _distribution(site, f"[spf_bench.methods]\n{line}\n")
        with monkeypatch.context() as patch:
            patch.syspath_prepend(str(site))
            with pytest.raises(SpfError, match=message) as info:
                registry.reload_methods()
            assert "\n" not in str(info.value)
    registry.reload_methods()
