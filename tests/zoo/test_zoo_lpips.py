"""The LPIPS network of the zoo (lpips package, AlexNet backbone from torchvision's file)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import lpips_net

NAME = "lpips"


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _images(seed: int) -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _reference_lpips(backbone: dict[str, torch.Tensor]):
    """A fresh lpips.LPIPS(net='alex') given the backbone through torchvision's own AlexNet."""
    import lpips
    from torchvision.models import alexnet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)  # the real trunk would download
    trunk = alexnet(weights=None)
    trunk.load_state_dict(backbone, strict=False)
    for stage in (reference.net.slice1, reference.net.slice2, reference.net.slice3, reference.net.slice4, reference.net.slice5):
        for index, layer in stage.named_children():
            layer.load_state_dict(trunk.features[int(index)].state_dict())
    return reference.eval()


def test_tiny_loads_through_the_real_loader_and_gives_distances():
    import lpips

    model = zoo.load(NAME, source="tiny")
    assert isinstance(model, lpips.LPIPS) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        distance = model(_images(0), _images(1))
        same = model(_images(0), _images(0))
    assert distance.shape == (2, 1, 1, 1) and (distance > 0).all()
    assert torch.allclose(same, torch.zeros_like(same))


def test_agrees_with_a_fresh_lpips_given_the_same_backbone():
    folder = registry.ensure_tiny(lpips_net.NETWORK)
    backbone = torch.load(folder / lpips_net.WEIGHTS_FILE, weights_only=True)
    ours = zoo.load(NAME, source="tiny")
    reference = _reference_lpips(backbone)
    with torch.no_grad():
        diff = (ours(_images(2), _images(3)) - reference(_images(2), _images(3))).abs().max()
    assert diff < 1e-5
    # The heads are the package's trained ones, not random.
    for mine, theirs in zip(ours.lins, reference.lins):
        assert torch.equal(mine.model[1].weight, theirs.model[1].weight)


def test_tiny_build_is_byte_identical(tmp_path):
    lpips_net.NETWORK.write_tiny(tmp_path / "a")
    lpips_net.NETWORK.write_tiny(tmp_path / "b")
    first = _tree_hashes(tmp_path / "a")
    assert list(first) == [lpips_net.WEIGHTS_FILE] and first == _tree_hashes(tmp_path / "b")


def test_pretrained_missing_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load(NAME, source="pretrained")
    message = str(info.value)
    assert str(tmp_path / NAME / lpips_net.WEIGHTS_FILE) in message and lpips_net.WEIGHTS_URL in message
    assert "\n" not in message


def test_truncated_file_is_reported_in_one_sentence(tmp_path, monkeypatch):
    data = (registry.ensure_tiny(lpips_net.NETWORK) / lpips_net.WEIGHTS_FILE).read_bytes()
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / lpips_net.WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="truncated or not a valid checkpoint") as info:
        zoo.load(NAME, source="pretrained")
    assert "\n" not in str(info.value)


def test_file_without_alexnet_features_is_reported(tmp_path, monkeypatch):
    (tmp_path / NAME).mkdir()
    torch.save({"classifier.1.weight": torch.zeros(2, 2)}, tmp_path / NAME / lpips_net.WEIGHTS_FILE)
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="lacks AlexNet's features.0.weight"):
        zoo.load(NAME, source="pretrained")


def test_random_is_the_real_architecture():
    model = zoo.load(NAME, source="random", device="meta")
    assert sum(p.numel() for p in model.net.parameters()) == 2_469_696
    assert sum(p.numel() for p in model.lins.parameters()) == 1_152
