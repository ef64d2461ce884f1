"""The paper-scale estimate's arithmetic: FLOP counting on the meta device and the protocol's sum."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scale_estimate  # noqa: E402


def test_flops_are_counted_on_the_meta_device_without_weights():
    with torch.device("meta"):
        layer = torch.nn.Linear(300, 200)
        x = torch.zeros(7, 300)
    assert scale_estimate.count(lambda: layer(x)) == 2 * 7 * 300 * 200


def test_the_protocol_draws_each_original_once_and_each_method_image_once():
    f = dict.fromkeys(["text encoder", "UNet step (cfg)", "VAE decode", "Inception", "LPIPS (pair)", "ArcFace (+SCRFD stated)",
                       "CLIP image", "CLIP text", "SAM encoder", "SAM decoder (grid)", "HPSv2", "MPS"], 0.0)
    f["UNet step (cfg)"], f["VAE decode"], f["SAM encoder"], f["HPSv2"] = 10.0, 5.0, 3.0, 1.0
    stages = scale_estimate.protocol_flops(f, methods=4)
    image = scale_estimate.STEPS * 10.0 + 5.0
    assert stages["originals (triple build)"] == pytest.approx(scale_estimate.TRIPLES * image)
    assert stages["generation"] == pytest.approx(scale_estimate.TRIPLES * 4 * image)
    # the originals' SAM features are encoded once (cached); customized ones per method, plus HPS
    assert stages["scoring"] == pytest.approx(scale_estimate.TRIPLES * (3.0 + 4 * (3.0 + 1.0)))


def test_the_tab1_methods_are_the_table_s_rows():
    methods = scale_estimate.tab1_methods()
    assert methods[0] == "base" and "ours" in methods and len(methods) == len(set(methods)) == 12
