"""An estimate, from FLOP counts, of the GPU-hours of the paper's full evaluation protocol.

Every network is built at its real size on the meta device (``zoo.load(name, source="random",
device="meta")``: no weights, no memory) and one forward pass of the shape the protocol feeds
it is counted with torch's ``FlopCounterMode`` (matmuls and convolutions; element-wise work is
not counted, so the figures are a floor). The protocol: 5,000 triples; for each, the original
is drawn once and each of the Tab. 1 methods draws its customized portrait (512 px, DDIM 50
steps, classifier-free guidance: two UNet passes per step); the eight metrics encode each
original once (the feature cache keeps them for every other method) and each customized
image once per method; LPIPS, HPSv2 and MPS are not cached, so LPIPS reads both images per
method. Training the methods' checkpoints is not part of the protocol.

GPU-hours = FLOPs / (peak dense bf16 throughput x utilisation), printed at the vendor's
stated peak (a lower bound no run reaches) and at an assumed utilisation (``--utilisation``,
default 40%), which no GPU here measured: attention-heavy, small-batch sampling often runs
below it, so read the second column as optimistic too.
"""

from __future__ import annotations

import torch

GPUS = {  # stated peak dense bf16 tensor throughput, FLOP/s
    "A100": 312e12,
    "H100": 989e12,
    "H200": 989e12,
}
TRIPLES = 5000
STEPS = 50
SIZE = 512
SAM_POINTS = 16 * 16  # the metric's default grid of point prompts
UTILISATION = 0.40
# SCRFD-10G, the face detector, is an ONNX graph with no torch twin at real size here; its
# cost at the 640 px input the metric uses is the figure its name states.
SCRFD_FLOPS = 10e9


def tab1_methods() -> list[str]:
    from spf_bench.results.tables import table_layout

    return [row[0] for row in table_layout("tab1").rows]


def count(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _meta(name):
    from spf_bench import zoo

    return zoo.load(name, source="random", device="meta")


def per_image_flops() -> dict[str, float]:
    """FLOPs of one image's pass through each network, at the protocol's shapes."""
    meta = torch.device("meta")
    out: dict[str, float] = {}
    with torch.no_grad():
        pipe = _meta("sd15")
        latent = SIZE // 8
        ids = torch.zeros(1, 77, dtype=torch.long, device=meta)
        text = torch.zeros(2, 77, 768, device=meta)
        x = torch.zeros(2, 4, latent, latent, device=meta)
        t = torch.zeros(2, dtype=torch.long, device=meta)
        out["text encoder"] = count(lambda: pipe.text_encoder(ids))
        out["UNet step (cfg)"] = count(lambda: pipe.unet(x, t, encoder_hidden_states=text))
        out["VAE decode"] = count(lambda: pipe.vae.decode(torch.zeros(1, 4, latent, latent, device=meta)))

        inception = _meta("inception")
        out["Inception"] = count(lambda: inception(torch.zeros(1, 3, 299, 299, dtype=torch.uint8, device=meta)))
        lpips = _meta("lpips")
        out["LPIPS (pair)"] = count(lambda: lpips(torch.zeros(1, 3, SIZE, SIZE, device=meta), torch.zeros(1, 3, SIZE, SIZE, device=meta)))
        face = _meta("face")
        face.recognizer.eval()
        out["ArcFace (+SCRFD stated)"] = count(lambda: face.recognizer(torch.zeros(1, 3, 112, 112, device=meta))) + SCRFD_FLOPS
        clip = _meta("clip")
        out["CLIP image"] = count(lambda: clip.model.encode_image(torch.zeros(1, 3, 224, 224, device=meta)))
        out["CLIP text"] = count(lambda: clip.model.encode_text(torch.zeros(1, 77, dtype=torch.long, device=meta)))
        sam = _meta("sam")
        out["SAM encoder"] = count(lambda: sam.image_encoder(torch.zeros(1, 3, 1024, 1024, device=meta)))

        def sam_decoder():
            # the prompt encoder's output shapes for a grid of single points (its own cost is a
            # few embedding look-ups; its boolean indexing has no meta-device kernel)
            sparse = torch.zeros(SAM_POINTS, 2, 256, device=meta)
            dense = torch.zeros(SAM_POINTS, 256, 64, 64, device=meta)
            sam.mask_decoder(image_embeddings=torch.zeros(1, 256, 64, 64, device=meta), image_pe=torch.zeros(1, 256, 64, 64, device=meta),
                             sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)

        out["SAM decoder (grid)"] = count(sam_decoder)
        hps = _meta("hps")
        out["HPSv2"] = count(lambda: (hps.model.encode_image(torch.zeros(1, 3, 224, 224, device=meta)),
                                      hps.model.encode_text(torch.zeros(1, 77, dtype=torch.long, device=meta))))
        mps = _meta("mps")
        ids77 = torch.zeros(1, 77, dtype=torch.long, device=meta)
        out["MPS"] = count(lambda: mps.model(torch.zeros(1, 3, 224, 224, device=meta), ids77, ids77))
    return out


def protocol_flops(f: dict[str, float], methods: int) -> dict[str, float]:
    """Total FLOPs of the protocol per stage."""
    image = f["text encoder"] + STEPS * f["UNet step (cfg)"] + f["VAE decode"]
    encode_once = f["Inception"] + f["ArcFace (+SCRFD stated)"] + f["CLIP image"] + f["SAM encoder"] + f["SAM decoder (grid)"]
    per_method = encode_once + f["LPIPS (pair)"] + f["CLIP text"] + f["HPSv2"] + f["MPS"]
    return {
        "originals (triple build)": TRIPLES * image,
        "generation": TRIPLES * methods * image,
        "scoring": TRIPLES * (encode_once + methods * per_method),
    }


def print_estimate(gpu: str, measured: list[dict] | None = None, utilisation: float = UTILISATION) -> None:
    if gpu not in GPUS:
        from spf_bench.core.errors import SpfError

        raise SpfError(f"Unknown GPU class '{gpu}'; choose one of: {', '.join(GPUS)}.")
    methods = tab1_methods()
    f = per_image_flops()
    print(f"ESTIMATE (from FLOP counts, not a measurement): the paper's protocol, {TRIPLES} triples x "
          f"{len(methods)} Tab. 1 methods, {SIZE} px, DDIM {STEPS} steps with guidance, eight metrics")
    print("\nFLOPs of one pass (real architectures, counted on the meta device):")
    for name, value in f.items():
        print(f"  {name:<26} {value / 1e9:12.1f} GFLOP")
    stages = protocol_flops(f, len(methods))
    total = sum(stages.values())
    peak = GPUS[gpu]
    print(f"\nper stage on one {gpu} ({peak / 1e12:.0f} TFLOP/s dense bf16 stated peak):")
    for name, value in stages.items():
        print(f"  {name:<26} {value / 1e15:10.1f} PFLOP  {100 * value / total:5.1f}%  "
              f"{value / peak / 3600:8.1f} GPU-h at peak  {value / (peak * utilisation) / 3600:8.1f} GPU-h at {utilisation:.0%}")
    print(f"  {'total':<26} {total / 1e15:10.1f} PFLOP          {total / peak / 3600:8.1f} GPU-h at peak  "
          f"{total / (peak * utilisation) / 3600:8.1f} GPU-h at {utilisation:.0%}")
    dominant = max(stages, key=stages.get)
    print(f"\ndominant stage: {dominant} ({100 * stages[dominant] / total:.0f}% of the FLOPs)")
    if measured:
        print("\nmeasured stage shares on tiny weights (CPU; tiny networks, so the mix differs):")
        for r in measured:
            s = r["stages"]
            whole = sum(v["seconds"] for v in s.values())
            print(f"  n={r['n']}: " + ", ".join(f"{k} {100 * v['seconds'] / whole:.0f}%" for k, v in s.items()))
