"""``spf-bench weights``: where every network's weights come from, and whether they are there."""

from __future__ import annotations

import argparse

from spf_bench.core.errors import SpfError
from spf_bench.zoo import registry
from spf_bench.zoo.checkpoints import count_parameters_in_file


def register(subparsers) -> None:
    p = subparsers.add_parser("weights", help="list the zoo's networks and the state of their weights")
    p.add_argument("--weights", default="tiny", help="weight source: pretrained, random, tiny or synth (default: tiny)")
    p.add_argument("--network", action="append", help="only this network (repeatable)")
    p.add_argument("--check", action="store_true", help="exit non-zero when any file is missing, naming each")
    p.add_argument("--fetch", action="store_true", help="download missing pretrained files into SPF_WEIGHTS_DIR")
    p.set_defaults(func=run)
    c = subparsers.add_parser("convert-weights", help="convert a third-party pickled checkpoint once into safetensors")
    c.add_argument("--network", required=True, help="network whose checkpoint to convert (mps)")
    c.add_argument("--src", required=True, help="the downloaded pickled checkpoint")
    c.add_argument("--trust-pickle", action="store_true",
                   help="confirm you trust SRC: unpickling it can run code it contains")
    c.set_defaults(func=convert)


def _selected(names: list[str] | None) -> list[registry.Network]:
    if names:
        return [registry.get_network(n) for n in names]
    return [registry.known_networks()[n] for n in sorted(registry.known_networks())]


def run(args: argparse.Namespace) -> int:
    source = registry.check_source(args.weights)
    networks = _selected(args.network)
    if args.fetch:
        return _fetch(networks, source)
    rows, problems = [], []
    for network in networks:
        row, problem = _describe(network, source)
        rows.append(row)
        if problem:
            problems.append(problem)
    _print_table(rows)
    if args.check and problems:
        for problem in problems:
            print(f"missing: {problem}")
        return 1
    return 0


def _describe(network: registry.Network, source: str) -> tuple[list[str], str | None]:
    if source == "random":
        model = network.build_random(device=__import__("torch").device("meta"), dtype=__import__("torch").float32)
        return [network.name, source, "(built in memory)", "present", f"{_count_module(model):,}"], None
    folder = registry.folder_for(network.name, source) if source in ("tiny", "synth") else _pretrained_folder(network)
    label = source
    if source == "synth":
        from spf_bench.zoo import synth_source

        # The world trains only some networks; say which ones are borrowed from the tiny zoo.
        label = "synth" if synth_source.origin(network.name) == "synth" else "tiny (not trained by the world)"
    if folder is None:
        problem = f"'{network.name}': SPF_WEIGHTS_DIR is not set"
        return [network.name, label, "SPF_WEIGHTS_DIR unset", "missing", "-"], problem
    missing = registry.missing_files(network, folder)
    if missing:
        return [network.name, label, str(folder), "missing", "-"], registry.describe_missing(network, folder, missing)
    count = sum(count_parameters_in_file(folder / f.path) for f in network.files if _is_weights(f.path))
    return [network.name, label, str(folder), "present", f"{count:,}"], None


def _pretrained_folder(network: registry.Network):
    try:
        return registry.pretrained_folder(network.name)
    except SpfError:
        return None


def _is_weights(path: str) -> bool:
    return path.endswith((".safetensors", ".pth", ".pt", ".bin", ".onnx"))


def _count_module(model) -> int:
    import torch

    modules = [model] if isinstance(model, torch.nn.Module) else [v for v in vars(model).values() if isinstance(v, torch.nn.Module)]
    if not modules and hasattr(model, "components"):
        modules = [v for v in model.components.values() if isinstance(v, torch.nn.Module)]
    return sum(p.numel() for m in modules for p in m.parameters())


def _print_table(rows: list[list[str]]) -> None:
    header = ["network", "source", "loaded from", "state", "parameters"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _fetch(networks: list[registry.Network], source: str) -> int:
    from spf_bench.zoo import fetch
    from spf_bench.core import paths

    if source != "pretrained":
        raise SpfError("--fetch fills SPF_WEIGHTS_DIR with real weights, so it needs --weights pretrained.")
    root = paths.weights_dir()
    if root is None:
        raise SpfError("--fetch needs SPF_WEIGHTS_DIR set to the folder the weights should go to.")
    hashes = {}
    for network in networks:
        hashes[network.name] = fetch.fetch_network(network, root)
        print(f"fetched {network.name}")
    print(f"hashes recorded in {fetch.write_lock(root, hashes)}")
    return 0


def convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spf_bench.core import paths

    if args.network != "mps":
        raise SpfError(f"Only the 'mps' checkpoint is released as a pickled object needing conversion, not '{args.network}'.")
    if not args.trust_pickle:
        raise SpfError(f"Converting {args.src} unpickles it, which can run code it contains; pass --trust-pickle if you trust where it came from.")
    from spf_bench.zoo.networks import mps

    root = paths.weights_dir()
    if root is None:
        raise SpfError("convert-weights needs SPF_WEIGHTS_DIR set: the converted file is written into its 'mps' folder.")
    dst = mps.convert_mps_checkpoint(Path(args.src), root / "mps", trust_pickle=True)
    print(f"wrote {dst}")
    return 0
