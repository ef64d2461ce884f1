"""One record per weight source: everything the suite does differently on it.

A :class:`WeightSource` holds the source's generation settings, the scoring options that
differ from the metrics' defaults, the default size of a triple set, how its automatic
checkpoints are trained, which caption language its text encoder reads and whether its
networks are trained at all. Every consumer (triple builds, quick checkpoints, scoring,
tables) asks :func:`source_record`; an unknown name is one sentence, never a silent fall
back to another source's settings.

On real weights the paper's setting: 512 px and a 50-step DDIM with guidance 7.5. On the
tiny model, its native 64 px and few steps, so that the whole suite runs on two CPU cores
in minutes; the numbers mean nothing there and every report says so. On the synthetic
world, its native 32 px at the guidance and step count its pipeline is measured at
(``spf_bench.world.measure``), with the suite's deterministic DDIM in place of the PNDM
sampler the measurement uses, and a set small enough that the whole main command (triples,
quick checkpoints, generation, all eight metrics) fits in about four minutes on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.world.measure import GUIDANCE as SYNTH_GUIDANCE, STEPS as SYNTH_STEPS
from spf_bench.zoo.registry import SOURCES as ZOO_SOURCES

PORTRAIT_CAPTIONS, WORLD_CAPTIONS = "portrait", "world"  # the caption languages (spf_bench.triples.compose)
DRAWN_BY_BASE, WORLD_RENDERS = "base-model", "world-renders"  # where quick training images come from


@dataclass(frozen=True)
class WeightSource:
    name: str
    settings: GenerationSettings
    n_triples: int  # the size of a triple set built when none is given
    trained: bool  # False: untrained networks whose numbers say nothing (reports say so)
    eval_options: dict = field(default_factory=dict)  # EvalOptions fields that differ from the defaults
    # QuickTraining field defaults for the checkpoints a run trains itself; None: the user
    # brings every checkpoint on this source.
    quick_training: dict | None = None
    training_images: str | None = None  # DRAWN_BY_BASE | WORLD_RENDERS, with quick_training
    captions: str = PORTRAIT_CAPTIONS  # the caption language its text encoder understands
    world_metrics: bool = False  # the world's exact metrics (Target-Acc, ...) apply to its images
    folder_checkpoints: bool = False  # spf-train reads its base model and CLIP as folders, not by name


# On tiny and synth, Seg-Cons's 16x16 grid of SAM prompts costs more than everything else of
# a run together (measured: about 80% of the scoring time of a 5-triple run on two cores); a
# 4x4 grid keeps the metric and its code path whole at a smoke-test price. It is recorded in
# every score's record. synth borrows tiny's SAM, so the same holds there.
_SMALL_SAM_GRID = {"sam_points_per_side": 4}

_RECORDS = (
    WeightSource(
        "tiny", GenerationSettings(sampler="ddim", steps=10, guidance=7.5, height=64, width=64), n_triples=10,
        trained=False, eval_options=_SMALL_SAM_GRID,
        # Small and fast: the tiny model's numbers mean nothing anyway.
        quick_training=dict(steps=4, batch_size=2, learning_rate=1e-4, n_images=8, image_steps=4),
        training_images=DRAWN_BY_BASE),
    WeightSource("random", GenerationSettings(sampler="ddim", steps=50, guidance=7.5, height=512, width=512),
                 n_triples=100, trained=False),
    # the paper uses 5,000 triples
    WeightSource("pretrained", GenerationSettings(sampler="ddim", steps=50, guidance=7.5, height=512, width=512),
                 n_triples=5000, trained=True),
    WeightSource(
        "synth", GenerationSettings(sampler="ddim", steps=SYNTH_STEPS, guidance=SYNTH_GUIDANCE, height=32, width=32),
        n_triples=60, trained=True, eval_options=_SMALL_SAM_GRID,
        # Sized to the main command's budget (about four minutes on two cores from an empty
        # cache). Measured in CPU seconds per 100 steps at batch 8: stage 1 about 10 (8x8
        # latents) to 20 (16x16), stage 2 about 22 to 40, so 150 steps of each cost at most
        # about 90 s; the rest goes to scoring (Seg-Cons's SAM alone is about half of it). On
        # 8x8 latents 200 steps raised the world's Target-Acc from 0.62 (base) to 0.68 (naive)
        # and 0.70 (ours). 112 renders of the customization set teach each of the 5 novel targets 22
        # or 23 times.
        quick_training=dict(steps=150, batch_size=8, learning_rate=1e-4, n_images=112),
        training_images=WORLD_RENDERS, captions=WORLD_CAPTIONS, world_metrics=True, folder_checkpoints=True),
)
WEIGHT_SOURCES: dict[str, WeightSource] = {record.name: record for record in _RECORDS}
assert set(WEIGHT_SOURCES) == set(ZOO_SOURCES), "every source the zoo loads needs a protocol record"


def source_record(weights: str) -> WeightSource:
    if weights not in WEIGHT_SOURCES:
        raise SpfError(f"Unknown weight source '{weights}'; choose one of: {', '.join(WEIGHT_SOURCES)}.")
    return WEIGHT_SOURCES[weights]


# Views of the records, by source name.
DEFAULT_SETTINGS = {name: record.settings for name, record in WEIGHT_SOURCES.items()}
DEFAULT_TRIPLES = {name: record.n_triples for name, record in WEIGHT_SOURCES.items()}


def settings_for(weights: str, sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                 size: int | None = None) -> GenerationSettings:
    """The source's defaults with any of the given values in their place."""
    base = source_record(weights).settings
    return GenerationSettings(
        sampler=sampler or base.sampler,
        steps=steps if steps is not None else base.steps,
        guidance=guidance if guidance is not None else base.guidance,
        height=size if size is not None else base.height,
        width=size if size is not None else base.width,
    )


def eval_options_for(weights: str, **given) -> dict:
    """The source's scoring options with the given ones in their place."""
    return {**source_record(weights).eval_options, **given}


def per_source(value) -> str:
    """``value(record)`` of every source, for help texts: "10 on tiny, 100 on random, ..."."""
    return ", ".join(f"{value(record)} on {name}" for name, record in WEIGHT_SOURCES.items())


def quick_training_sources() -> tuple[str, ...]:
    """The sources whose missing checkpoints a run trains itself."""
    return tuple(name for name, record in WEIGHT_SOURCES.items() if record.quick_training is not None)


def trained_sources() -> tuple[str, ...]:
    return tuple(name for name, record in WEIGHT_SOURCES.items() if record.trained)
