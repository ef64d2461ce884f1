"""The lab diagnosis splits the latent into the ground-truth regions of each training portrait."""

import json

import numpy as np
import pytest
import torch

from spf_bench.core.errors import SpfError
from spf_bench.lab.diagnosis import REGIONS, region_weights
from spf_bench.world.sets import Correlation, write_set
from spf_bench.world.render import BG, GLASSES, label_map, supersample


def test_regions_partition_the_latent_and_follow_the_rendered_portraits(tmp_path):
    folder = write_set(tmp_path / "set", Correlation(), n=3, seed=7, size=32, correlated=True)
    weights = region_weights(folder, (16, 16))
    assert set(weights) == set(REGIONS)
    total = sum(weights.values())
    assert torch.allclose(total, torch.ones_like(total))  # every latent pixel counted exactly once
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        identity = row["identity"]
        labels = label_map(row["attributes"], identity, 32)
        ss = supersample(32)
        # at image size a latent pixel is a 2x2 block, a label-map pixel an (ss x ss) block
        def share(label):
            return torch.from_numpy((labels == label).reshape(16, 2 * ss, 16, 2 * ss).mean(axis=(1, 3)).astype(np.float32))
        glasses, background = share(GLASSES), share(BG)
        assert glasses.sum() > 0
        # the target region holds every glasses pixel; background pixels are the spurious region's
        # unless the glasses' mask (widened by outlines) reaches them
        assert torch.all(weights["target"][i] >= glasses - 1e-6)
        assert torch.all(weights["spurious"][i] + weights["target"][i] >= background - 1e-6)
        assert weights["spurious"][i].sum() > 0.5 * background.sum()
    for row in rows:
        del row["identity"]
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(SpfError, match="no identity"):
        region_weights(folder, (16, 16))
