"""The benchmark's metrics: the paper's eight, KID and FD-CLIP beside FID, and the synthetic
world's three exact metrics (:mod:`.world`), scored only under the ``synth`` weights.

Each metric module holds one torchmetrics ``Metric`` subclass that declares everything the
suite needs to know about it (:class:`~spf_bench.metrics.base.MetricContract`) and its
functional twin; :mod:`.registry` lists them, plug-ins included, in the suite's order. The
backbones that produce their features are in :mod:`.backbones`, and what each backbone
receives exactly is documented in :mod:`.preprocess`.
"""

from spf_bench.metrics import registry
from spf_bench.metrics.base import FeatureBatch, MetricContract, PairMetric, SetMetric
from spf_bench.metrics.clip_image import ClipImageSimilarity, clip_image_similarity
from spf_bench.metrics.clip_text import ClipTextAlignment, clip_text_alignment
from spf_bench.metrics.fd_clip import FrechetClipDistance
from spf_bench.metrics.fid import FrechetInceptionDistance, SmallSetWarning, frechet_distance
from spf_bench.metrics.hps import HpsV2Score, hps_v2_score
from spf_bench.metrics.identity import IdentitySimilarity, identity_similarity
from spf_bench.metrics.kid import KernelInceptionDistance, kernel_inception_distance
from spf_bench.metrics.lpips_distance import LearnedPerceptualSimilarity, lpips_distance, lpips_features
from spf_bench.metrics.mps import MpsScore, mps_score
from spf_bench.metrics.seg_cons import SegmentationConsistency, segmentation_consistency
from spf_bench.metrics.world import WORLD_METRIC_ORDER, WORLD_METRICS


def __getattr__(name: str):
    # Read from the registry on use, so that a plug-in registered after this import counts.
    if name == "METRIC_ORDER":  # what is scored when no metric is named
        return registry.default_metrics()
    if name == "ALL_METRICS":
        return registry.metrics()
    if name == "ALL_METRIC_ORDER":
        return tuple(registry.metrics())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METRIC_ORDER", "ALL_METRICS", "ALL_METRIC_ORDER", "FeatureBatch", "MetricContract", "PairMetric", "SetMetric",
    "SmallSetWarning", "WORLD_METRICS", "WORLD_METRIC_ORDER", "registry",
    "FrechetInceptionDistance", "frechet_distance", "KernelInceptionDistance", "kernel_inception_distance",
    "FrechetClipDistance", "LearnedPerceptualSimilarity", "lpips_distance", "lpips_features",
    "IdentitySimilarity", "identity_similarity", "ClipImageSimilarity", "clip_image_similarity",
    "SegmentationConsistency", "segmentation_consistency", "ClipTextAlignment", "clip_text_alignment",
    "HpsV2Score", "hps_v2_score", "MpsScore", "mps_score",
]
