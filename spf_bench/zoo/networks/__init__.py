"""Importing this package registers every network of the zoo."""

from spf_bench.zoo.networks import sd15, clip, inception, lpips_net, face, sam, hps, mps  # noqa: F401
