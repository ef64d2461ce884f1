"""Exact inputs: colour conversion (grayscale, palette, RGBA, 16-bit), size policy, backbone inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from spf_bench.core.images import read_image
from spf_bench.metrics import preprocess
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 256
    Image.fromarray(gray.astype(np.uint8), "L").save(tmp_path / "g.png")
    rgb, _ = read_image(tmp_path / "g.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert (rgb == gray[:, :, None]).all()


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # red under the alpha
    rgba[:4, :, 3] = 255  # top half opaque, bottom half transparent
    rgba[4:6, :, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb, _ = read_image(tmp_path / "a.png")
    assert (rgb[:4] == [200, 0, 0]).all()
    assert (rgb[6:] == [255, 255, 255]).all()
    half = rgb[4, 0].astype(int)
    assert abs(half[0] - (200 * 128 + 255 * 127) / 255) <= 1 and abs(half[1] - 255 * 127 / 255) <= 1


def test_palette_image(tmp_path):
    image = portrait(1).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.save(tmp_path / "p.png")
    rgb, _ = read_image(tmp_path / "p.png")
    assert (rgb == np.asarray(image.convert("RGB"))).all()


def test_16_bit_gray_and_colour_round_to_8_bit(tmp_path):
    import cv2

    values = np.array([[0, 128, 257, 32896], [65535, 65279, 1000, 40000]], dtype=np.uint16)
    expected = np.floor(values / 257 + 0.5).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "g16.png")
    gray, _ = read_image(tmp_path / "g16.png")
    assert (gray == expected[:, :, None]).all()
    colour = np.stack([values, values[::-1], np.full_like(values, 65535)], axis=2)  # RGB
    cv2.imwrite(str(tmp_path / "c16.png"), colour[:, :, ::-1])  # OpenCV writes BGR
    rgb, _ = read_image(tmp_path / "c16.png")
    assert (rgb[:, :, 0] == expected).all() and (rgb[:, :, 1] == expected[::-1]).all() and (rgb[:, :, 2] == 255).all()


def test_size_mismatch_resizes_customized_to_original():
    original = np.asarray(portrait(0, size=64))
    customized = np.asarray(portrait(0, size=96))
    resized, changed = preprocess.match_size(original, customized)
    assert changed and resized.shape == original.shape
    expected = np.asarray(Image.fromarray(customized).resize((64, 64), Image.Resampling.BICUBIC))
    assert (resized == expected).all()
    same, changed = preprocess.match_size(original, original)
    assert not changed and same is original


def test_lpips_input_matches_package_conversion():
    import lpips

    image = np.asarray(portrait(2))
    ours = preprocess.lpips_input([image])
    assert torch.allclose(ours, lpips.im2tensor(image).float(), atol=1e-7)
    assert float(ours.min()) >= -1 and float(ours.max()) <= 1


def test_inception_input_is_uint8_nchw():
    image = np.asarray(portrait(3))
    batch = preprocess.inception_input([image, image])
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 64, 64)
    assert (batch[0].permute(1, 2, 0).numpy() == image).all()


def test_clip_input_is_clips_own_transform():
    from spf_bench import zoo

    bundle = zoo.load("clip", source="tiny")
    image = np.asarray(portrait(4, size=80))
    ours = preprocess.clip_input([image], bundle.preprocess)
    assert ours.shape == (1, 3, 224, 224)
    assert torch.equal(ours[0], bundle.preprocess(Image.fromarray(image)))


def test_every_backbone_input_is_documented():
    for name in ("inception", "lpips", "clip", "face", "sam", "hps", "mps"):
        entry = preprocess.BACKBONE_INPUTS[name]
        assert {"dtype", "range", "resizer", "crop"} <= set(entry)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_broken_image_names_file_and_triple(tmp_path, damage):
    from spf_bench.core.errors import SpfError

    path = tmp_path / "t00003.png"
    portrait(0).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an image at all")
    with pytest.raises(SpfError, match=r"t00003\.png \(triple t00003\) is corrupt or truncated"):
        read_image(path, "t00003")


def test_backbones_input_sizes_are_the_documented_ones():
    """Inception sees 299 px, ArcFace 112 px aligned crops, SAM a longest side of 1024."""
    from spf_bench import zoo
    from spf_bench.metrics.backbones import make_backbone

    inception = zoo.load("inception", source="tiny")
    assert inception.INPUT_IMAGE_SIZE == 299
    faces = zoo.load("face", source="tiny")
    assert tuple(faces.recognizer.input_size) == (112, 112)
    sam = make_backbone("sam", "tiny", network=zoo.load("sam", source="tiny"))
    resized = sam.predictor.transform.apply_image(np.zeros((48, 64, 3), np.uint8))
    assert resized.shape[:2] == (768, 1024)
