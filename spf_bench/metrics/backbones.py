"""Backbones: each zoo network wrapped as a batched feature extractor with an exact identity.

A backbone turns RGB uint8 images into per-image features (dicts of numpy arrays, the unit
the feature cache stores) once; every metric that needs them reads the same features. Its
``identity`` (network, weights hash, preprocessing, implementation version) is both the
feature-cache key and part of every score's record, so two numbers are comparable exactly
when their backbones' identities agree.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch

from spf_bench.metrics import preprocess
from spf_bench.metrics.lpips_distance import lpips_features
from spf_bench.metrics.weights_identity import weights_sha256

# Bumped when a backbone's feature computation changes, so cached features are not reused.
FEATURE_VERSION = 1


def _weights_files(name: str, source: str) -> list[str]:
    from spf_bench.zoo import registry

    if source == "random":
        return []
    return [f.path for f in registry.get_network(name).files]


def _by_shape(images: list[np.ndarray]) -> dict[tuple, list[int]]:
    # Batches may mix sizes (images made elsewhere); networks need one size per forward pass.
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        groups[image.shape].append(index)
    return groups


class Backbone:
    name: ClassVar[str]
    implementation: ClassVar[str]
    # Whether features of originals go to the on-disk cache (False where they are larger on
    # disk than the image itself and cheaper to recompute than to read).
    cacheable: ClassVar[bool] = True
    encodes_images: ClassVar[bool] = True  # False: it scores an image with a caption (HPSv2, MPS)

    def __init__(self, source: str, device: torch.device | str = "cpu", network: Any = None) -> None:
        self.source = source
        self.device = torch.device(device)
        self._network = network
        self._identity: dict | None = None
        self.load_seconds = 0.0  # time spent loading the network, reported apart from forward passes

    @property
    def network(self) -> Any:
        # Loaded on first use: when every feature of a run is cached, the network (GBs for
        # SAM ViT-H) is never read at all.
        if self._network is None:
            import time

            start = time.perf_counter()
            self._network = self._load()
            self.load_seconds = time.perf_counter() - start
        return self._network

    @property
    def loaded(self) -> Any:
        """The network if it was given or has been loaded, else None (nothing is loaded)."""
        return self._network

    def _load(self) -> Any:
        from spf_bench import zoo

        return zoo.load(self.name, source=self.source, device=self.device)

    def weights_identity(self) -> tuple[str, list[str]]:
        """The hash of the weights the network loads and the files they consist of."""
        return weights_sha256(self.name, self.source), _weights_files(self.name, self.source)

    def identity(self) -> dict:
        if self._identity is None:
            sha256, files = self.weights_identity()
            self._identity = {
                "backbone": self.name,
                "implementation": self.implementation,
                "feature_version": FEATURE_VERSION,
                "weights_source": self.source,
                "weights_sha256": sha256,
                "weights_files": files,
                "preprocessing": dict(preprocess.BACKBONE_INPUTS[self.name], **self.extra_preprocessing()),
            }
        return self._identity

    def extra_preprocessing(self) -> dict:
        return {}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def encode(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError


class InceptionBackbone(Backbone):
    name = "inception"
    implementation = "torchmetrics NoTrainInceptionV3 (torch-fidelity FID Inception), pool3 2048-d"

    @torch.no_grad()
    def encode(self, images):
        out: list[dict] = [None] * len(images)
        for indices in _by_shape(images).values():
            batch = preprocess.inception_input([images[i] for i in indices]).to(self.device)
            feats = self.network(batch).reshape(len(indices), -1).float().cpu().numpy()
            for row, index in enumerate(indices):
                out[index] = {"pool": feats[row]}
        return out


class LpipsBackbone(Backbone):
    name = "lpips"
    implementation = "lpips 0.1.4 LPIPS(net='alex', version='0.1') stage activations"
    cacheable = False  # ~10 MB of activations per 512 px image; AlexNet recomputes them faster

    @torch.no_grad()
    def encode(self, images):
        out: list[dict] = [None] * len(images)
        for indices in _by_shape(images).values():
            batch = preprocess.lpips_input([images[i] for i in indices]).to(self.device)
            stages = lpips_features(self.network, batch)
            for row, index in enumerate(indices):
                out[index] = {f"stage{k}": stage[row:row + 1] for k, stage in enumerate(stages)}
        return out


class ClipBackbone(Backbone):
    name = "clip"
    implementation = "open_clip CLIP encode_image / encode_text"

    @torch.no_grad()
    def encode(self, images):
        pixels = preprocess.clip_input(images, self.network.preprocess)
        dtype = next(self.network.model.parameters()).dtype
        emb = self.network.encode_image(pixels.to(self.device, dtype)).float().cpu().numpy()
        return [{"image": row} for row in emb]

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.network.encode_text(list(texts)).float().cpu().numpy()


class FaceBackbone(Backbone):
    name = "face"
    implementation = "insightface: detector, largest face, 5-point alignment, ArcFace embedding"

    def encode(self, images):
        out = []
        for image in images:
            embedding = self.network.largest_face_embedding(image)
            if embedding is None:
                out.append({"embedding": np.full(self.embedding_size(), np.nan, dtype=np.float32)})
            else:
                out.append({"embedding": np.asarray(embedding, dtype=np.float32).reshape(-1)})
        return out

    def embedding_size(self) -> int:
        return int(getattr(self.network, "embedding_size", 512))


class SamBackbone(Backbone):
    name = "sam"
    implementation = "segment_anything SamPredictor, grid point prompts, best of 3 masks by predicted IoU"

    def __init__(self, source, device="cpu", network=None, points_per_side: int = 16, points_per_batch: int = 32):
        super().__init__(source, device, network)
        self.points_per_side = points_per_side
        self.points_per_batch = points_per_batch
        self._predictor = None

    @property
    def predictor(self):
        if self._predictor is None:
            from segment_anything import SamPredictor

            self._predictor = SamPredictor(self.network)
        return self._predictor

    def extra_preprocessing(self):
        return {"points_per_side": self.points_per_side, "grid": "cell centres", "multimask": "best predicted IoU"}

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Point prompts (x, y) in pixels at the centres of a points_per_side² grid."""
        steps = (torch.arange(self.points_per_side, dtype=torch.float64) + 0.5) / self.points_per_side
        ys, xs = torch.meshgrid(steps * height, steps * width, indexing="ij")
        return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).float()

    @torch.no_grad()
    def masks(self, image: np.ndarray) -> np.ndarray:
        """Boolean masks [P, H, W], one per grid point: SAM's best of three by predicted IoU.

        SamPredictor.predict_torch would upscale all three candidate masks of every point to
        the image size before we pick one; picking on the low-resolution logits first and
        upscaling only the chosen mask (with SAM's own ``postprocess_masks``) gives the same
        masks at a third of the cost.
        """
        height, width = image.shape[:2]
        predictor = self.predictor
        model = predictor.model
        predictor.set_image(preprocess.sam_input(image), image_format="RGB")
        points = self.grid(height, width)
        chunks = []
        for start in range(0, points.shape[0], self.points_per_batch):
            chunk = points[start:start + self.points_per_batch]
            coords = predictor.transform.apply_coords_torch(chunk.to(self.device), (height, width))[:, None, :]
            labels = torch.ones(coords.shape[0], 1, device=self.device)
            sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            low_res, iou = model.mask_decoder(
                image_embeddings=predictor.features, image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
            best = low_res[torch.arange(low_res.shape[0]), iou.argmax(dim=1)][:, None]
            upscaled = model.postprocess_masks(best, predictor.input_size, predictor.original_size)
            chunks.append((upscaled[:, 0] > model.mask_threshold).cpu())
        predictor.reset_image()
        return torch.cat(chunks).numpy()

    def encode(self, images):
        out = []
        for image in images:
            masks = self.masks(image)
            # Packed bits: masks are 1 bit of information per pixel and point.
            out.append({"masks_packed": np.packbits(masks, axis=-1), "masks_width": np.array(masks.shape[-1])})
        return out

    @staticmethod
    def unpack(feature: dict) -> np.ndarray:
        width = int(feature["masks_width"])
        return np.unpackbits(feature["masks_packed"], axis=-1, count=width).astype(bool)


class ScoreBackbone(Backbone):
    """HPSv2 / MPS: the network scores (image, caption) of customized images only.

    Not a feature backbone (``cacheable`` is False: originals are never scored), but when the
    evaluator sets ``score_cache`` each (image, caption) score is kept there, keyed by the
    pixels and the caption, so a killed scoring run redoes at most the batch in flight.
    """

    cacheable = False
    encodes_images = False
    score_cache = None  # a FeatureCache, set by the evaluator when customized images are cached

    @torch.no_grad()
    def score(self, images: list[np.ndarray], captions: list[str]) -> np.ndarray:
        from PIL import Image

        cache = self.score_cache
        keys = [score_key(image, caption) for image, caption in zip(images, captions)] if cache is not None else []
        known = [cache.get(self, key) for key in keys] if cache is not None else [None] * len(images)
        todo = [i for i, hit in enumerate(known) if hit is None]
        out = np.empty(len(images), dtype=np.float32)
        if todo:
            pil = [Image.fromarray(images[i]) for i in todo]
            fresh = np.asarray(torch.as_tensor(self._score(pil, [captions[i] for i in todo])).float().cpu()).reshape(-1)
            out[todo] = fresh
            if cache is not None:
                for i, value in zip(todo, fresh):
                    cache.put(self, keys[i], {"score": np.float32(value)})
        for i, hit in enumerate(known):
            if hit is not None:
                out[i] = hit["score"]
        return out


def score_key(image: np.ndarray, caption: str) -> str:
    """The cache key of an (image, caption) score: the pixels, their shape and the caption."""
    digest = hashlib.sha256(f"{image.shape}\0{caption}\0".encode("utf-8"))
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


class HpsBackbone(ScoreBackbone):
    name = "hps"
    implementation = "HPS v2.1 (open_clip ViT-H-14 + HPS checkpoint), cosine of image and caption embeddings"

    def _score(self, images, captions):
        return self.network.score(images, captions)

    def extra_preprocessing(self):
        # hpsv2 scores under CUDA autocast and so does the zoo's HPS: a GPU score is a float16
        # computation and must not share a cache entry with a CPU's float32 one.
        return {"autocast": "float16"} if self.device.type == "cuda" else {}


class MpsBackbone(ScoreBackbone):
    name = "mps"
    implementation = "MPS (CLIP-H + condition attention), overall condition"

    def _score(self, images, captions):
        return self.network.score(images, captions, condition="overall")


class OracleBackbone(Backbone):
    """The synthetic world's attribute oracle: one value index per attribute and image.

    Not a zoo network (no other source has one): it loads from the package's shipped weights,
    hash-checked, and its identity is the hash of the oracle files the weights manifest records.
    It runs on the CPU: a 32 px CNN gains nothing from an accelerator.
    """

    name = "oracle"
    implementation = "spf_bench.world.oracle.AttributeOracle, argmax value index per attribute"

    def _load(self) -> Any:
        from spf_bench.world.ship import load_shipped_oracle

        return load_shipped_oracle()

    def weights_identity(self) -> tuple[str, list[str]]:
        from spf_bench.world.ship import ORACLE
        from spf_bench.zoo import synth_source

        files = synth_source.manifest().get(ORACLE) or {}
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        return digest, sorted(f"{ORACLE}/{rel}" for rel in files)

    @torch.no_grad()
    def encode(self, images):
        out: list[dict] = [None] * len(images)
        for indices in _by_shape(images).values():  # a foreign size gets the oracle's own refusal
            labels = self.network.predict(np.stack([images[i] for i in indices]))
            for row, index in zip(labels, indices):
                out[index] = {"labels": row}
        return out


BACKBONES = {cls.name: cls for cls in (InceptionBackbone, LpipsBackbone, ClipBackbone, FaceBackbone, SamBackbone,
                                       HpsBackbone, MpsBackbone, OracleBackbone)}


def make_backbone(name: str, source: str, device: torch.device | str = "cpu", network: Any = None, **options) -> Backbone:
    """The backbone ``name`` on weights ``source``; ``network`` overrides the zoo's network."""
    return BACKBONES[name](source, device, network, **options)
