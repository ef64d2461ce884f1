"""Peak memory of loading a metric network from its weight files, and of scoring one image after.

    python benchmarks/weights_load_memory.py [--networks sam,hps,mps] [--former]

``random`` weights never touch a file, so ``metrics_memory.py`` cannot see what a load from
files costs. Here each network's real-size architecture (seeded random weights) is first
written in the layout of its release files (SAM's ``.pth``, HPS's ``{"state_dict": ...}``
``.pt``, MPS's ``.safetensors`` beside its CLIP-H config and tokenizer) into a temporary
folder, then a fresh child process loads it through the zoo's own ``load_folder`` and scores
one 512 px image. Printed per network: the peak RSS of the load alone, and of the load plus
one image, above the footprint after imports, beside the size of the weights.

``--former`` loads the way the zoo did before (``load_state_dict`` copying the file's tensors
into the freshly built module), for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1024 ** 3


def write_release_layout(name: str, folder: Path) -> int:
    """Write network ``name`` (real size, seeded random) as its release files; returns the weights' bytes."""
    import torch

    from spf_bench import zoo
    from spf_bench.zoo.networks import hps, mps, sam

    network = zoo.load(name, source="random")
    folder.mkdir(parents=True, exist_ok=True)
    if name == "sam":
        state = network.state_dict()
        torch.save(state, folder / sam.CHECKPOINT)
    elif name == "hps":
        state = network.model.state_dict()
        torch.save({"state_dict": state}, folder / hps.CHECKPOINT)
    elif name == "mps":
        from safetensors.torch import save_file

        from spf_bench.zoo.networks.mps_convert import WEIGHTS

        clip_dir = folder / mps.CLIP_DIR
        mps.write_clip_tokenizer(clip_dir)
        mps._write_json(clip_dir / "config.json", {"model_type": "clip", **mps.CLIP_H_CONFIG})
        mps._write_json(clip_dir / "preprocessor_config.json", mps.PREPROCESSOR_CONFIG)
        state = {k: v.contiguous() for k, v in network.model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
    else:
        raise SystemExit(f"no release layout written for '{name}' (sam, hps or mps)")
    return sum(t.numel() * t.element_size() for t in state.values())


def child(name: str, folder: Path, former: bool) -> dict:
    import numpy as np
    import torch

    from spf_bench.evaluation.backbone_major import peak_rss_bytes
    from spf_bench.metrics.backbones import make_backbone
    from spf_bench.zoo import registry
    from spf_bench.zoo.networks import clip, hps, mps, sam

    if former:
        from spf_bench.zoo import checkpoints

        def copying(module, state, path, strict=True, adopt=False):
            checkpoints.load_into(module, state, path, strict=strict, adopt=False)

        for module in (clip, hps, mps, sam):
            module.load_into = copying
    with open("/proc/self/statm") as handle:
        baseline = int(handle.read().split()[1]) * 4096
    start = time.perf_counter()
    network = registry.get_network(name).load_folder(folder, torch.device("cpu"), torch.float32)
    load_seconds = time.perf_counter() - start
    after_load = peak_rss_bytes()
    image = (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        backbone = make_backbone(name, "random", "cpu", network, **({"points_per_side": 2} if name == "sam" else {}))
        if name in ("hps", "mps"):
            backbone.score([image], ["a photo of a person wearing round glasses"])
        else:
            backbone.encode([image])
    return {"network": name, "load": after_load - baseline, "load_and_one_image": peak_rss_bytes() - baseline,
            "load_seconds": round(load_seconds, 1), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="sam,hps,mps")
    parser.add_argument("--former", action="store_true", help="copy the file's tensors into the module (the former load)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.write:
        print(json.dumps({"bytes": write_release_layout(args.child, Path(args.folder))}))
        return
    if args.child:
        print(json.dumps(child(args.child, Path(args.folder), args.former)))
        return
    print(f"load from release-layout files, then one image, peak RSS above imports ({'former copy' if args.former else 'adopting'} load)")
    for name in args.networks.split(","):
        folder = Path(tempfile.mkdtemp(prefix=f"spf-load-{name}-"))
        try:
            rows = []
            for extra in (["--write"], ["--former"] if args.former else []):
                done = subprocess.run([sys.executable, __file__, "--child", name, "--folder", str(folder), *extra],
                                      capture_output=True, text=True, timeout=args.timeout)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            size, row = rows[0]["bytes"], rows[1]
            print(f"  {name:4s} weights {size / GIB:5.2f} GiB  load {row['load'] / GIB:5.2f} GiB "
                  f"({row['load'] / size:.2f} x weights, {row['load_seconds']} s)  load + one image "
                  f"{row['load_and_one_image'] / GIB:5.2f} GiB  ({row['seconds']} s)", flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
