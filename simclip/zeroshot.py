"""Zero-shot warning scores from CLIP prompt ensembles, used before any head is trained.

For each warning category, the mean embedding of its positive prompts is compared with the mean
embedding of its negative prompts, for the image and for the OCR text; the score is the softmax
probability of the positive side, averaged over the two modalities (image only when no text).
"""

import torch

from .constants import DEFAULT_THRESHOLD

# Each template is filled with every positive and every negative description of a category.
PROMPT_TEMPLATES = ("a meme that is {}.", "a {} meme.", "an image with a {} joke.")

ZERO_SHOT_PROMPTS = {
    "harmful": (("harmful", "hurtful and abusive", "spreading dangerous lies"),
                ("harmless", "friendly and funny", "wholesome")),
    "misogynous": (("misogynistic", "sexist against women", "degrading to women"),
                   ("respectful to women", "harmless", "wholesome")),
    "hateful": (("hateful", "racist", "attacking a religion or ethnicity"),
                ("harmless", "friendly and funny", "wholesome")),
    "offensive": (("offensive", "vulgar and insulting", "rude"),
                  ("inoffensive", "polite", "wholesome")),
}
ZERO_SHOT_THRESHOLD = DEFAULT_THRESHOLD  # the prompts are symmetric, so even odds decide


def _prompts(words):
    return [t.format(w) for w in words for t in PROMPT_TEMPLATES]


class ZeroShotScorer:
    """Scores images and texts against the prompt ensembles of each warning category."""

    def __init__(self, backbone, categories=tuple(ZERO_SHOT_PROMPTS), logit_scale=100.0):
        self.categories = list(categories)
        self.logit_scale = logit_scale
        anchors = []
        for cat in self.categories:
            pos, neg = ZERO_SHOT_PROMPTS[cat]
            e_pos = backbone.encode_texts(_prompts(pos)).mean(0)
            e_neg = backbone.encode_texts(_prompts(neg)).mean(0)
            anchors.append(torch.stack([e_pos, e_neg]))
        self.anchors = torch.nn.functional.normalize(torch.stack(anchors), dim=-1)  # (K, 2, D)

    def _positive_prob(self, emb):
        sims = torch.einsum("bd,kpd->bkp", emb, self.anchors) * self.logit_scale  # (B, K, 2)
        return sims.softmax(-1)[..., 0]  # (B, K)

    @torch.no_grad()
    def __call__(self, img_emb, txt_emb, has_text):
        """(B, D), (B, D), (B,) bool -> list of {category: score}."""
        p_img = self._positive_prob(img_emb)
        p_txt = self._positive_prob(txt_emb)
        w = has_text.float().unsqueeze(-1)  # (B, 1)
        p = (p_img + w * p_txt) / (1.0 + w)  # (B, K)
        return [dict(zip(self.categories, row)) for row in p.tolist()]
