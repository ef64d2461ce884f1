"""Batched, seeded, cached generation of portraits.

Every image gets its own ``torch.Generator`` seeded with its triple's seed, on the CPU, so
its initial noise is the same whichever batch it falls in and whichever device runs the
model; batching then only changes float rounding (equal within tolerance across batch
sizes, tested). Batches are fixed slices of the job list, so a build that resumes at a batch
boundary computes exactly what an uninterrupted one would.

Results are cached on disk in a folder keyed by (model fingerprint, settings) with one file
per (triple id, prompt, seed); the images a run shows are hard links into that cache, so a
second run, or a resumed one, renders nothing it has already rendered.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch

from spf_bench.core.atomic import link_atomic, write_bytes_atomic
from spf_bench.core.captions import join_caption
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json

# Deterministic samplers only: an ancestral sampler draws fresh noise at every step, which
# would tie an image to the order generators are consumed in rather than to its seed alone.
SAMPLERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
}


@dataclass(frozen=True)
class GenerationSettings:
    """What the protocol fixes for a triple set: every image of every method uses these."""

    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 7.5
    height: int = 512
    width: int = 512

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise SpfError(f"Unknown sampler '{self.sampler}'; choose one of: {', '.join(SAMPLERS)}.")
        if self.steps < 1:
            raise SpfError(f"The number of sampling steps must be at least 1, not {self.steps}.")
        if self.height % 8 or self.width % 8 or self.height < 8 or self.width < 8:
            raise SpfError(f"The image size {self.height}x{self.width} must be a positive multiple of 8 (the VAE's factor).")

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        return hash_json(self.to_dict())


class PromptModel(Protocol):
    """What the generator needs from a method: a pipeline, an identity, its text conditioning
    of (base caption, target caption) pairs, which it gets apart, never joined."""

    pipe: object
    fingerprint: str

    def encode_captions(self, pairs: list[tuple[str, str]]) -> torch.Tensor: ...


def encode_joined(pipe, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """The pipeline's own conditioning of each pair's full caption (the base model's reading)."""
    return default_encode(pipe, [join_caption(base, target) for base, target in pairs])


def default_encode(pipe, prompts: list[str]) -> torch.Tensor:
    """The pipeline's own CLIP conditioning of ``prompts`` (last hidden state, 77 tokens)."""
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.inference_mode():
        return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0]


@dataclass(frozen=True)
class Job:
    """One image to make: its name, its captions (apart, for methods that treat the target
    differently) and its seed."""

    id: str
    base_caption: str
    seed: int
    target_caption: str = ""  # empty: the base caption alone (an original, a reconstruction)

    @property
    def captions(self) -> tuple[str, str]:
        return self.base_caption, self.target_caption

    @property
    def prompt(self) -> str:
        """The full caption, as the base model reads it (and the cache keys the image)."""
        return join_caption(self.base_caption, self.target_caption)


# ----------------------------------------------------------------------------- rendering

def scheduler_for(pipe, sampler: str):
    import diffusers

    cls = getattr(diffusers, SAMPLERS[sampler])
    # DDIM's class default clips x0 to [-1, 1], which SD's latents are not bounded by; SD's
    # own DDIM settings turn it off (and say so in the warning diffusers gives otherwise).
    extra = {"clip_sample": False} if sampler == "ddim" else {}
    return cls.from_config(pipe.scheduler.config, **extra)


def _runner(pipe, sampler: str):
    # A new pipeline object sharing the modules, so the caller's pipeline keeps its scheduler.
    from diffusers import StableDiffusionPipeline

    components = {**pipe.components, "scheduler": scheduler_for(pipe, sampler)}
    components.update(safety_checker=None, feature_extractor=None, image_encoder=None)
    runner = StableDiffusionPipeline(**components, requires_safety_checker=False)
    runner.set_progress_bar_config(disable=True)
    return runner


def render(model: PromptModel, jobs: list[Job], settings: GenerationSettings, batch_size: int = 8,
           on_image: Callable[[int], None] | None = None) -> Iterator[tuple[list[Job], np.ndarray]]:
    """Render ``jobs`` in batches; yields (jobs of the batch, uint8 images N x H x W x 3)."""
    if batch_size < 1:
        raise SpfError(f"The batch size must be at least 1, not {batch_size}.")
    if not jobs:
        return  # nothing to render: not even the model is touched
    pipe = model.pipe
    runner = _runner(pipe, settings.sampler)
    dtype = pipe.unet.dtype
    uncond = model.encode_captions([("", "")]).to(dtype)
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        cond = model.encode_captions([j.captions for j in batch]).to(dtype)
        generators = [torch.Generator("cpu").manual_seed(j.seed) for j in batch]
        with torch.inference_mode():
            out = runner(
                prompt_embeds=cond, negative_prompt_embeds=uncond.expand(len(batch), -1, -1),
                num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                height=settings.height, width=settings.width, generator=generators, output_type="np",
            ).images
        if not np.isfinite(out).all():
            bad = [j.id for j, img in zip(batch, out) if not np.isfinite(img).all()]
            raise SpfError(f"The model produced NaN or inf pixels for {', '.join(bad)} (try --dtype float32).")
        # Same rounding as diffusers' own conversion to PIL, so a saved image equals the pipeline's.
        yield batch, (out * 255).round().clip(0, 255).astype(np.uint8)
        if on_image is not None:
            on_image(len(batch))


# ----------------------------------------------------------------------------- files

def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # no metadata: same pixels, same bytes
    return buffer.getvalue()


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# ----------------------------------------------------------------------------- cache

class ImageCache:
    """Images of one (model, settings) pair, one file per (triple id, prompt, seed)."""

    def __init__(self, root: Path, fingerprint: str, settings: GenerationSettings):
        self.folder = Path(root) / hash_json({"model": fingerprint, "settings": settings.to_dict()})[:24]

    def path(self, job: Job) -> Path:
        tag = hashlib.sha256(f"{job.prompt}\0{job.seed}".encode("utf-8")).hexdigest()[:16]
        return self.folder / f"{job.id}-{tag}.png"

    def missing(self, jobs: Iterable[Job]) -> list[Job]:
        return [j for j in jobs if not self.path(j).is_file()]


def fill_cache(model: PromptModel, jobs: list[Job], settings: GenerationSettings, cache_root: Path,
               batch_size: int = 8, progress: bool = True, desc: str = "generating",
               shard: tuple[int, int] = (0, 1)) -> ImageCache:
    """Render into the cache what it lacks of ``jobs``; ``shard=(i, n)`` takes every n-th batch.

    Shards split the work of several processes (one per GPU) that share the cache folder.
    A shard is made of whole batches of the single process's batching of the missing jobs,
    never every n-th job: the pixels of an image can change with the other prompts of its
    batch (measured on the tiny model: one or two pixels one level apart in 7 of 8 images between batches
    of 8 and of 4 interleaved jobs), and must not change with the number of processes.
    Interrupting loses at most the batch in flight.
    """
    from spf_bench.core.progress import progress_bar

    _check_unique(jobs)
    if batch_size < 1:
        raise SpfError(f"The batch size must be at least 1, not {batch_size}.")
    cache = ImageCache(cache_root, model.fingerprint, settings)
    index, count = shard
    missing = cache.missing(jobs)
    # only the last batch may be short, so these batches, rendered in turn, keep their make-up
    todo = [job for first in range(index * batch_size, len(missing), count * batch_size)
            for job in missing[first:first + batch_size]]
    if todo:
        with progress_bar(total=len(todo), desc=desc, unit="img", enabled=progress) as bar:
            for batch, images in render(model, todo, settings, batch_size, on_image=bar.update):
                for job, image in zip(batch, images):
                    write_bytes_atomic(cache.path(job), png_bytes(image))
    return cache


def generate(model: PromptModel, jobs: list[Job], settings: GenerationSettings, out_dir: Path, cache_root: Path,
             batch_size: int = 8, progress: bool = True, desc: str = "generating") -> dict[str, Path]:
    """Make ``out_dir/<id>.png`` for every job, rendering only what the cache lacks.

    Returns the written paths by id. Interrupting loses at most the batch in flight.
    """
    cache = fill_cache(model, jobs, settings, cache_root, batch_size, progress, desc)
    written = {}
    for job in jobs:
        dest = Path(out_dir) / f"{job.id}.png"
        link_atomic(cache.path(job), dest)
        written[job.id] = dest
    return written


def _check_unique(jobs: list[Job]) -> None:
    seen = set()
    for job in jobs:
        if job.id in seen:
            raise SpfError(f"The id '{job.id}' appears twice in one generation request.")
        seen.add(job.id)
