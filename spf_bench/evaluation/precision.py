"""In which floating-point precision each metric network may score, and why.

A metric network may run in half precision only where its metric's value stays within the
tolerance the agreement tests hold it to against the reference implementation in fp32;
otherwise a half-precision number would be a different number under the same name.
``benchmarks/metrics_precision.py`` measures each metric's drift (bf16 autocast versus fp32,
same weights, same images) against :data:`AGREEMENT_TOLERANCE`. Every metric measured on the
CPU drifted beyond its tolerance, 3 to 900 times over (Seg-Cons, held to bit-identical masks,
moved at all); the figures are in that script's docstring, and HPS cannot be measured there
(see :data:`REFERENCE_PRECISION`). So no network is allowed a half precision: the table below
is empty, every record says ``float32`` but HPS's on a GPU, and FID's statistics are float64
whatever the network. A network added to the table must also add its dtype to its backbone's
identity, so that its features never share a feature-cache entry with fp32 ones.
"""

from __future__ import annotations

# (kind, tolerance) of each metric's agreement with its reference, as the tests check it:
# "abs" on the value, "rel" on the value; Seg-Cons compares masks bit for bit.
AGREEMENT_TOLERANCE = {
    "FID": ("rel", 1e-4),
    "LPIPS": ("abs", 1e-6),
    "ID": ("abs", 1e-5),
    "CLIP-I": ("abs", 1e-5),
    "CLIP-T": ("abs", 1e-3),  # 1e-5 on the cosine, reported x 100
    "Seg-Cons": ("abs", 0.0),
    "HPSv2": ("abs", 1e-5),
    "MPS": ("abs", 1e-5),
}

# Metric networks allowed a half precision, by device type: none passed the measurement.
HALF_PRECISION_ALLOWED: dict[str, dict[str, str]] = {"cpu": {}, "cuda": {}}
# Networks whose reference implementation itself computes in half precision on a device:
# hpsv2 scores under CUDA autocast (float16), and the zoo's HPS does as it does, so its GPU
# values are the reference's. Not a choice made here, but the record says it all the same
# (the backbone's identity does too: see HpsBackbone.extra_preprocessing).
REFERENCE_PRECISION: dict[str, dict[str, str]] = {"cuda": {"hps": "float16 autocast"}}


def within_tolerance(metric: str, reference: float, value: float) -> bool:
    kind, tolerance = AGREEMENT_TOLERANCE[metric]
    drift = abs(value - reference)
    return drift <= (tolerance * abs(reference) if kind == "rel" else tolerance)


def scoring_dtype(network: str, device_type: str) -> str:
    """The dtype ``network`` scores in on ``device_type`` (what every record carries)."""
    reference = REFERENCE_PRECISION.get(device_type, {}).get(network)
    return reference or HALF_PRECISION_ALLOWED.get(device_type, {}).get(network, "float32")
