"""A results folder shaped like a synthetic-world run, with known world metrics (no test lives here).

Every (method, triple) image is distinct random noise, so a simulated rater that recognises
images by their bytes can tell them apart; the world columns are drawn so that ``ours`` wins
some comparisons, ties some and loses some, on every question.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

CATEGORIES = ("accessories", "appearance", "clothing", "image style")
TARGETS = {"accessories": "wearing glasses", "appearance": "with red hair", "clothing": "wearing a blue shirt",
           "image style": "cartoon style"}
N_TRIPLES = 12
IDS = tuple(f"w{i:02d}" for i in range(N_TRIPLES))
METHODS = ("base", "naive", "ours")


def noise_png(path: Path, seed: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def world_frame(method: str) -> pd.DataFrame:
    rng = np.random.default_rng(sum(method.encode()))
    frame = pd.DataFrame({"id": list(IDS), "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(N_TRIPLES)]})
    frame["CLIP-T"] = rng.uniform(0.1, 0.4, N_TRIPLES)
    frame["ID"] = rng.uniform(0.2, 0.9, N_TRIPLES)
    frame["LPIPS"] = rng.uniform(0.1, 0.6, N_TRIPLES)
    frame["Target-Acc"] = rng.choice([0.0, 1.0], N_TRIPLES, p=[0.3, 0.7]) if method != "base" else 0.0
    frame["Attr-Pres"] = rng.choice([7 / 9, 8 / 9, 1.0], N_TRIPLES)
    frame["ID-Pres"] = frame["ID"]
    frame["face_found"] = True
    frame["reason"] = ""
    return frame


def write_world_runs(root: Path, hostile: str | None = None) -> Path:
    """base, naive, ours (and ``hostile``, a method with a hostile name, when given) plus a triple set."""
    root.mkdir(parents=True, exist_ok=True)
    triples = [{"id": tid, "category": CATEGORIES[i % len(CATEGORIES)],
                "base_caption": "a photo of a person, with short black hair, wearing a red shirt",
                "target_caption": TARGETS[CATEGORIES[i % len(CATEGORIES)]], "seed": i} for i, tid in enumerate(IDS)]
    tset = root / "triples"
    tset.mkdir(exist_ok=True)
    (tset / "manifest.json").write_text(json.dumps({"set": {"weights": "synth"}, "triples": triples}))
    for i, tid in enumerate(IDS):
        noise_png(tset / "originals" / f"{tid}.png", 1000 + i)
    for m, method in enumerate([*METHODS, *([hostile] if hostile else [])]):
        folder = root / (method if method in METHODS else "hostile")
        frame = world_frame(method if method in METHODS else "naive")
        folder.mkdir(exist_ok=True)
        frame.to_csv(folder / "per_pair.csv", index=False)
        summary = {"identity": {"method": method, "weights": "synth", "triples_dir": str(tset),
                                "checkpoint_sha256": hashlib.sha256(method.encode()).hexdigest()}, "metrics": {}}
        (folder / "summary.json").write_text(json.dumps(summary))
        for i, tid in enumerate(IDS):
            noise_png(folder / "images" / f"{tid}.png", 100 * (m + 1) + i)
            if method == "ours":
                noise_png(folder / "reconstruction" / f"{tid}.png", 5000 + i)
    return root


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(runs_dir: Path, port: int, timeout: float = 300.0):
    """``spf-bench serve`` in a child process; returns it once it answers on ``port``.

    The generous timeout is for loaded machines: the command line imports torch before serving.
    """
    import os
    import subprocess
    import sys
    import time

    import httpx

    root = Path(__file__).resolve().parents[2]  # the repository
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "spf_bench.cli", "serve", str(runs_dir), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not answer in time")
