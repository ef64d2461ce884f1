"""The CLIP loader applies the folder's own ``preprocess_cfg``, not OpenAI's whatever it says."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from PIL import Image

from spf_bench.zoo import registry
from spf_bench.zoo.networks.clip import OPENAI_MEAN, OPENAI_STD, load_folder


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8))  # not square: resize modes differ


def test_the_folders_preprocess_cfg_is_applied(tmp_path):
    import open_clip

    folder = tmp_path / "clip"
    shutil.copytree(registry.folder_for("clip", "tiny"), folder)
    config = json.loads((folder / "open_clip_config.json").read_text())
    custom = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear", "resize_mode": "squash"}
    config["preprocess_cfg"] = custom
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    bundle = load_folder(folder, torch.device("cpu"), torch.float32)

    image = _image()
    theirs = open_clip.image_transform(224, is_train=False, mean=custom["mean"], std=custom["std"],
                                       resize_mode="squash", interpolation="bilinear")(image)
    openai = open_clip.image_transform(224, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)(image)
    ours = bundle.preprocess(image)
    assert torch.equal(ours, theirs)
    assert not torch.allclose(ours, openai, atol=1e-2)
    assert tuple(bundle.preprocess_cfg["mean"]) == (0.5, 0.5, 0.5) and bundle.preprocess_cfg["resize_mode"] == "squash"

    # the training loss's tensor twin normalises with the folder's statistics too
    from spf_train.clip_guide import ClipGuide

    square = torch.zeros(1, 3, 224, 224)  # mid-grey in [-1, 1]
    assert torch.allclose(ClipGuide(bundle).pixels_for_clip(square), torch.zeros(1, 3, 224, 224))  # (0.5 - 0.5) / 0.25


def test_the_tiny_folder_keeps_openais_preprocessing():
    import open_clip

    bundle = load_folder(registry.folder_for("clip", "tiny"), torch.device("cpu"), torch.float32)
    image = _image()
    openai = open_clip.image_transform(224, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)(image)
    assert torch.equal(bundle.preprocess(image), openai)
