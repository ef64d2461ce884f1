"""FID's Inception-v3 (torch-fidelity's port of the 2015-12-05 TensorFlow graph, as torchmetrics runs it).

Layout: ``SPF_WEIGHTS_DIR/inception/weights-inception-2015-12-05-6726825d.pth``, the state dict
(TensorFlow's weights converted by torch-fidelity) that torch-fidelity itself downloads from
its release page; it is read with a safe load. The loader returns torchmetrics'
``NoTrainInceptionV3`` with ``features_list=["2048"]``: uint8 images [N, 3, H, W] in, pool
features [N, 2048] out (it resizes to 299 px itself).

Tiny: this architecture cannot be shrunk (the class fixes every layer), so the tiny weights are
the real-size network (23.9M parameters) with seeded random weights, saved in the same .pth
state-dict format. Its features carry no meaning; FID on them is a smoke test only.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo.checkpoints import read_state_dict
from spf_bench.zoo.registry import Network, register, url_file

WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FEATURE_NAME = "2048"
FEATURE_DIM = 2048
TINY_SEED = 2015
NUM_CLASSES = 1008  # the TensorFlow graph's classifier has 1008 outputs, not ImageNet's 1000


def _serialised(state: dict[str, torch.Tensor]) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def _construct(state: dict[str, torch.Tensor], origin: Path | str):
    """torchmetrics' NoTrainInceptionV3 holding ``state``.

    Its constructor unpickles the weights it is given with ``weights_only=False``, which would
    let a malicious file run code; so it never sees the user's file, only bytes serialised
    here from tensors that :func:`read_state_dict` already loaded safely.
    """
    from torchmetrics.image.fid import NoTrainInceptionV3

    try:
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=[FEATURE_NAME], feature_extractor_weights_path=_serialised(state))
    except RuntimeError as exc:  # load_state_dict's report of missing / unexpected / misshapen keys
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:3])[:240]
        raise WeightsCorruptError(f"{origin} does not fit the FID Inception-v3 architecture ({detail}).") from None


def _finish(model, device: torch.device, dtype: torch.dtype):
    model = model.to(device=device, dtype=dtype)
    # torchmetrics' forward casts the uint8 input to `_dtype` when present, so the input
    # follows the weights' dtype (FID itself may ask for float64).
    model._dtype = dtype
    return model.requires_grad_(False).eval()


def _seeded_state(device: torch.device) -> dict[str, torch.Tensor]:
    """Seeded random weights in the layout of torch-fidelity's file.

    torchvision's Inception3 without auxiliary head and with 1008 classes has exactly the
    parameter names and shapes of torch-fidelity's network, and unlike it can be built
    without a weights file. Convolutions get He-normal weights so activations keep their
    scale through the 94 layers (PyTorch's default init shrinks them towards zero, which
    would make every image's features nearly equal).
    """
    from torchvision.models import Inception3

    torch.manual_seed(TINY_SEED)
    with torch.device(device):
        donor = Inception3(num_classes=NUM_CLASSES, aux_logits=False, transform_input=False, init_weights=False)
    if device.type != "meta":
        _he_init(donor)
    return {k: v.detach().contiguous() for k, v in donor.state_dict().items()}


@torch.no_grad()
def _he_init(module: torch.nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            layer.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
        elif isinstance(layer, torch.nn.Linear):
            layer.weight.normal_(0.0, 1.0 / math.sqrt(layer.in_features))
            layer.bias.zero_()


def write_tiny(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # torch.save names the archive after the file and derives its id from the contents,
    # so writing under the final name keeps two builds byte-identical.
    torch.save(_seeded_state(torch.device("cpu")), folder / WEIGHTS_FILE)


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype):
    path = folder / WEIGHTS_FILE
    return _finish(_construct(read_state_dict(path), path), device, dtype)


def build_random(device: torch.device, dtype: torch.dtype):
    if device.type == "meta":
        with torch.device("meta"):
            return _construct(_seeded_state(device), "the seeded random state")
    return _finish(_construct(_seeded_state(torch.device("cpu")), "the seeded random state"), device, dtype)


NETWORK = register(Network(
    name="inception",
    summary="FID Inception-v3 (torch-fidelity weights, torchmetrics' NoTrainInceptionV3), uint8 [N,3,H,W] -> [N,2048]",
    files=(url_file(WEIGHTS_FILE, WEIGHTS_URL),),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
))
