"""The phrases portrait captions are composed of, each tagged with what it specifies.

Every phrase carries the *slots* it fixes (``hair``, ``eyewear``, ``top`` ...). A target
attribute may only be added to a base caption that leaves all of its slots open, so a
composed caption never says a thing twice or two contradicting things ("long brown hair,
with pink hair"). ``needs`` restricts a phrase to some subjects (facial hair to adult men,
make-up and tattoos to adults), so "a little girl, with a full beard" cannot be composed.

Base caption parts follow the order subject, hair, expression, clothing, scene, lighting,
camera; target phrases are grouped by the five attribute categories of the paper's Tab. 3.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("facial_attributes", "clothing", "image_style", "appearance", "accessories")
CATEGORY_TITLES = {
    "facial_attributes": "Facial Attributes", "clothing": "Clothing", "image_style": "Image Style",
    "appearance": "Appearance", "accessories": "Accessories",
}

# Who a subject is: needs are checked against these tags.
ADULT, TEEN, CHILD, MALE, FEMALE = "adult", "teen", "child", "male", "female"


@dataclass(frozen=True)
class Phrase:
    text: str
    slots: frozenset[str] = frozenset()
    needs: frozenset[str] = frozenset()  # every tag here must be among the subject's tags

    def fits(self, subject_tags: frozenset[str]) -> bool:
        return self.needs <= subject_tags


def _p(text: str, *slots: str, needs: tuple[str, ...] = ()) -> Phrase:
    return Phrase(text, frozenset(slots), frozenset(needs))


@dataclass(frozen=True)
class Subject:
    text: str
    tags: frozenset[str]
    slots: frozenset[str]  # "age" when the words already state an age


def _s(text: str, *tags: str, aged: bool) -> Subject:
    return Subject(text, frozenset(tags), frozenset({"age"} if aged else set()))


SUBJECTS = (
    _s("a woman", ADULT, FEMALE, aged=False), _s("a man", ADULT, MALE, aged=False),
    _s("a young woman", ADULT, FEMALE, aged=True), _s("a young man", ADULT, MALE, aged=True),
    _s("a middle-aged woman", ADULT, FEMALE, aged=True), _s("a middle-aged man", ADULT, MALE, aged=True),
    _s("an elderly woman", ADULT, FEMALE, aged=True), _s("an elderly man", ADULT, MALE, aged=True),
    _s("a teenage girl", TEEN, FEMALE, aged=True), _s("a teenage boy", TEEN, MALE, aged=True),
    _s("a little girl", CHILD, FEMALE, aged=True), _s("a little boy", CHILD, MALE, aged=True),
)

# Optional base parts: (probability of appearing, options). Scene is always present so
# that every base caption places its subject somewhere.
HAIR = (0.6, (
    _p("long brown hair", "hair"), _p("short black hair", "hair"), _p("curly red hair", "hair"),
    _p("wavy blonde hair", "hair"), _p("straight black hair", "hair"), _p("shoulder-length auburn hair", "hair"),
    _p("short grey hair", "hair", needs=(ADULT,)), _p("tousled dark hair", "hair"),
))
EXPRESSION = (0.7, (
    _p("smiling", "expression"), _p("with a neutral expression", "expression"), _p("laughing", "expression"),
    _p("with a serious expression", "expression"), _p("looking thoughtful", "expression"),
    _p("with a gentle smile", "expression"),
))
CLOTHING = (0.7, (
    _p("wearing a white t-shirt", "top"), _p("wearing a grey sweater", "top"), _p("in a denim shirt", "top"),
    _p("wearing a black turtleneck", "top"), _p("in a striped shirt", "top"), _p("wearing a blue blouse", "top"),
    _p("in a plain white shirt", "top"),
))
SCENE = (1.0, (
    _p("in a park", "scene"), _p("in a cafe", "scene"), _p("on a city street", "scene"), _p("in a library", "scene"),
    _p("on a beach", "scene"), _p("in a studio with a grey backdrop", "scene"), _p("in an office", "scene"),
    _p("in a garden", "scene"), _p("in a kitchen", "scene"), _p("by a window", "scene"),
))
LIGHTING = (0.6, (
    _p("soft natural light", "lighting"), _p("golden hour light", "lighting"), _p("studio lighting", "lighting"),
    _p("overcast daylight", "lighting"), _p("warm indoor light", "lighting"), _p("dramatic side light", "lighting"),
))
CAMERA = (0.6, (
    _p("close-up portrait", "framing"), _p("head and shoulders shot", "framing"), _p("85mm lens", "lens"),
    _p("shallow depth of field", "lens"), _p("eye-level shot", "framing"),
))
BASE_PARTS = (("hair", HAIR), ("expression", EXPRESSION), ("clothing", CLOTHING), ("scene", SCENE),
              ("lighting", LIGHTING), ("camera", CAMERA))

_GROWN_MAN = (ADULT, MALE)
_GROWN = (ADULT,)
_NOT_CHILD_MAKEUP = (ADULT,)

TARGETS: dict[str, tuple[Phrase, ...]] = {
    "facial_attributes": tuple([
        *(_p(f"with {c} eyes", "eye_color") for c in ("blue", "green", "hazel", "grey", "brown", "amber", "heterochromatic")),
        _p("with freckles", "freckles"), _p("with a beauty mark on the cheek", "mole"), _p("with rosy cheeks", "cheeks"),
        _p("with dimples", "cheeks"), _p("with a small scar on the chin", "scar"), _p("with a scar across the eyebrow", "scar"),
        _p("with a birthmark on the forehead", "birthmark"),
        _p("with a full beard", "facial_hair", needs=_GROWN_MAN), _p("with a thick mustache", "facial_hair", needs=_GROWN_MAN),
        _p("with a goatee", "facial_hair", needs=_GROWN_MAN), _p("with stubble", "facial_hair", needs=_GROWN_MAN),
        _p("with long sideburns", "facial_hair", needs=_GROWN_MAN), _p("with a handlebar mustache", "facial_hair", needs=_GROWN_MAN),
        _p("with a short boxed beard", "facial_hair", needs=_GROWN_MAN),
        _p("with thick eyebrows", "eyebrows"), _p("with arched eyebrows", "eyebrows"), _p("with bushy eyebrows", "eyebrows"),
        _p("with thin eyebrows", "eyebrows"),
        _p("with a wide grin", "expression"), _p("with a surprised expression", "expression"), _p("frowning", "expression"),
        _p("winking", "expression"), _p("with a shy smile", "expression"), _p("with closed eyes", "expression"),
        _p("pouting", "expression"), _p("looking angry", "expression"), _p("with a smirk", "expression"),
        _p("with tears on the cheeks", "expression", "cheeks"),
        _p("with deep wrinkles", "age", needs=_GROWN), _p("aged about sixty", "age", needs=_GROWN),
        _p("looking about twenty years old", "age", needs=_GROWN),
        _p("with full lips", "lips"), _p("with a button nose", "nose"), _p("with a pointed nose", "nose"),
        _p("with high cheekbones", "cheekbones"), _p("with a strong jawline", "jaw"), _p("with a cleft chin", "chin"),
        _p("with a gap between the front teeth", "teeth"), _p("with braces on the teeth", "teeth"),
    ]),
    "clothing": tuple([
        *(_p(f"wearing a {c}", "outer") for c in (
            "leather jacket", "denim jacket", "trench coat", "puffer jacket", "tweed blazer", "navy blazer",
            "wool cardigan", "hooded raincoat", "bomber jacket", "faux fur coat", "varsity jacket", "camel overcoat",
            "windbreaker", "quilted vest", "doctor's white coat")),
        *(_p(f"wearing a {c}", "top") for c in (
            "red dress", "floral summer dress", "hawaiian shirt", "chunky knitted sweater", "silk blouse", "polo shirt",
            "plaid flannel shirt", "hoodie", "tank top", "band t-shirt", "kimono", "sari", "wedding dress",
            "chef's uniform", "sports jersey", "dirndl", "qipao", "linen shirt", "sequin top", "mesh top")),
        _p("wearing pajamas", "top"), _p("wearing overalls", "top"),
        *(_p(f"wearing a {c}", "top", "outer") for c in ("business suit", "tuxedo", "military uniform", "school uniform",
                                                         "space suit", "knight's armor")),
        _p("wearing a bow tie", "neck"), _p("wearing a silk necktie", "neck"),
    ]),
    "image_style": tuple(_p(s, "style") for s in (
        "pencil drawing style", "oil painting style", "watercolor painting", "in anime style", "3d animated film style",
        "pop art style", "charcoal sketch", "black and white photo", "sepia vintage photo", "cyberpunk style",
        "ukiyo-e woodblock print", "impressionist painting", "cubist painting", "comic book style", "pixel art",
        "low poly 3d render", "claymation style", "renaissance painting", "art nouveau style", "baroque painting",
        "stained glass style", "graffiti art", "mosaic style", "vaporwave aesthetic", "film noir style", "polaroid photo",
        "double exposure", "pastel drawing", "ink wash painting", "line art", "vector illustration", "art deco poster",
        "surrealist painting", "expressionist painting", "gouache painting", "crayon drawing", "marble statue style",
        "bronze sculpture style", "paper cut art", "embroidery style", "mural painting", "linocut print",
    )),
    "appearance": tuple([
        *(_p(f"with {h}", "hair") for h in (
            "pink hair", "silver hair", "platinum blonde hair", "a pixie cut", "dreadlocks", "braided hair", "a ponytail",
            "a messy bun", "a mohawk", "a buzz cut", "an afro", "blunt bangs", "blue hair", "long wavy hair",
            "cornrows", "space buns", "green hair")),
        _p("bald", "hair", needs=_GROWN),
        _p("wearing red lipstick", "makeup", needs=_NOT_CHILD_MAKEUP), _p("with smoky eye makeup", "makeup", needs=_NOT_CHILD_MAKEUP),
        _p("with glitter makeup", "makeup", needs=_NOT_CHILD_MAKEUP), _p("with winged eyeliner", "makeup", needs=_NOT_CHILD_MAKEUP),
        _p("with face paint", "makeup"), _p("with gothic makeup", "makeup", needs=_NOT_CHILD_MAKEUP),
        _p("with a neck tattoo", "tattoo", needs=_GROWN), _p("with a face tattoo", "tattoo", needs=_GROWN),
        _p("with a tattooed sleeve", "tattoo", needs=_GROWN), _p("with henna on the hands", "henna"),
        _p("with a muscular build", "build"), _p("with a slim build", "build"), _p("with broad shoulders", "build"),
        _p("with wet hair", "hair_state"), _p("with windswept hair", "hair_state"),
        _p("sweaty after a workout", "skin_state"), _p("with sunburned skin", "skin_state"),
        _p("covered in paint splatters", "skin_state"), _p("with flour on the face", "skin_state"),
        _p("with a bandage on the forehead", "bandage"), _p("with dirt on the face", "skin_state"),
        _p("with tanned skin", "skin_tone"), _p("with pale skin", "skin_tone"), _p("with glowing skin", "skin_state"),
    ]),
    "accessories": tuple([
        *(_p(f"wearing {e}", "eyewear") for e in (
            "round glasses", "sunglasses", "aviator sunglasses", "cat-eye glasses", "thick-rimmed glasses",
            "a monocle", "ski goggles", "an eye patch")),
        *(_p(f"wearing a {h}", "headwear") for h in (
            "baseball cap", "beanie", "straw hat", "fedora", "cowboy hat", "beret", "top hat", "flower crown",
            "headband", "bandana", "golden crown", "bucket hat")),
        _p("wearing a hijab", "headwear", "hair"), _p("wearing a turban", "headwear", "hair"),
        _p("wearing headphones", "headphones"),
        *(_p(f"wearing {e}", "earrings") for e in ("pearl earrings", "hoop earrings", "diamond stud earrings")),
        *(_p(f"wearing a {n}", "necklace") for n in ("pearl necklace", "gold chain", "choker", "pendant necklace")),
        _p("wearing a silk scarf", "scarf"), _p("wearing a knitted scarf", "scarf"),
        _p("wearing a face mask", "mask"), _p("wearing a masquerade mask", "mask", "eyewear"),
        _p("with a nose ring", "piercing", needs=_GROWN), _p("with an eyebrow piercing", "piercing", needs=_GROWN),
        _p("holding a cup of coffee", "hand"), _p("holding a bouquet of flowers", "hand"), _p("holding a book", "hand"),
        _p("holding an umbrella", "hand"), _p("wearing a wristwatch", "wrist"), _p("with a camera around the neck", "strap"),
        _p("with a bow in the hair", "hair_accessory"), _p("with a hair clip", "hair_accessory"),
        _p("wearing a backpack", "bag"), _p("with a parrot on the shoulder", "shoulder"),
    ]),
}
