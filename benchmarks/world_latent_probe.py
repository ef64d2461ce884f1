"""Does the world VAE's encoder carry the novel attributes its round trip loses?

    python benchmarks/world_latent_probe.py [--n 2400] [--seed 5]

Renders ``--n`` portraits of the world set (novel attributes drawn), encodes them with the
shipped VAE (latent means), and fits one logistic regression per novel attribute on the
latents and, for comparison, on the pixels (three quarters to fit, the rest held out). A
held-out accuracy near 1 on the latents means the encoder keeps the attribute, so whatever
the round trip loses is lost in the decoder, which can be refined on fixed latents without
touching the UNet (``train_diffusion.refine_decoder`` freezes the encoder for that reason).
The fit is a few lines of torch (L-BFGS with a small L2 term): the suite has no
scikit-learn, and a probe needs nothing more.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def held_out_accuracy(features: np.ndarray, labels: np.ndarray, fit: int) -> float:
    x = torch.tensor(features, dtype=torch.float32)
    mean, std = x[:fit].mean(0), x[:fit].std(0) + 1e-6
    x = (x - mean) / std
    y = torch.tensor(labels, dtype=torch.float32)
    weight, bias = torch.zeros(x.shape[1], requires_grad=True), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x[:fit] @ weight + bias, y[:fit]) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float((((x[fit:] @ weight + bias) > 0).float() == y[fit:]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from spf_bench import zoo
    from spf_bench.world.attributes import NAMES, NOVEL_NAMES, index_of
    from spf_bench.world.dataset import render_set

    vae = zoo.load("sd15", source="synth").vae.float()
    data = render_set(args.n, args.seed, 32, identities=(0, 1000), novel=True)
    with torch.no_grad():
        latents = torch.cat([vae.encode(torch.from_numpy(data.images[i : i + 200]).permute(0, 3, 1, 2).float() / 127.5 - 1).latent_dist.mean
                             for i in range(0, args.n, 200)]).flatten(1).numpy()
    pixels = data.images.reshape(args.n, -1).astype(np.float32) / 255.0
    fit = args.n * 3 // 4
    for name in NOVEL_NAMES:
        shown = data.labels[:, NAMES.index(name)] == index_of(name, "yes")
        print(json.dumps({"attribute": name, "latent": round(held_out_accuracy(latents, shown, fit), 3),
                          "pixels": round(held_out_accuracy(pixels, shown, fit), 3),
                          "majority": round(float(max(shown[fit:].mean(), 1 - shown[fit:].mean())), 3)}), flush=True)


if __name__ == "__main__":
    main()
