"""The one join of a base caption and a target caption: c = c_b ⊕ c_t.

Training captions, triple sets, generation jobs and the metrics all spell the full caption
this way; every part that needs it calls :func:`join_caption`, so they cannot drift apart.
"""

from __future__ import annotations

PROMPT_JOIN = ", "


def join_caption(base: str, target: str) -> str:
    """``base, target`` without outer spaces; the base caption alone when there is no target."""
    base, target = base.strip(), target.strip()
    return f"{base}{PROMPT_JOIN}{target}" if target else base
