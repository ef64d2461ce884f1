"""SPF-Portrait training: both stages, every loss and ablation, and the LoRA / AdaLoRA baselines.

Modules, one job each: ``config`` (dataclass configs, YAML/TOML + flags), ``data`` (image
folders with metadata.jsonl), ``latent_cache``, ``models`` (loading, diffusion arithmetic),
``capture`` (attention processors recording A^l, P^l, h^l), ``sfcm`` (Eq. 8-10), ``losses``
(pure functions), ``clip_guide`` (CLIP for L_re and relevance), ``trainable`` (which weights
train), ``accelerator`` (the run's Accelerator and device), ``loop`` (the shared loop and its loss hook), ``diffusion_task`` /
``stage1`` / ``stage2`` / ``baselines`` (what trains and how it is saved), ``diagnostics``
(SFCM pictures) and ``commands`` (``spf-train``).
"""
