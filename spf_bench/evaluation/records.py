"""What makes two values comparable: each metric's record (implementation, backbone,
weights, preprocessing, options, libraries, device) and its fingerprint."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import metadata

import torch

from spf_bench.evaluation.options import EvalOptions
from spf_bench.evaluation.precision import scoring_dtype
from spf_bench.metrics import bootstrap, preprocess, registry

LIBRARIES = ("torch", "torchvision", "torchmetrics", "torch-fidelity", "open_clip_torch", "lpips", "insightface",
             "onnxruntime", "segment-anything", "hpsv2", "numpy", "scipy", "pillow", "opencv-python-headless")
EVALUATOR_VERSION = "1"


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    # Reading package metadata scans site-packages (about a third of a second per record on
    # a loaded machine), and installed versions do not change within one process.
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return tuple(versions.items())


def library_versions() -> dict[str, str | None]:
    return dict(_installed_versions())


def _device_description(device: str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"{device.type}:{platform.processor() or platform.machine()}"


def metric_record(name: str, identities: dict[str, dict], options: EvalOptions, n: int, n_resamples: int) -> dict:
    """Everything two values must share to be comparable (``identities``: each backbone's identity)."""
    cls = registry.metric(name)
    backbone = identities[cls.backbones[0]]
    metric_options = {"size_policy": preprocess.SIZE_POLICY, "alpha_background": list(preprocess.ALPHA_BACKGROUND),
                      **cls.options_record(options)}
    return {
        "implementation": f"{cls.__module__}.{cls.__name__}",
        "version": cls.version,
        "evaluator_version": EVALUATOR_VERSION,
        "backbone": backbone["backbone"],
        "backbone_implementation": backbone["implementation"],
        "weights": backbone["weights_source"],
        "weights_sha256": backbone["weights_sha256"],
        "weights_files": backbone.get("weights_files", []),
        "preprocessing": backbone["preprocessing"],
        "options": metric_options,
        "batch_size": options.batch_size,
        "n": n,
        "seeds": {"bootstrap": options.seed, "resamples": n_resamples, "confidence": bootstrap.LEVEL},
        "device": _device_description(options.device),
        "dtype": scoring_dtype(backbone["backbone"], torch.device(options.device).type),
        "libraries": library_versions(),
    }


def record_fingerprint(record: dict) -> str:
    """Hash of everything in a record that must agree for two values to be compared.

    Left out: the sample count and the bootstrap seeds, which differ between methods (ID's
    face-found pairs) or only move the interval, not the value.
    """
    kept = {k: v for k, v in record.items() if k not in ("n", "seeds")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def with_fingerprint(record: dict) -> dict:
    return {**record, "fingerprint": record_fingerprint(record)}

