"""Magnet: training-free binding of the target attribute to the portrait's subject (a Tab. 1 baseline).

Zhuang, Hu and Gao, "Magnet: We Never Know How Text-to-Image Diffusion Models Work, Until We
Learn How Vision-Language Models Function" (NeurIPS 2024; github.com/I2-Multimedia-Lab/Magnet).
The original model is used unchanged; only the CLIP text embedding of the prompt is edited
before sampling. For an object noun ``o`` with attribute ``a`` (a *concept* "a o"):

- **positive binding vector**: ``v+ = mean_k [ E("a o_k")[o_k] - E("o_k")[o_k] ]`` over the
  ``K`` nearest neighbour nouns ``o_k`` of ``o`` (nearest by the cosine of their embeddings in
  a bank of nouns, ``o`` itself included), where ``E(text)[w]`` is the text encoder's output at
  the token of ``w`` (the last word before the end-of-text token). It is what attribute ``a``
  adds to a noun like ``o``.
- **negative binding vector**: the same construction with the attribute ``a_j`` of every
  *other* concept of the prompt, ``v-_j``; it is what a foreign attribute would add.
- **adaptive strength**: with ``omega = cos( E("a o")[EOT], E("a o")[last padding token] )``,
  how much the padding embeddings already carry the concept (the paper's finding: the
  padding tokens take on the context of the whole prompt),
  ``alpha = exp(lambda - omega)`` and ``beta = 1 - omega^2``.
- the object token's embedding in the prompt becomes ``e_o + alpha v+ - beta sum_j v-_j``;
  every other token, the padding included, is left as the text encoder produced it.

Portrait prompts ``c = c_b ⊕ c_t`` have one object that matters, the subject: its concept is
the target attribute bound to the subject noun ("round glasses woman" from the base caption
"a photo of a young woman, long brown hair" and the target "wearing round glasses"), the
noun last because CLIP's text encoder is causal, so only words before a noun shape its
embedding. The other concepts are the comma-separated phrases of ``c_b`` (noun = their last
word, attribute = the words before it), whose attributes give the negative vectors: the
subject is pulled towards the target attribute and pushed away from the attributes of the
rest of the scene. ``objects="all"`` also edits those other nouns, as Magnet does for every
concept of a prompt (each pulled to its own attribute, pushed from the others', the target
included).

Settings (:class:`MagnetConfig`): ``K = 5`` and ``lambda = 0.6`` are the authors' defaults
(``run.py``); ``strength`` scales ``alpha`` and ``beta`` together (1 = the paper; 0 = the
original model exactly). The noun bank is the suite's own (:data:`NEIGHBOR_BANK`), people first.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from spf_bench.core.captions import join_caption
from spf_bench.core.errors import SpfError

NEIGHBOR_BANK = (
    # people, the neighbours a portrait subject should find
    "woman", "man", "girl", "boy", "person", "lady", "gentleman", "child", "kid", "teenager",
    "grandmother", "grandfather", "mother", "father", "baby", "student", "soldier", "bride",
    "groom", "doctor", "nurse", "chef", "athlete", "model", "actor", "actress", "dancer",
    "singer", "farmer", "worker", "businessman", "policeman", "teacher", "king", "queen",
    # animals and things, so that non-person nouns find neighbours too
    "dog", "cat", "horse", "bird", "bear", "lion", "tiger", "monkey", "rabbit", "cow",
    "car", "bicycle", "chair", "table", "bed", "sofa", "lamp", "clock", "book", "bottle",
    "cup", "bowl", "vase", "hat", "shirt", "jacket", "dress", "shoe", "bag", "umbrella",
    "tree", "flower", "house", "building", "street", "park", "beach", "mountain", "river",
    "wall", "window", "door", "road", "sky", "garden", "room", "forest", "city", "field",
    "hair", "face", "eye", "hand", "beard", "glasses", "necklace", "earring", "scarf", "tie",
)
SUBJECT_WORDS = (
    "grandmother", "grandfather", "businessman", "businesswoman", "gentleman", "teenager",
    "actress", "toddler", "student", "soldier", "athlete", "mother", "father", "person",
    "doctor", "nurse", "woman", "child", "model", "actor", "bride", "groom", "adult", "senior",
    "youth", "female", "male", "girl", "lady", "baby", "chef", "boy", "man", "kid", "guy",
)
# Words that never carry an attribute of a concept (articles, prepositions, framing words).
_FUNCTION_WORDS = {
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "by", "for", "to", "from", "wearing",
    "has", "having", "is", "who", "photo", "portrait", "picture", "close-up", "closeup", "shot",
    "image", "her", "his", "their", "its",
}
OBJECT_SCOPES = ("subject", "all")


@dataclass(frozen=True)
class MagnetConfig:
    """Magnet's settings, part of the method's identity (its fingerprint)."""

    strength: float = 1.0  # scales alpha and beta; 0 gives the original model's embeddings exactly
    alpha_lambda: float = 0.6  # lambda of alpha = exp(lambda - omega) (authors' --L)
    neighbors: int = 5  # K nearest nouns of the bank (authors' --K)
    positive: bool = True  # apply positive binding vectors
    negative: bool = True  # apply negative binding vectors
    objects: str = "subject"  # "subject": edit the subject token only; "all": every concept's noun
    bank: tuple[str, ...] = field(default=NEIGHBOR_BANK)

    def __post_init__(self):
        if self.objects not in OBJECT_SCOPES:
            raise SpfError(f"Magnet's objects must be one of {', '.join(OBJECT_SCOPES)}, not '{self.objects}'.")
        if self.neighbors < 1:
            raise SpfError(f"Magnet needs at least one neighbour noun, not {self.neighbors}.")

    def to_dict(self) -> dict:
        return {**asdict(self), "bank": list(self.bank)}


@dataclass(frozen=True)
class Concept:
    noun: str
    attribute: str  # "" when the phrase has no attribute words
    segment: str  # "base" or "target": where the noun's token is looked for in the prompt
    is_subject: bool = False


# ----------------------------------------------------------------------------- captions

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'\-]*", text.lower())


def subject_noun(base_caption: str) -> str:
    words = _words(base_caption)
    for word in words:
        if word in SUBJECT_WORDS:
            return word
    raise SpfError(f"No subject noun (one of {', '.join(SUBJECT_WORDS[:8])}, ...) found in the base caption '{base_caption}'.")


def target_attribute(target_caption: str) -> str:
    """The target caption without its leading function words ("round glasses" from "wearing round glasses")."""
    words = _words(target_caption)
    while len(words) > 1 and words[0] in _FUNCTION_WORDS:
        words = words[1:]
    return " ".join(words)


def portrait_concepts(base_caption: str, target_caption: str) -> list[Concept]:
    """The subject bound to the target attribute, then the other phrases of the base caption."""
    subject = subject_noun(base_caption)
    concepts = [Concept(subject, target_attribute(target_caption), "base", is_subject=True)]
    for phrase in re.split(r",|\band\b", base_caption.lower()):
        words = [w for w in _words(phrase) if w not in _FUNCTION_WORDS]
        if not words or subject in words:
            continue  # the subject's own phrase: its words describe the subject, not another object
        concepts.append(Concept(words[-1], " ".join(words[:-1]), "base"))
    return concepts


def concept_text(attribute: str, noun: str) -> str:
    return f"{attribute} {noun}".strip()


# ----------------------------------------------------------------------------- text encoder

@torch.no_grad()
def encode_texts(pipe, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings ``(N, 77, D)`` of ``texts`` and the position of each one's end-of-text token."""
    tok = pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    embeds = pipe.text_encoder(tok.input_ids.to(pipe.text_encoder.device))[0].float()
    eot = tok.attention_mask.sum(dim=1) - 1
    return embeds, eot


def last_word_embeddings(pipe, texts: list[str]) -> torch.Tensor:
    """``(N, D)``: each text's embedding at its last word token (just before end-of-text)."""
    embeds, eot = encode_texts(pipe, texts)
    return embeds[torch.arange(len(texts)), eot - 1]


def adaptive_strengths(pipe, concepts: list[str], alpha_lambda: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(alpha, beta, omega) per concept text, from its end-of-text and last padding embeddings."""
    embeds, eot = encode_texts(pipe, concepts)
    omega = F.cosine_similarity(embeds[torch.arange(len(concepts)), eot], embeds[:, -1], dim=-1)
    return torch.exp(alpha_lambda - omega), 1.0 - omega ** 2, omega


# ----------------------------------------------------------------------------- the method

class Magnet:
    """Magnet on a Stable Diffusion pipeline: edits prompt embeddings, never the weights."""

    def __init__(self, pipe, config: MagnetConfig | None = None):
        self.pipe = pipe
        self.config = config or MagnetConfig()
        self._bank_embeds: torch.Tensor | None = None

    def bank_embeddings(self) -> torch.Tensor:
        # Encoded once per Magnet: the bank does not depend on the prompt.
        if self._bank_embeds is None:
            self._bank_embeds = last_word_embeddings(self.pipe, list(self.config.bank))
        return self._bank_embeds

    def neighbours(self, noun: str) -> list[str]:
        """The K nouns nearest to ``noun`` (itself included, as it is added to the bank)."""
        bank = list(self.config.bank)
        embeds = self.bank_embeddings()
        if noun not in bank:
            bank.append(noun)
            embeds = torch.cat([embeds, last_word_embeddings(self.pipe, [noun])])
        centre = embeds[bank.index(noun)]
        order = torch.argsort(F.cosine_similarity(centre[None], embeds, dim=-1), descending=True, stable=True)
        return [bank[i] for i in order[: self.config.neighbors].tolist()]

    def binding_vector(self, attribute: str, neighbours: list[str]) -> torch.Tensor:
        """``mean_k E("attribute o_k")[o_k] - E("o_k")[o_k]``."""
        bound = last_word_embeddings(self.pipe, [concept_text(attribute, o) for o in neighbours])
        plain = last_word_embeddings(self.pipe, neighbours)
        return (bound - plain).mean(dim=0)

    def edits(self, base_caption: str, target_caption: str) -> list[tuple[int, torch.Tensor]]:
        """(token position in the prompt, vector to add) for one portrait prompt."""
        cfg = self.config
        concepts = portrait_concepts(base_caption, target_caption)
        edited = [c for c in concepts if c.is_subject or cfg.objects == "all"]
        alphas, betas, _ = adaptive_strengths(self.pipe, [concept_text(c.attribute, c.noun) for c in edited], cfg.alpha_lambda)
        out = []
        for concept, alpha, beta in zip(edited, alphas.tolist(), betas.tolist()):
            near = self.neighbours(concept.noun)
            delta = torch.zeros_like(self.bank_embeddings()[0])
            if cfg.positive and concept.attribute:
                delta += alpha * self.binding_vector(concept.attribute, near)
            if cfg.negative:
                for other in concepts:
                    if other is not concept and other.attribute:
                        delta -= beta * self.binding_vector(other.attribute, near)
            position = noun_position(self.pipe.tokenizer, base_caption, target_caption, concept)
            out.append((position, cfg.strength * delta))
        return out

    def prompt_embeds(self, base_captions: list[str], target_captions: list[str]) -> torch.Tensor:
        """Edited embeddings ``(B, 77, D)`` of the prompts ``c_b ⊕ c_t``, for ``pipe(prompt_embeds=...)``.

        Starts from exactly the original model's encoding of the prompts (the generator's
        :func:`spf_bench.generation.sampling.default_encode`); with ``strength`` 0 nothing is added, so
        the result equals it bit for bit.
        """
        prompts = [join_caption(b, t) for b, t in zip(base_captions, target_captions)]
        embeds = plain_prompt_embeds(self.pipe, prompts)
        if self.config.strength == 0:
            return embeds
        for i, (base, target) in enumerate(zip(base_captions, target_captions)):
            if not target.strip():
                continue  # a base caption alone (the reconstruction analysis) has nothing to bind
            for position, delta in self.edits(base, target):
                embeds[i, position] += delta.to(embeds.dtype)
        return embeds


def plain_prompt_embeds(pipe, prompts: list[str]) -> torch.Tensor:
    """The original model's conditioning of ``prompts``, exactly as the suite's generator computes it."""
    from spf_bench.generation.sampling import default_encode

    return default_encode(pipe, prompts).clone()


def noun_position(tokenizer, base_caption: str, target_caption: str, concept: Concept) -> int:
    """Position in the tokenized prompt of the noun's last token (BOS at 0)."""
    ids = lambda text: tokenizer(text, add_special_tokens=False, truncation=False).input_ids  # noqa: E731
    prompt = [tokenizer.bos_token_id] + ids(join_caption(base_caption, target_caption))
    if len(prompt) + 1 > tokenizer.model_max_length:
        raise SpfError(f"The prompt '{join_caption(base_caption, target_caption)}' is longer than CLIP's {tokenizer.model_max_length} tokens.")
    needle = ids(concept.noun)
    base_end = 1 + len(ids(base_caption.strip()))
    start, stop = (1, base_end) if concept.segment == "base" else (base_end, len(prompt))
    for i in range(start, stop - len(needle) + 1):
        if prompt[i : i + len(needle)] == needle:
            return i + len(needle) - 1
    raise SpfError(f"Magnet cannot find '{concept.noun}' in the prompt '{join_caption(base_caption, target_caption)}'.")


# ----------------------------------------------------------------------------- in the method registry

def build_magnet(request):
    """Registry builder: the original model with Magnet's prompt embeddings.

    ``request.options`` may hold ``magnet`` (a dict of :class:`MagnetConfig` fields, e.g.
    ``{"strength": 0.5}``). The generator hands over each job's base and target captions
    apart, so Magnet never parses a joined prompt: a pair without a target (the empty prompt
    of classifier-free guidance, a base caption alone for the reconstruction analysis) is
    encoded exactly as the original model would.
    """
    from spf_bench.methods.registry import MethodModel

    config = MagnetConfig(**dict(request.options).get("magnet", {}))
    pipe = request.base_pipe()
    magnet = Magnet(pipe, config)

    def encode(pairs: list[tuple[str, str]]) -> torch.Tensor:
        return magnet.prompt_embeds([base for base, _ in pairs], [target for _, target in pairs])

    return MethodModel(request.method, pipe, request.fingerprint(magnet=config.to_dict()), encode=encode)
