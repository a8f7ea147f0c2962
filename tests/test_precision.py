"""Encoder precision (issue 15, section 3): int8 by default on a CPU, fp32 the exact path, the
precision recorded in the backbone info, the embedding caches, the head and /v1/health, and the
cost per picture measured at startup.

Bounds set from measurement (random weights: no real CLIP weights can be downloaded here), with a
margin; docs/bench.md has the numbers:
- cosine int8 to fp32 on the tiny backbone: images 0.99997 mean, texts 0.9989 mean (0.998 min);
  ViT-B-32: images 0.9998, texts 0.998. Asserted: mean >= 0.995, min >= 0.99.
- the 177 real Harm-C validation memes and their texts (tiny backbone, zero-shot scores of the 4
  categories, each category's threshold at its fp32 median: half the memes flagged, the hardest
  place for a verdict to hold): 97.3% of the (meme, category) verdicts agree (95.5% to 98.9% per
  category), score rank correlation 0.991 to 0.996 per category; embeddings: images 0.99996
  mean, texts 0.9977 mean, 0.9866 min (long OCR texts). Asserted: agreement >= 0.93, rank
  correlation >= 0.98, text cosine mean >= 0.995 and min >= 0.98.
"""

import open_clip
import pytest
import torch
from PIL import Image, ImageDraw

from simclip import (
    HeadConfig,
    Predictor,
    SimCLIPHead,
    TaskSpec,
    get_ocr_engine,
    load_backbone,
    load_classifier,
    make_metadata,
    read_metadata,
    save_checkpoint,
)
from simclip import backbone as backbone_module
from simclip.backbone import _SelfAttention, get_precision
from simclip.checkpoint import get_trained_backbone
from simclip.cost import make_meme_picture, measure_cost
from simclip.images import decode_image
from tiny import TINY

MIN_COSINE_MEAN, MIN_COSINE = 0.995, 0.99
MIN_AGREEMENT, MIN_RANK_CORRELATION = 0.93, 0.98
CAPTIONS = ["when the meme is harmful", "a cat sitting on a keyboard", "", "THIS IS FINE",
            "nobody: absolutely nobody: me at 3 am", "look at this graph"]


def meme_images(n=6, size=(160, 120)):
    """Meme-like PIL pictures: varied colours and shapes with a caption."""
    out = []
    for i in range(n):
        image = Image.new("RGB", size, (40 * i % 256, 200 - 25 * i, 90 + 20 * i))
        draw = ImageDraw.Draw(image)
        draw.ellipse((10 + 5 * i, 30, 90 + 8 * i, 110), fill=(230, 30 * i % 256, 60))
        draw.text((8, 6), CAPTIONS[i % len(CAPTIONS)] or "meme", fill=(255, 255, 255))
        out.append(image)
    return out


@pytest.fixture(scope="module")
def tiny_int8():
    """The tiny random backbone at the CPU default precision (int8)."""
    return load_backbone("simclip-tiny", "none", device="cpu")


def cosines(a, b):
    """Row-wise cosine of two (B, D) batches of unit vectors -> (B,)."""
    return (a * b).sum(-1)


# --- the default and the choice per device ---------------------------------------------------

def test_load_backbone_defaults_to_int8_on_a_cpu(tiny_int8):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    assert tiny_int8.info.precision == "int8"
    assert tiny_int8.dtype == torch.float32  # activations stay fp32 between the int8 matmuls
    blocks = [m for m in tiny_int8.model.modules()
              if isinstance(m, open_clip.transformer.ResidualAttentionBlock)]
    assert len(blocks) == 4  # 2 image + 2 text
    for block in blocks:  # every projection of both towers, attention included
        assert isinstance(block.attn, _SelfAttention)
        for linear in (block.attn.in_proj, block.attn.out_proj, block.mlp.c_fc, block.mlp.c_proj):
            assert isinstance(linear, DynamicQuantizedLinear)
    assert not any(isinstance(m, torch.nn.Linear) for m in tiny_int8.model.modules())


def test_load_backbone_defaults_to_fp16_on_cuda(monkeypatch):
    moved = []

    def fake_to(module, *args, **kwargs):  # no GPU here: record where the towers would go
        moved.append(kwargs)
        return module

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.nn.Module, "to", fake_to)
    bb = load_backbone("simclip-tiny", "none")
    assert bb.info.precision == "fp16" and bb.dtype == torch.float16
    assert bb.device.type == "cuda"
    assert moved[-1] == {"device": torch.device("cuda"), "dtype": torch.float16}


@pytest.mark.parametrize(("precision", "device", "expected"), [
    (None, "cpu", "int8"), (None, "cuda", "fp16"), (None, "mps", "fp32"),
    ("fp32", "cpu", "fp32"), ("bf16", "cpu", "bf16"), ("fp16", "cuda", "fp16"),
])
def test_precision_is_chosen_per_device(precision, device, expected):
    assert get_precision(precision, device) == expected


def test_a_cpu_without_int8_kernels_falls_back_to_fp32(monkeypatch):
    monkeypatch.setattr(backbone_module, "is_int8_available", lambda: False)
    assert get_precision(None, "cpu") == "fp32"
    with pytest.raises(ValueError, match="no int8 CPU kernels.*--precision fp32"):
        get_precision("int8", "cpu")


@pytest.mark.parametrize(("precision", "device", "message"), [
    ("int8", "cuda", "int8 runs on the CPU only"),
    ("int4", "cpu", "unknown precision 'int4'; available: int8, fp32, fp16, bf16"),
])
def test_a_bad_precision_is_refused_naming_the_choices(precision, device, message):
    with pytest.raises(ValueError, match=message):
        load_backbone("simclip-tiny", "none", device=device, precision=precision)


# --- fp32 is exact; int8 stays close -----------------------------------------------------------

def test_fp32_is_the_exact_unquantized_path_bitwise(tiny_backbone):
    assert tiny_backbone.info.precision == "fp32"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(backbone_module.RANDOM_INIT_SEED)
        ref, _, preprocess = open_clip.create_model_and_transforms("simclip-tiny")
    ref.eval()
    images = meme_images()
    with torch.no_grad():
        want_img = ref.encode_image(torch.stack([preprocess(im) for im in images]), normalize=True)
        want_txt = ref.encode_text(open_clip.get_tokenizer("simclip-tiny")(CAPTIONS), normalize=True)
    assert torch.equal(tiny_backbone.encode_images(images), want_img)
    assert torch.equal(tiny_backbone.encode_texts(CAPTIONS), want_txt)
    assert any(isinstance(m, torch.nn.MultiheadAttention) for m in tiny_backbone.model.modules())


@pytest.mark.parametrize("causal", [False, True])
def test_the_quantizable_attention_computes_what_multihead_attention_does(causal):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(3, 11, 64)
    mask = torch.full((11, 11), float("-inf")).triu(1) if causal else None
    with torch.no_grad():
        want = mha(x, x, x, need_weights=False, attn_mask=mask)[0]
        got, weights = _SelfAttention(mha)(x, x, x, need_weights=False, attn_mask=mask)
    assert weights is None
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_int8_embeddings_stay_within_the_stated_cosine_of_fp32(tiny_backbone, tiny_int8):
    images = meme_images()
    img = cosines(tiny_backbone.encode_images(images), tiny_int8.encode_images(images))
    txt = cosines(tiny_backbone.encode_texts(CAPTIONS), tiny_int8.encode_texts(CAPTIONS))
    for c in (img, txt):
        assert c.mean() >= MIN_COSINE_MEAN and c.min() >= MIN_COSINE
    assert not torch.equal(tiny_backbone.encode_texts(CAPTIONS), tiny_int8.encode_texts(CAPTIONS))


def test_an_int8_embedding_does_not_depend_on_the_rest_of_its_batch(tiny_int8):
    images = meme_images()
    batched = tiny_int8.encode_images(images)
    alone = torch.cat([tiny_int8.encode_images([im]) for im in images])
    assert torch.equal(batched, alone)
    assert torch.equal(tiny_int8.encode_texts(CAPTIONS),
                       torch.cat([tiny_int8.encode_texts([t]) for t in CAPTIONS]))


@pytest.mark.slow
def test_int8_vit_b_32_embeddings_stay_within_the_stated_cosine_of_fp32():
    """A full-size architecture (random weights: nothing can be downloaded here)."""
    fp32 = load_backbone("ViT-B-32", "none", device="cpu", precision="fp32")
    int8 = load_backbone("ViT-B-32", "none", device="cpu", precision="int8")
    images = meme_images(4)
    img = cosines(fp32.encode_images(images), int8.encode_images(images))
    txt = cosines(fp32.encode_texts(CAPTIONS), int8.encode_texts(CAPTIONS))
    for c in (img, txt):
        assert c.mean() >= MIN_COSINE_MEAN and c.min() >= MIN_COSINE


@pytest.mark.slow
def test_verdicts_on_the_real_memes_agree_between_int8_and_fp32(harmeme_val_dir, tiny_backbone,
                                                               tiny_int8):
    import json

    rows = [json.loads(line) for line in (harmeme_val_dir / "val.jsonl").read_text().splitlines()]
    images = [decode_image((harmeme_val_dir / "images" / r["image"]).read_bytes()) for r in rows]
    texts = [r["text"] for r in rows]
    ocr = get_ocr_engine("none")
    scores = {}
    for name, bb in (("fp32", tiny_backbone), ("int8", tiny_int8)):
        results = Predictor(bb, ocr).classify(images, texts)
        scores[name] = torch.tensor([[r["scores"][c] for c in sorted(r["scores"])]
                                     for r in results])  # (memes, categories)
    thresholds = scores["fp32"].median(dim=0).values  # half the memes flagged per category
    agree = ((scores["fp32"] >= thresholds) == (scores["int8"] >= thresholds)).float().mean()
    assert len(rows) == 177 and agree >= MIN_AGREEMENT, float(agree)
    ranks = {k: v.argsort(0).argsort(0).float() for k, v in scores.items()}  # (memes, categories)
    n = len(rows)
    spearman = 1 - 6 * ((ranks["fp32"] - ranks["int8"]) ** 2).sum(0) / (n * (n * n - 1))
    assert spearman.min() >= MIN_RANK_CORRELATION, spearman.tolist()
    txt = cosines(tiny_backbone.encode_texts(texts), tiny_int8.encode_texts(texts))
    assert txt.mean() >= MIN_COSINE_MEAN and txt.min() >= 0.98, (txt.mean(), txt.min())


# --- the precision recorded: caches, heads, health ----------------------------------------------

def test_the_head_records_the_precision_of_its_embeddings_and_serves_at_another(tmp_path,
                                                                                tiny_int8):
    head = SimCLIPHead(HeadConfig(embed_dim=64, tasks=[TaskSpec("h", "multiclass", ["no", "yes"])]))
    meta = make_metadata(head.config, tiny_int8.info,
                         [{"category": "harmful", "task": "h", "labels": ["yes"], "threshold": 0.5}])
    path = save_checkpoint(tmp_path / "h.safetensors", head, meta)
    assert read_metadata(path)["precision"] == "int8"
    assert get_trained_backbone(read_metadata(path)).precision == "int8"
    served = load_classifier(path, pretrained="none", device="cpu", precision="fp32", ocr="none")
    assert served.backbone.info.precision == "fp32" and served.metadata["precision"] == "int8"


def test_simclip_train_records_the_precision_it_embedded_with_in_the_head(tmp_path):
    from simclip import cli
    from simclip_train.synthetic import make_synthetic_dataset

    data, ckpt = tmp_path / "data", tmp_path / "head.safetensors"
    make_synthetic_dataset(data / "harmeme-c", n_train=8, n_val=4, n_test=2, size=(96, 72))
    assert cli.main(["train", "--dataset", "harmeme-c", "--data-dir", str(data), "--out",
                     str(ckpt), "--epochs", "2", *TINY]) == 0
    assert read_metadata(ckpt)["precision"] == "int8"  # the CPU default
    assert list((data / "embeddings").rglob("int8/dataset/train.safetensors"))


def test_health_says_which_precision_serves_and_made_the_head_and_the_measured_cost(
        make_app, tmp_path, tiny_int8):
    head = SimCLIPHead(HeadConfig(embed_dim=64, tasks=[TaskSpec("h", "multiclass", ["no", "yes"])]))
    meta = make_metadata(head.config, tiny_int8.info.__class__(
        **{**tiny_int8.info.__dict__, "precision": "fp32"}),
        [{"category": "harmful", "task": "h", "labels": ["yes"], "threshold": 0.5}])
    predictor = Predictor(tiny_int8, get_ocr_engine("none"), head=head, metadata=meta,
                          checkpoint_id="test")
    client = make_app(CLASSIFIER=predictor, OCR_WORKERS=3).test_client()
    body = client.get("/v1/health").get_json()
    assert body["precision"] == {"served": "int8", "head": "fp32"}
    assert body["cost"] is None  # not measured yet
    predictor.measure_cost()
    cost = client.get("/v1/health").get_json()["cost"]
    assert cost["device"] == "cpu" and cost["workers"] == 3 and cost["precision"] == "int8"
    assert cost["encode_ms"] > 0 and cost["decode_ms"] > 0 and cost["ocr_ms"] >= 0
    assert cost["per_picture_ms"] == pytest.approx(
        cost["encode_ms"] + cost["ocr_ms"] + cost["decode_ms"], abs=0.11)


def test_the_real_server_measures_its_cost_while_loading_and_serves_int8_on_a_cpu(server_process):
    import requests

    body = requests.get(f"{server_process.url}/v1/health", headers=server_process.headers,
                        timeout=10).json()
    assert body["precision"] == {"served": "int8", "head": None}
    cost = body["cost"]
    assert cost["device"] == "cpu" and cost["precision"] == "int8" and cost["workers"] >= 1
    assert cost["per_picture_ms"] >= cost["encode_ms"] > 0


def test_zero_shot_health_has_no_head_precision(make_app, tiny_predictor):
    body = make_app(CLASSIFIER=tiny_predictor).test_client().get("/v1/health").get_json()
    assert body["precision"] == {"served": "fp32", "head": None}


def test_the_cost_is_measured_with_the_ocr_on_a_meme_with_text(tiny_int8):
    calls = []

    class CountingOCR:
        name = "counting"

        def __call__(self, image):
            calls.append(image.size)
            return "WHEN THE SERVER CHECKS EVERY MEME"

    cost = measure_cost(Predictor(tiny_int8, CountingOCR()), batch=3)
    assert calls == [(600, 600), (600, 600)]  # the warm-up, then the timed read
    assert cost["batch"] == 3 and cost["device"] == "cpu" and cost["precision"] == "int8"
    assert decode_image(make_meme_picture()).size == (600, 600)
    with pytest.raises(ValueError, match="at least 1"):
        measure_cost(Predictor(tiny_int8, CountingOCR()), batch=0)


def test_an_fp32_embedding_cache_is_never_reused_for_int8(tmp_path):
    from simclip_train.embed import EmbeddingCache, get_cache_path
    from simclip_train.synthetic import make_synthetic_dataset

    data = tmp_path / "data"
    make_synthetic_dataset(data / "harmeme-c", n_train=4, n_val=6, n_test=2, size=(96, 72))
    caches = {p: EmbeddingCache(tmp_path / "cache", data, model="simclip-tiny", pretrained="none",
                                device="cpu", precision=p, progress=False)
              for p in ("fp32", "int8")}
    _, fp32 = caches["fp32"].get("harmeme-c", "val")
    _, int8 = caches["int8"].get("harmeme-c", "val")
    assert fp32["stats"]["computed"] == 6 and int8["stats"]["computed"] == 6  # not reused
    assert (fp32["meta"]["precision"], int8["meta"]["precision"]) == ("fp32", "int8")
    assert int8["meta"]["backbone_info"]["precision"] == "int8"
    paths = {p: get_cache_path(tmp_path / "cache", "harmeme-c", "simclip-tiny/random", "dataset",
                               "val", precision=p) for p in caches}
    assert paths["fp32"] != paths["int8"] and all(p.is_file() for p in paths.values())
    assert "/int8/" in paths["int8"].as_posix()
    assert not torch.equal(fp32["text"], int8["text"])
    _, again = caches["int8"].get("harmeme-c", "val")
    assert "stats" not in again  # its own precision: reused


def test_a_cache_file_of_another_precision_is_recomputed(tmp_path, caplog):
    import json
    import logging

    from safetensors.torch import load_file, save_file

    from simclip_train.embed import EmbeddingCache, get_cache_path, read_cache_metadata
    from simclip_train.synthetic import make_synthetic_dataset

    data = tmp_path / "data"
    make_synthetic_dataset(data / "harmeme-c", n_train=4, n_val=3, n_test=2, size=(96, 72))
    cache = EmbeddingCache(tmp_path / "cache", data, model="simclip-tiny", pretrained="none",
                           device="cpu", progress=False)
    assert cache.precision == "int8"  # the CPU default
    cache.get("harmeme-c", "val")
    path = get_cache_path(tmp_path / "cache", "harmeme-c", "simclip-tiny/random", "dataset", "val",
                          precision="int8")
    meta = {**read_cache_metadata(path), "precision": "fp32"}  # e.g. a file copied by hand
    save_file(load_file(str(path)), str(path), metadata={"simclip_cache": json.dumps(meta)})
    with caplog.at_level(logging.WARNING, logger="simclip_train.embed"):
        _, redone = cache.get("harmeme-c", "val")
    assert "embedded at fp32, the encoders now run at int8" in caplog.text
    assert redone["stats"]["computed"] == 3 and redone["meta"]["precision"] == "int8"
