"""The eight metrics of the benchmark, in the order tables show them, and the synthetic
world's three exact metrics (:mod:`.world`), scored only under the ``synth`` weights.

Each metric module holds a torchmetrics ``Metric`` subclass and its functional twin; the
backbones that produce their features are in :mod:`.backbones`, and what each backbone
receives exactly is documented in :mod:`.preprocess`.
"""

from spf_bench.metrics.base import PairMetric
from spf_bench.metrics.clip_image import ClipImageSimilarity, clip_image_similarity
from spf_bench.metrics.clip_text import ClipTextAlignment, clip_text_alignment
from spf_bench.metrics.fid import FrechetInceptionDistance, SmallSetWarning, frechet_distance
from spf_bench.metrics.hps import HpsV2Score, hps_v2_score
from spf_bench.metrics.identity import IdentitySimilarity, identity_similarity
from spf_bench.metrics.lpips_distance import LearnedPerceptualSimilarity, lpips_distance, lpips_features
from spf_bench.metrics.mps import MpsScore, mps_score
from spf_bench.metrics.seg_cons import SegmentationConsistency, segmentation_consistency
from spf_bench.metrics.world import WORLD_METRIC_ORDER, WORLD_METRICS

METRICS = {
    cls.name: cls
    for cls in (FrechetInceptionDistance, LearnedPerceptualSimilarity, IdentitySimilarity, ClipImageSimilarity,
                SegmentationConsistency, ClipTextAlignment, HpsV2Score, MpsScore)
}
METRIC_ORDER = tuple(METRICS)
PER_PAIR_METRICS = tuple(name for name in METRIC_ORDER if name != "FID")
# Every metric the evaluator knows, the eight first; the world's only under the synth weights.
ALL_METRICS = {**METRICS, **WORLD_METRICS}
ALL_METRIC_ORDER = (*METRIC_ORDER, *WORLD_METRIC_ORDER)

__all__ = [
    "METRICS", "METRIC_ORDER", "PER_PAIR_METRICS", "PairMetric", "SmallSetWarning",
    "ALL_METRICS", "ALL_METRIC_ORDER", "WORLD_METRICS", "WORLD_METRIC_ORDER",
    "FrechetInceptionDistance", "frechet_distance", "LearnedPerceptualSimilarity", "lpips_distance", "lpips_features",
    "IdentitySimilarity", "identity_similarity", "ClipImageSimilarity", "clip_image_similarity",
    "SegmentationConsistency", "segmentation_consistency", "ClipTextAlignment", "clip_text_alignment",
    "HpsV2Score", "hps_v2_score", "MpsScore", "mps_score",
]
