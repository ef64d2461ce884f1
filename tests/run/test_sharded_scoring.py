"""``spf-bench run`` under ``accelerate launch`` with two CPU processes (gloo) against one process:
the same images, the same per-pair values, summary and leaderboard, and each process computed
only its share of the backbone passes."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.triples.captions import compose_triples
from spf_bench.triples.triple_set import build_triple_set
from spf_bench.zoo.registry import TINY_FORMAT_VERSION

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[2]
TINY_DIR = f"tiny-v{TINY_FORMAT_VERSION}"  # the tiny zoo's folder in a cache
N = 6
# the cheapest set with every kind of network: one not cached (LPIPS) and cached ones, among
# them SAM, whose masks flip a pixel on the smallest change of an image
METRICS = ("LPIPS", "CLIP-I", "CLIP-T", "Seg-Cons", "ID")
CACHED = ("clip", "face", "sam")  # the networks whose passes are shared out
SCALE = {"Seg-Cons": 100.0}  # the others lie within [-1, 1]
SETTINGS = GenerationSettings("ddim", 2, 7.5, 64, 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh_cache(root: Path, spf_cache: Path) -> Path:
    """A cache folder of its own (features, generations) sharing the session's tiny zoo."""
    root.mkdir(parents=True)
    (root / TINY_DIR).symlink_to(spf_cache / TINY_DIR, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, spf_cache, tiny_pipe):
    root = tmp_path_factory.mktemp("sharded")
    triples = root / "triples"
    build_triple_set(triples, compose_triples(N, seed=11), weights="tiny", settings=SETTINGS, batch_size=4,
                     progress=False, pipe=tiny_pipe)
    args = ["--method", "base", "--triples", str(triples), "--batch-size", "4", "--no-progress"]
    for metric in METRICS:
        args += ["--metric", metric]

    # one process, in this one: a cache of its own, so it computes everything itself
    one = root / "one"
    before = os.environ["SPF_CACHE"]
    os.environ["SPF_CACHE"] = str(_fresh_cache(root / "cache-one", spf_cache))
    try:
        clock = time.perf_counter()
        run_benchmark(RunRequest(methods=["base"], out=one, triples=triples, batch_size=4, progress=False,
                                 eval_options={"metrics": METRICS}, report=lambda *_: None))
        seconds_one = time.perf_counter() - clock
    finally:
        os.environ["SPF_CACHE"] = before

    # two processes: accelerate's --multi_gpu goes through torchrun (--cpu alone starts one
    # process); each process runs one thread, as this one does
    two = root / "two"
    env = {**os.environ, "SPF_CACHE": str(_fresh_cache(root / "cache-two", spf_cache)), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "spf_bench.cli", "run", *args, "--out", str(two)]
    clock = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    seconds_two = time.perf_counter() - clock
    assert done.returncode == 0, done.stderr[-4000:]
    print(f"\n1 process (in this one): {seconds_one:.1f} s; 2 processes (with their start): {seconds_two:.1f} s")
    return one, two, done.stdout + done.stderr


def _rows(folder: Path) -> list[dict]:
    with open(folder / "base" / "per_pair.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_images_are_the_same_on_one_and_two_processes(two_runs):
    one, two, _ = two_runs
    names = sorted(p.name for p in (one / "base" / "images").glob("*.png"))
    assert len(names) == N
    for name in names:
        assert (one / "base" / "images" / name).read_bytes() == (two / "base" / "images" / name).read_bytes(), name


def test_per_pair_values_summary_and_leaderboard_agree(two_runs):
    one, two, _ = two_runs
    rows_one, rows_two = _rows(one), _rows(two)
    assert [r["id"] for r in rows_one] == [r["id"] for r in rows_two]
    largest = {}
    for metric in METRICS:
        pairs = [(float(a[metric]), float(b[metric])) for a, b in zip(rows_one, rows_two)]
        largest[metric] = max(abs(a - b) for a, b in pairs)
        # the requirement is 1e-4 of the metric's scale; the same forward passes give exactly 0
        assert largest[metric] <= 1e-4 * SCALE.get(metric, 1.0), (metric, largest[metric])
    print("largest per-pair difference between 1 and 2 processes:", largest)
    assert all(difference == 0.0 for difference in largest.values()), largest
    summary_one = json.loads((one / "base" / "summary.json").read_text())["metrics"]
    summary_two = json.loads((two / "base" / "summary.json").read_text())["metrics"]
    for metric in METRICS:
        for key in ("value", "ci_low", "ci_high", "n"):
            assert summary_one[metric][key] == summary_two[metric][key], (metric, key)
    board_one, board_two = (_board(folder) for folder in (one, two))
    assert len(board_one) == 1 and board_one == board_two


def _board(folder: Path) -> list[dict]:
    """The leaderboard's rows without the dates the runs were scored on."""
    with open(folder / "leaderboard.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k.lower() != "date"} for row in csv.DictReader(handle)]


def test_each_process_computed_its_share_and_only_the_main_one_wrote_results(two_runs):
    _, two, log = two_runs
    shares = {int(m.group(1)): dict((name, int(n)) for name, n in re.findall(r"(\w+) (\d+)", m.group(2)))
              # [^)]*: two processes' lines may land on one line of the shared output
              for m in re.finditer(r"scoring share of process (\d) of 2: \d+ images computed \(([^)]*)\)", log)}
    assert sorted(shares) == [0, 1], log[-3000:]
    for network in CACHED:
        # scoring batches of 8 hold all 6 pairs: one pass of the originals, one of the
        # customized images, one per process
        assert shares[0][network] == shares[1][network] == N, shares
    assert "lpips" not in shares[0] and "lpips" not in shares[1]  # computed by the main process while scoring
    assert log.count("leaderboard: ") == 1  # the main process alone scored and wrote
    assert not list(two.rglob("*.tmp*")) and not list(two.rglob(".tmp-*"))
