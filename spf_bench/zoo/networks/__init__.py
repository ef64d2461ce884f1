"""Importing this package registers every network of the zoo."""

from . import sd15, clip, inception, lpips_net, face, sam, hps, mps  # noqa: F401
