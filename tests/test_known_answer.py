"""A known answer from the real backbone, in the manner of open_clip's
tests/test_inference_simple.py (CLIP.png -> "a diagram" at 1.0): the paper's default,
ViT-L-14-336 with OpenAI's weights built with QuickGELU, names the colour of a plain red, green
and blue picture among three colour prompts, each as the clear majority (probability > 0.5).

The weights (about 1.7 GB) are never downloaded by the tests (HF_HUB_OFFLINE=1): the test skips,
saying so, unless they are already in the Hugging Face cache (`simclip-server` or
`simclip quickstart` puts them there on first use). Marked slow: loading ViT-L takes tens of
seconds on a CPU.
"""

import pytest
import torch
from PIL import Image

from simclip import DEFAULT_MODEL, DEFAULT_PRETRAINED, BackboneUnavailableError, load_backbone
from simclip.backbone import download_weights

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 60, 220)}
PROMPTS = [f"a plain {name} square" for name in COLOURS]


@pytest.fixture(scope="module")
def paper_backbone():
    """The default backbone at fp32 (the exact path) on the CPU, when its weights are cached."""
    try:
        download_weights(DEFAULT_MODEL, DEFAULT_PRETRAINED)  # offline: only finds the cached file
    except BackboneUnavailableError as e:
        pytest.skip(f"{DEFAULT_MODEL}/{DEFAULT_PRETRAINED} weights are not in the cache: {e}")
    return load_backbone(DEFAULT_MODEL, DEFAULT_PRETRAINED, device="cpu", precision="fp32")


@pytest.mark.slow
def test_the_paper_backbone_names_the_colour_of_a_plain_picture(paper_backbone):
    assert paper_backbone.info.id == "ViT-L-14-336/openai/quickgelu"
    assert not paper_backbone.info.random_weights
    images = [Image.new("RGB", (336, 336), rgb) for rgb in COLOURS.values()]
    with torch.no_grad():
        image_features = paper_backbone.encode_images(images)  # (3, D), unit norm
        text_features = paper_backbone.encode_texts(PROMPTS)  # (3, D), unit norm
    assert torch.allclose(image_features.norm(dim=-1), torch.ones(3), atol=1e-3)
    probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)  # (3 images, 3 prompts)
    assert probs.argmax(dim=-1).tolist() == [0, 1, 2], probs
    assert bool((probs.diagonal() > 0.5).all()), probs
