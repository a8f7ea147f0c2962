"""Names, defaults and the warning categories, defined once."""

DEFAULT_MODEL = "ViT-L-14-336"  # the paper's backbone (arXiv 2409.05772)
DEFAULT_PRETRAINED = "openai"
RANDOM_INIT_SEED = 0  # random-weight backbones are seeded so every process builds the same one

DEFAULT_PORT = 8478
CHECKPOINT_FORMAT_VERSION = 1

MAX_IMAGE_PIXELS = 40_000_000  # width x height cap, checked before decoding (THREATS.md T9)
MAX_IMAGE_SIDE = 16_384
ALLOWED_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF")

# The warning categories the extension can show, in display order.
# Each trained label maps to one of these ids through the checkpoint metadata.
WARNING_CATEGORIES = {
    "harmful": {
        "name": "Harmful",
        "description": "Memes that can hurt a person, a community or society (HarMeme).",
    },
    "misogynous": {
        "name": "Misogyny",
        "description": "Memes that demean or attack women (MAMI, SemEval-2022 Task 5).",
    },
    "hateful": {
        "name": "Hateful",
        "description": "Memes that attack people for who they are (Hateful Memes).",
    },
    "offensive": {
        "name": "Offensive",
        "description": "Offensive memes (MultiOFF, Memotion).",
    },
}
DEFAULT_THRESHOLD = 0.5
