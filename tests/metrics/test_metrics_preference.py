"""HPSv2 agrees with the hpsv2 package's own scoring code given the same checkpoint file; MPS collects its scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from spf_bench import zoo
from spf_bench.metrics import HpsV2Score, MpsScore, hps_v2_score
from spf_bench.metrics.backbones import make_backbone
from spf_bench.zoo.networks import hps as hps_network
from spf_bench.zoo.registry import folder_for
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a photo of a person, wearing round glasses", "a photo of a person, smiling"]


def test_hpsv2_agrees_with_hpsv2_score(monkeypatch):
    import hpsv2.img_score as img_score

    folder = folder_for("hps", "tiny")
    images = [portrait(i, size=80) for i in range(2)]
    backbone = make_backbone("hps", "tiny")
    ours = hps_v2_score(torch.from_numpy(backbone.score([np.asarray(i) for i in images], PROMPTS)))

    # hpsv2.score builds ViT-H-14 and fetches LAION weights unless its model cache is filled;
    # fill it with the same (tiny) architecture, freshly initialised, and let hpsv2 itself
    # load the checkpoint file into it and score.
    model, preprocess_val, _ = hps_network.create(hps_network._read_arch(folder), torch.device("cpu"))
    monkeypatch.setitem(img_score.model_dict, "model", model)
    monkeypatch.setitem(img_score.model_dict, "preprocess_val", preprocess_val)
    monkeypatch.setattr(img_score, "device", "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cuda.amp.autocast deprecation on CPU
        expected = [float(img_score.score(image, prompt, cp=str(folder / hps_network.CHECKPOINT), hps_version="v2.1")[0])
                    for image, prompt in zip(images, PROMPTS)]
    assert np.allclose(ours.numpy(), expected, atol=1e-5), (ours, expected)
    metric = HpsV2Score()
    metric.update(ours)
    assert abs(float(metric.compute()) - np.mean(expected)) < 1e-5


def test_mps_collects_bundle_scores():
    bundle = zoo.load("mps", source="tiny")
    images = [np.asarray(portrait(i, size=80)) for i in range(2)]
    backbone = make_backbone("mps", "tiny", network=bundle)
    scores = backbone.score(images, PROMPTS)
    with torch.no_grad():
        direct = bundle.score([Image.fromarray(i) for i in images], PROMPTS, condition="overall")
    assert np.allclose(scores, direct.numpy(), atol=1e-6)
    metric = MpsScore()
    metric.update(torch.from_numpy(scores))
    assert abs(float(metric.compute()) - float(direct.double().mean())) < 1e-6
    assert MpsScore.higher_is_better and HpsV2Score.higher_is_better
