"""Loading a large metric network keeps one copy of its weights: the module adopts the tensors
mapped from the file instead of copying them into its own (two copies at the load's peak)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo import registry
from spf_bench.zoo.checkpoints import load_into, read_state_dict


def _file_mappings(folder: Path) -> list[tuple[int, int]]:
    """Address ranges of this process mapped from files under ``folder``."""
    ranges = []
    root = str(folder.resolve())
    with open("/proc/self/maps") as handle:
        for line in handle:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip().startswith(root):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((start, end))
    return ranges


def _save(module: torch.nn.Module, path: Path) -> None:
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_adopting_takes_the_files_tensors_and_copying_does_not(tmp_path, suffix):
    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.LayerNorm(8))
    path = tmp_path / f"weights{suffix}"
    _save(source, path)

    adopted = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.LayerNorm(8))
    state = read_state_dict(path)
    load_into(adopted, state, path, adopt=True)
    assert adopted[0].weight.data_ptr() == state["0.weight"].data_ptr()
    assert isinstance(adopted[0].weight, torch.nn.Parameter) and adopted[0].weight.requires_grad

    copied = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.LayerNorm(8))
    state = read_state_dict(path)
    load_into(copied, state, path)
    assert copied[0].weight.data_ptr() != state["0.weight"].data_ptr()

    x = torch.randn(3, 16)
    assert torch.equal(adopted(x), source(x)) and torch.equal(copied(x), source(x))


def test_adopting_a_checkpoint_of_the_wrong_shape_is_one_sentence(tmp_path):
    path = tmp_path / "weights.safetensors"
    _save(torch.nn.Linear(16, 8), path)
    with pytest.raises(WeightsCorruptError, match="does not fit the Linear architecture"):
        load_into(torch.nn.Linear(16, 9), read_state_dict(path), path, adopt=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("name", ["sam", "hps", "mps", "clip"])
def test_large_networks_keep_their_weights_in_the_files_mapping(name):
    # A copying load leaves every parameter in memory of its own, next to the file's pages it
    # read; an adopting one leaves them in the file's mapping, so the load holds one copy.
    network = zoo.load(name, source="tiny")
    module = network if isinstance(network, torch.nn.Module) else network.model
    mappings = _file_mappings(registry.folder_for(name, "tiny"))
    assert mappings, f"nothing of {name}'s tiny weights is mapped into memory"
    parameters = list(module.parameters())
    in_file = [p for p in parameters if any(start <= p.data_ptr() < end for start, end in mappings)]
    assert len(in_file) == len(parameters)
