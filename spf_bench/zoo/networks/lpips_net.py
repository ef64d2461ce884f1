"""LPIPS v0.1 with the AlexNet backbone (the ``lpips`` package's ``LPIPS(net='alex')``).

Layout: ``SPF_WEIGHTS_DIR/lpips/alexnet-owt-7be5be79.pth``, torchvision's ImageNet AlexNet
state dict (the file the lpips package itself would have torchvision download). Only its
``features.*`` entries are read: LPIPS uses AlexNet's five convolution stages, not the
classifier. The learned linear heads are the ones the lpips package ships inside itself
(``lpips/weights/v0.1/alex.pth``), so they need no download.

The loader returns an ``lpips.LPIPS`` module in eval mode with gradients off: inputs are two
images [N, 3, H, W] in [-1, 1], the output is the distance [N, 1, 1, 1].

Tiny: AlexNet's features at their real size (2.47M parameters; smaller ones would not fit the
package's class) with seeded random weights, saved as a torchvision-format state dict holding
only the ``features.*`` entries. The heads stay the package's real ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo.checkpoints import load_into, read_state_dict
from spf_bench.zoo.registry import Network, register, url_file

WEIGHTS_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
TINY_SEED = 1801
_FEATURES = "features."


def _lpips_shell():
    """LPIPS with the package's trained heads and a randomly initialised backbone.

    ``pnet_rand=True`` keeps torchvision from downloading AlexNet; the backbone's weights are
    loaded afterwards from our own file.
    """
    import warnings

    import lpips

    with warnings.catch_warnings():
        # torchvision warns that lpips still uses its deprecated `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)


def _backbone_state(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Rename torchvision's ``features.<i>.*`` keys to the package's ``slice<k>.<i>.*``.

    The package splits ``alexnet().features[0:12]`` into five slices but keeps each layer's
    index as its name, so the layer index alone maps one layout onto the other.
    """
    features = {k[len(_FEATURES):]: v for k, v in state.items() if k.startswith(_FEATURES)}
    renamed, lacking = {}, []
    for key in net.state_dict():
        layer_key = key.split(".", 1)[1]  # "slice2.3.weight" -> "3.weight"
        if layer_key in features:
            renamed[key] = features[layer_key]
        else:
            lacking.append(_FEATURES + layer_key)
    if lacking:
        raise WeightsCorruptError(f"{path} lacks AlexNet's {', '.join(lacking)}, so it is not a torchvision AlexNet state dict.")
    return renamed


def _finish(model, device: torch.device, dtype: torch.dtype):
    return model.to(device=device, dtype=dtype).requires_grad_(False).eval()


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype):
    path = folder / WEIGHTS_FILE
    state = read_state_dict(path)
    model = _lpips_shell()
    load_into(model.net, _backbone_state(model.net, state, path), path)
    return _finish(model, device, dtype)


def _seeded_features() -> torch.nn.Module:
    from torchvision.models import alexnet

    torch.manual_seed(TINY_SEED)
    return alexnet(weights=None).features


def write_tiny(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {_FEATURES + k: v.contiguous() for k, v in _seeded_features().state_dict().items()}
    # Written under its final name: torch.save names the archive after the file, and the
    # rest of the bytes depend only on the tensors, so two builds are byte-identical.
    torch.save(state, folder / WEIGHTS_FILE)


def build_random(device: torch.device, dtype: torch.dtype):
    # The real backbone is only 2.5M parameters, so it is built for real even when the
    # caller asks for the meta device, then moved there.
    model = _lpips_shell()
    state = {_FEATURES + k: v for k, v in _seeded_features().state_dict().items()}
    model.net.load_state_dict(_backbone_state(model.net, state, Path("<seeded>")))
    return _finish(model, device, dtype)


NETWORK = register(Network(
    name="lpips",
    summary="LPIPS v0.1, AlexNet backbone (torchvision weights) + the lpips package's linear heads",
    files=(url_file(WEIGHTS_FILE, WEIGHTS_URL),),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
))
