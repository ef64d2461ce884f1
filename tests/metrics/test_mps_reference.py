"""MPS against its authors' code (Kwai-Kolors/MPS, kept unmodified in ../shared/reference/mps).

Their ``CLIPModel`` / ``Cross_model`` get the very tensors of ours (tiny and the real CLIP-H
layout with seeded random weights) and their scoring function ``infer_one_sample`` (the
condition text, the 0.3 mask threshold) scores the same image and prompt; every pair must
agree within 1e-4. A whole model pickled from *their* classes, as the release is, must convert
into a file our loader reads and that scores the same.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from spf_bench import zoo
from spf_bench.zoo.networks import mps as mps_net
from spf_bench.zoo.networks import mps_model

# Beside the project's root in CI; SPF_REFERENCE_DIR names it for a checkout kept elsewhere.
REFERENCE = Path(os.environ.get("SPF_REFERENCE_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "reference") / "mps"

PROMPTS = [
    "a portrait of a woman with red hair",
    "an old man wearing round glasses, soft warm light, pencil drawing style",
    "close-up photo of a smiling child, " + "bright colourful background, " * 12,  # over 77 tokens: truncated alike
]


@pytest.fixture(scope="module")
def reference():
    """Their model classes and scoring function. The folder ships beside the project in CI;
    its absence is a broken checkout, not a reason to skip."""
    assert (REFERENCE / "trainer" / "models" / "clip_model.py").is_file(), f"the authors' MPS code is missing from {REFERENCE}"
    import transformers

    # Their scripts import CLIPFeatureExtractor, the name transformers 5 dropped for
    # CLIPImageProcessor (which they do not use for scoring either); an alias lets them import.
    # (The attribute goes on the module object in sys.modules: transformers replaces that
    # object while it resolves its first image-processor name.)
    processor_class = transformers.CLIPImageProcessor
    sys.modules["transformers"].__dict__.setdefault("CLIPFeatureExtractor", processor_class)
    sys.path.insert(0, str(REFERENCE))
    try:
        clip_model = importlib.import_module("trainer.models.clip_model")
        cross = importlib.import_module("trainer.models.cross_modeling")
        scoring = importlib.import_module("eval_overall_mps_on_hpdv2")
    finally:
        sys.path.remove(str(REFERENCE))
    return clip_model, cross, scoring


def _images() -> list[Image.Image]:
    rng = np.random.RandomState(11)
    sizes = ((224, 224), (96, 160), (300, 200))
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8)) for h, w in sizes]


def _their_model(reference, ours: mps_net.MpsModel, arch: mps_net.ConditionArch) -> nn.Module:
    """Their ``CLIPModel`` holding our tensors.

    Their ``__init__`` reads a CLIP folder with ``from_pretrained`` and fixes the condition
    transformer at the released sizes, so the object is assembled from their classes here
    (built on the meta device, then given our tensors; nothing is copied) instead.
    """
    clip_model, cross, _ = reference
    with torch.device("meta"):
        model = clip_model.CLIPModel.__new__(clip_model.CLIPModel)
        nn.Module.__init__(model)
        model.model = clip_model.XCLIPModel(ours.model.config)
        model.cross_model = cross.Cross_model(dim=arch.dim, layer_num=arch.layer_num, dim_head=arch.dim_head,
                                              heads=arch.heads, ff_mult=arch.ff_mult)
    model.load_state_dict(ours.state_dict(), strict=True, assign=True)
    # Buffers outside the state dict (CLIP's position ids) are not given by load_state_dict.
    for name, buffer in ours.named_buffers():
        owner, _, leaf = name.rpartition(".")
        target = model.get_submodule(owner)
        if getattr(target, leaf).is_meta:
            target.register_buffer(leaf, buffer, persistent=False)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    return model.eval()


class _KeepFloat32:
    """Pixel values whose ``.half()`` keeps float32.

    Their scoring casts the image to half precision because their model runs in half on a
    GPU; to compare at 1e-4 both sides run in float32, and this stands in for the cast
    without editing their file.
    """

    def __init__(self, pixels: torch.Tensor):
        self.pixels = pixels

    def to(self, device):
        return _KeepFloat32(self.pixels.to(device))

    def half(self) -> torch.Tensor:
        return self.pixels


class _Float32Processor:
    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image, return_tensors):
        return {"pixel_values": _KeepFloat32(self.processor(image, return_tensors=return_tensors)["pixel_values"])}


def _their_scores(reference, theirs: nn.Module, bundle: mps_net.MpsBundle, images, prompts) -> torch.Tensor:
    _, _, scoring = reference
    processor = _Float32Processor(bundle.image_processor)
    return torch.cat([scoring.infer_one_sample(image, prompt, theirs, processor, bundle.tokenizer, "cpu").float()
                      for image, prompt in zip(images, prompts)])


def test_their_scoring_defaults_are_ours(reference):
    """The condition text and mask threshold are read off their scoring function's source."""
    import inspect

    source = inspect.getsource(reference[2].infer_one_sample)
    assert f'condition = "{mps_net.CONDITIONS["overall"]}"' in source
    assert f"sim_text_condition > {mps_model.MASK_THRESHOLD}" in source


def _centre_text_projection(bundle: mps_net.MpsBundle) -> None:
    """Remove the direction all tiny text tokens share from the text projection.

    As built, every tiny prompt token is similar to the condition (normalised similarity
    above 0.6), so the condition mask hides nothing and a wrong mask would go unseen; without
    the shared direction most tokens fall under the 0.3 threshold.
    """
    text = bundle.model.model.text_model
    ids = bundle.tokenize([*PROMPTS, mps_net.CONDITIONS["overall"]])
    with torch.no_grad():
        shared = text(input_ids=ids).last_hidden_state.flatten(0, 1).mean(0)
        shared = shared / shared.norm()
        weight = bundle.model.model.text_projection.weight
        weight.copy_(weight - torch.outer(weight @ shared, shared))


def _hidden_fraction(bundle: mps_net.MpsBundle) -> float:
    cond = bundle.tokenize([mps_net.CONDITIONS["overall"]] * len(PROMPTS))
    with torch.no_grad():
        mask = bundle.model.condition_mask(bundle.model.text_tokens(bundle.tokenize(PROMPTS))[0],
                                           bundle.model.text_tokens(cond)[0])
    return torch.isinf(mask).float().mean().item()


@pytest.mark.parametrize("variant", ["as-built", "centred-projection"])
def test_tiny_mps_equals_their_scoring_per_pair(reference, variant):
    bundle = zoo.load("mps", source="tiny")
    if variant == "centred-projection":
        _centre_text_projection(bundle)
        assert 0.5 < _hidden_fraction(bundle) < 1.0  # the mask hides most prompt tokens, not all
    arch = mps_net.ConditionArch.from_json(zoo.registry.folder_for("mps", "tiny") / mps_net.ARCH_FILE)
    theirs = _their_model(reference, bundle.model, arch)
    images = _images()
    ours = bundle.score(images, PROMPTS)
    expected = _their_scores(reference, theirs, bundle, images, PROMPTS)
    assert ours.shape == expected.shape == (3,)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)
    assert len({round(v, 4) for v in ours.tolist()}) == 3  # three distinct values, not a constant


@pytest.mark.slow
def test_clip_h_layout_mps_equals_their_scoring_per_pair(reference):
    """The real CLIP-H and condition-transformer sizes, seeded random weights (about 4 GB,
    shared by both models). One pair: a ViT-H forward pass costs about 170 GFLOP."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        bundle = zoo.load("mps", source="random")
        theirs = _their_model(reference, bundle.model, mps_net.ConditionArch())
        images, prompts = _images()[1:2], PROMPTS[1:2]
        ours = bundle.score(images, prompts)
        expected = _their_scores(reference, theirs, bundle, images, prompts)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)
    assert ours.abs().item() > 1e-3  # a real value, not zero on both sides


def test_pickle_of_their_classes_converts_and_scores_the_same(reference, tmp_path):
    """A whole model pickled from their classes, as ``MPS_overall_checkpoint.pth`` is."""
    bundle = zoo.load("mps", source="tiny")
    tiny_folder = zoo.registry.folder_for("mps", "tiny")
    arch = mps_net.ConditionArch.from_json(tiny_folder / mps_net.ARCH_FILE)
    theirs = _their_model(reference, bundle.model, arch)
    # A forward first, as in training: their blocks then hold a cached rotary table, a
    # non-persistent buffer that must not end up in the converted file.
    _their_scores(reference, theirs, bundle, _images()[:1], PROMPTS[:1])
    theirs = _deep_copy(theirs)
    release = tmp_path / mps_net.RELEASE_FILE
    torch.save(theirs, release)
    assert b"trainer.models.clip_model" in _pickle_bytes(release)  # really their classes in the pickle

    folder = tmp_path / "mps"
    folder.mkdir()
    written = mps_net.convert_mps_checkpoint(release, folder, trust_pickle=True)
    from safetensors.torch import load_file

    converted = load_file(str(written))
    assert set(converted) == set(bundle.model.state_dict())
    for key, value in bundle.model.state_dict().items():
        assert torch.equal(converted[key], value), key

    (folder / mps_net.ARCH_FILE).write_bytes((tiny_folder / mps_net.ARCH_FILE).read_bytes())
    import shutil

    shutil.copytree(tiny_folder / mps_net.CLIP_DIR, folder / mps_net.CLIP_DIR)
    loaded = mps_net.load_folder(folder, torch.device("cpu"), torch.float32)
    images = _images()
    torch.testing.assert_close(loaded.score(images, PROMPTS), _their_scores(reference, theirs, bundle, images, PROMPTS),
                               atol=1e-4, rtol=0)


def _deep_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def _pickle_bytes(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return b"".join(archive.read(name) for name in archive.namelist() if name.endswith(".pkl"))
