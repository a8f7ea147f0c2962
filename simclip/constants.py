"""Names, defaults and the warning categories, defined once."""

DEFAULT_MODEL = "ViT-L-14-336"  # the paper's backbone (arXiv 2409.05772)
DEFAULT_PRETRAINED = "openai"
RANDOM_INIT_SEED = 0  # random-weight backbones are seeded so every process builds the same one

DEFAULT_PORT = 8478
TRAINED, ZERO_SHOT = "trained", "zero-shot"  # a Predictor's modes (a trained head, or prompts)
CHECKPOINT_FORMAT_VERSION = 1
# Bumped when what decoding paints changes (orientation and colour as browsers paint them,
# simclip/display.py; truncated GIF and animated WebP painted as far as they go): part of a
# Predictor's identity, so a result cached under older rules is never served.
DECODE_VERSION = 3

MAX_IMAGE_PIXELS = 40_000_000  # width x height cap, checked before decoding (THREATS.md T9)
# The most bytes one picture or video may have: the server's classify body limit (backend/config.py
# BODY_MAX), the video decoder's byte cap, and the extension's MAX_IMAGE_BYTES (shared/api.js,
# checked against this by tests/test_extension_constants.py). THREATS.md T6.
MAX_BODY_BYTES = 10 * 1024 * 1024
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

# Transparency (images.py): alpha is composited on black when the visible content is light (mean
# luminance of the opaque pixels over this level), else on white, so white captions on a
# transparent sticker stay readable.
LIGHT_CONTENT_LUMINANCE = 128

# Animations (GIF, APNG, animated WebP and AVIF): judged on up to MAX_ANIMATION_FRAMES frames a
# viewer sees, spread over the animation (the APNG default image and blank frames skipped). At
# most MAX_ANIMATION_FRAMES_SCANNED frames are decoded, and scanning stops early once
# MAX_ANIMATION_DECODE_PIXELS canvas pixels were decoded or MAX_ANIMATION_DECODE_S seconds passed.
MAX_ANIMATION_FRAMES = 4
MAX_ANIMATION_FRAMES_SCANNED = 100
MAX_ANIMATION_DECODE_PIXELS = 2 * MAX_IMAGE_PIXELS
MAX_ANIMATION_DECODE_S = 1.0
# Which frames count (images.py and video.py alike, on 64x64 grey thumbnails, 0-255 levels): a
# frame whose thumbnail's standard deviation is under BLANK_FRAME_STDDEV in every band is blank,
# consecutive frames whose mean absolute difference is under SAME_FRAME_DIFF are one.
BLANK_FRAME_STDDEV = 1.0
SAME_FRAME_DIFF = 1.0

# Videos (video.py): MP4 and WebM bodies, recognised by their magic bytes, judged like an
# animation on up to MAX_ANIMATION_FRAMES visible frames spread over their length. Refused before
# any frame is decoded (each with its typed error): over MAX_VIDEO_BYTES, a codec other than
# VIDEO_CODECS, over MAX_VIDEO_STREAMS streams, a side over MAX_VIDEO_SIDE or over
# MAX_VIDEO_PIXELS (1080p, 1920x1088 coded), longer than MAX_VIDEO_DURATION_S, more than
# MAX_VIDEO_FRAMES frames or MAX_VIDEO_FPS frames a second. Decoding stops after
# MAX_VIDEO_DECODE_FRAMES frames or MAX_VIDEO_DECODE_S seconds (reading included), and the
# frames found so far are judged. Chosen by measurement: docs/api.md "Videos".
VIDEO_CODECS = ("h264", "vp8", "vp9", "av1")
MAX_VIDEO_BYTES = MAX_BODY_BYTES  # a video is one classify body
MAX_VIDEO_STREAMS = 8
MAX_VIDEO_SIDE = 1920
MAX_VIDEO_PIXELS = 1920 * 1088
MAX_VIDEO_DURATION_S = 120.0
MAX_VIDEO_FPS = 120
MAX_VIDEO_FRAMES = 7200  # 2 minutes at 60 frames a second
MAX_VIDEO_DECODE_FRAMES = 600
MAX_VIDEO_DECODE_S = 2.0

# Extreme aspect ratios (predictor.split_tiles): a picture longer than TILE_MIN_ASPECT times its
# short side is seen by CLIP as up to MAX_TILES square tiles (centre crop only under that), and
# one picture gives the encoder at most MAX_VIEWS inputs (frames x tiles).
TILE_MIN_ASPECT = 2.0
MAX_TILES = 8
MAX_VIEWS = 8
