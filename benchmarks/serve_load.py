"""Load on the study server: concurrent raters voting on loopback for a fixed time, no vote lost.

Starts ``spf-bench serve`` in a child process on 127.0.0.1 over a results folder (by default a
small one of noise images written to a temporary folder), adds a study with one rater per
thread, and lets every rater do what a browser does, as fast as the server answers: read the
next comparison, fetch one of its images, post the rating form. After ``--seconds`` it stops
and counts: votes the server acknowledged (303) against votes in SQLite (must be equal),
votes per second, requests per second, and the latency of each request kind (p50, p95, max).

    python benchmarks/serve_load.py                         # 20 raters, 60 s
    python benchmarks/serve_load.py --raters 20 --seconds 60 --runs RUNS_DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def noise_runs(root: Path, n: int = 20) -> Path:
    """base, naive, ours with per-pair scores and 32 px noise images; a triple set beside them."""
    rng = np.random.default_rng(0)
    categories = ("accessories", "appearance", "clothing", "image style")
    triples = [{"id": f"b{i:03d}", "category": categories[i % 4], "base_caption": "a photo of a person",
                "target_caption": "wearing glasses"} for i in range(n)]
    (root / "triples" / "originals").mkdir(parents=True)
    (root / "triples" / "manifest.json").write_text(json.dumps({"set": {}, "triples": triples}))
    for method in ("original", "base", "naive", "ours"):
        folder = root / "triples" / "originals" if method == "original" else root / method / "images"
        folder.mkdir(parents=True, exist_ok=True)
        for t in triples:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{t['id']}.png")
        if method != "original":
            rows = ["id,category,CLIP-T,ID"] + [f"{t['id']},{t['category']},{rng.random():.4f},{rng.random():.4f}" for t in triples]
            (root / method / "per_pair.csv").write_text("\n".join(rows) + "\n")
            (root / method / "summary.json").write_text(json.dumps({"identity": {"method": method}, "metrics": {}}))
    return root


def spf(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "spf_bench.cli", *args], env=env, **kw)


def rater(base: str, token: str, stop: float, log: dict, lock: threading.Lock) -> None:
    times = {"next": [], "image": [], "vote": []}
    acked = errors = 0
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < stop:
            try:
                t0 = time.perf_counter()
                comparison = client.get(f"{base}/rate/{token}/next.json").json()["comparison"]
                t1 = time.perf_counter()
                if comparison is None:
                    break
                client.get(base + comparison["left"]).raise_for_status()
                t2 = time.perf_counter()
                reply = client.post(f"{base}/rate/{token}/vote", data={"comparison": comparison["id"], "OBC": "left",
                                                                      "TAR": "right", "AP": "tie"})
                t3 = time.perf_counter()
            except httpx.HTTPError:
                errors += 1
                continue
            times["next"].append(t1 - t0)
            times["image"].append(t2 - t1)
            times["vote"].append(t3 - t2)
            acked += reply.status_code == 303
            errors += reply.status_code != 303
    with lock:
        for key, values in times.items():
            log.setdefault(key, []).extend(values)
        log["acked"] = log.get("acked", 0) + acked
        log["errors"] = log.get("errors", 0) + errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=Path, default=None, help="results folder (default: a generated one)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spf-serve-load-"))
    runs = args.runs or noise_runs(work / "runs")
    db = work / "study.sqlite"
    per_rater = int(args.seconds * 200)  # far more than anyone answers in the time: the clock ends the run
    created = spf("study", "create", str(runs), "--db", str(db), "--methods", "base,naive", "--per-rater",
                  str(per_rater), "--raters", str(args.raters), "--name", "load").wait()
    if created != 0:
        return created
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = spf("serve", str(runs), "--db", str(db), "--port", str(port), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.3)
        tokens = [r[0] for r in sqlite3.connect(db).execute("SELECT token FROM raters ORDER BY id")]
        log: dict = {}
        lock = threading.Lock()
        start = time.monotonic()
        threads = [threading.Thread(target=rater, args=(base, t, start + args.seconds, log, lock)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    requests = sum(len(log.get(k, [])) for k in ("next", "image", "vote"))
    result = {"raters": args.raters, "seconds": round(elapsed, 1), "votes_acknowledged": log.get("acked", 0),
              "votes_in_sqlite": stored, "votes_lost": log.get("acked", 0) - stored, "errors": log.get("errors", 0),
              "votes_per_s": round(stored / elapsed, 1), "requests_per_s": round(requests / elapsed, 1),
              "cpu_cores": os.cpu_count()}
    for key in ("next", "image", "vote"):
        values = np.array(log.get(key, [0.0])) * 1000
        result[f"{key}_ms"] = {"p50": round(float(np.percentile(values, 50)), 1),
                               "p95": round(float(np.percentile(values, 95)), 1), "max": round(float(values.max()), 1)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["votes_lost"] == 0 and result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
