"""The backbone as OpenAI trained it (issue 9 A): QuickGELU for OpenAI's weights, GELU for the
others, the activation in every identity, and our embeddings equal to open_clip's own."""

import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from PIL import Image, ImageDraw

from simclip import CheckpointError, HeadConfig, SimCLIPHead, TaskSpec, load_backbone
from simclip import backbone as backbone_module
from simclip.backbone import BackboneInfo, get_backbone_id, is_quick_gelu_weights_file
from simclip.checkpoint import load_checkpoint, make_metadata, save_checkpoint


@pytest.fixture
def stub_weights(monkeypatch):
    """Tagged weights "download" and "load" without touching the network or the disk: the model
    keeps its random init, everything else (config, activation, preprocessing) is open_clip's."""
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, cache_dir=None: "stub.bin")
    monkeypatch.setattr(open_clip.factory, "load_checkpoint", lambda *args, **kwargs: None)
    monkeypatch.setattr(backbone_module, "_is_cached", lambda cfg, cache_dir: True)


def _activations(model):
    """The set of activation module types in a CLIP's towers."""
    return {type(m) for m in model.modules() if isinstance(m, (torch.nn.GELU, QuickGELU))}


@pytest.mark.parametrize("arch", ["ViT-B-32", "ViT-L-14-336"])
def test_openai_weights_are_built_with_quick_gelu_everywhere(stub_weights, arch):
    bb = load_backbone(arch, "openai", device="cpu")
    assert _activations(bb.model) == {QuickGELU}  # not one nn.GELU left in either tower
    assert bb.info.activation == "quick_gelu"
    assert bb.info.id == f"{arch}/openai/quickgelu" == get_backbone_id(arch, "openai")


def test_a_laion_tag_keeps_gelu(stub_weights):
    bb = load_backbone("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    assert _activations(bb.model) == {torch.nn.GELU}
    assert bb.info.activation == "gelu"
    assert bb.info.id == "ViT-B-32/laion2b_s34b_b79k" == get_backbone_id("ViT-B-32", "laion2b_s34b_b79k")


def test_the_quick_gelu_flag_overrides_the_weights_decision(stub_weights):
    with pytest.warns(UserWarning, match=r"QuickGELU mismatch .* tag 'openai'"):  # open_clip's own
        assert load_backbone("ViT-B-32", "openai", device="cpu", quick_gelu=False).info.activation == "gelu"
    tiny = load_backbone("simclip-tiny", "none", device="cpu", quick_gelu=True)
    assert _activations(tiny.model) == {QuickGELU}
    assert tiny.info.id == "simclip-tiny/random/quickgelu"


@pytest.fixture
def tiny_weights_file(tmp_path):
    torch.manual_seed(7)
    path = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("simclip-tiny").state_dict(), path)
    return path


def test_a_local_file_of_openai_weights_is_recognised_by_its_sha256(tiny_weights_file, monkeypatch):
    assert not is_quick_gelu_weights_file(tiny_weights_file)
    assert load_backbone("simclip-tiny", str(tiny_weights_file), device="cpu").info.activation == "gelu"
    digest = backbone_module.sha256_file(tiny_weights_file)
    monkeypatch.setattr(backbone_module, "_list_quick_gelu_weights", lambda: ({digest}, set()))
    bb = load_backbone("simclip-tiny", str(tiny_weights_file), device="cpu")
    assert bb.info.activation == "quick_gelu" and bb.info.id.endswith("/quickgelu")
    assert get_backbone_id("simclip-tiny", str(tiny_weights_file)) == bb.info.id


def test_openai_sha256s_come_from_open_clips_registry():
    digests, repos = backbone_module._list_quick_gelu_weights()
    # ViT-L-14-336px.pt as OpenAI published it, and its Hugging Face copy
    assert "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02" in digests
    assert "timm--vit_large_patch14_clip_336.openai" in repos


def test_a_file_in_the_hugging_face_cache_of_an_openai_repo_is_recognised(tmp_path):
    snapshot = tmp_path / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"not really weights")
    assert is_quick_gelu_weights_file(snapshot / "open_clip_model.safetensors")
    other = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / "abc"
    other.mkdir(parents=True)
    (other / "open_clip_model.safetensors").write_bytes(b"not really weights")
    assert not is_quick_gelu_weights_file(other / "open_clip_model.safetensors")


def _legacy_checkpoint(path, model="ViT-L-14-336", pretrained="openai", dim=768):
    """A head as simclip 0.1 saved it: no activation in its backbone record."""
    head = SimCLIPHead(HeadConfig(embed_dim=dim, tasks=[TaskSpec("harmful", "multiclass",
                                                                  ["not harmful", "harmful"])]))
    meta = make_metadata(head.config, BackboneInfo(model, pretrained, dim), [
        {"category": "harmful", "task": "harmful", "labels": ["harmful"], "threshold": 0.5}])
    del meta["backbone"]["activation"]
    return save_checkpoint(path, head, meta)


def test_a_head_trained_on_the_gelu_build_of_openai_weights_is_refused_with_what_to_do(tmp_path):
    path = _legacy_checkpoint(tmp_path / "old.safetensors")
    now = BackboneInfo("ViT-L-14-336", "openai", 768, "quick_gelu")
    with pytest.raises(CheckpointError, match=r"built with gelu, but the backbone is now built with "
                                              r"quick_gelu .*simclip 0\.1 built it with GELU.*retrain it"):
        load_checkpoint(path, now)


def test_a_legacy_head_on_a_gelu_backbone_still_loads(tmp_path):
    path = _legacy_checkpoint(tmp_path / "laion.safetensors", "ViT-B-32", "laion2b_s34b_b79k", 512)
    head, meta = load_checkpoint(path, BackboneInfo("ViT-B-32", "laion2b_s34b_b79k", 512, "gelu"))
    assert head.config.embed_dim == 512


def test_embedding_caches_of_the_gelu_build_are_never_reused():
    from simclip_train.embed import get_cache_path

    old = get_cache_path("cache", "harmeme-c", "ViT-L-14-336/openai", "dataset", "train")
    new = get_cache_path("cache", "harmeme-c", get_backbone_id("ViT-L-14-336", "openai"), "dataset", "train")
    assert old != new and "quickgelu" in str(new)


def test_our_embeddings_equal_open_clips_own_encoders_to_1e_5(tiny_backbone):
    """Known answer for the embedding path: preprocessing, tokenization and dtype can't drift."""
    image = Image.new("RGB", (320, 200), (240, 240, 240))
    ImageDraw.Draw(image).text((20, 80), "WHEN THE MEME IS HARMFUL", fill=(0, 0, 0))
    caption = "when the meme is harmful"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(backbone_module.RANDOM_INIT_SEED)
        ref_model, _, ref_preprocess = open_clip.create_model_and_transforms("simclip-tiny")
    ref_model.eval()
    tokenizer = open_clip.get_tokenizer("simclip-tiny")
    with torch.no_grad():
        want_img = ref_model.encode_image(ref_preprocess(image).unsqueeze(0), normalize=True)
        want_txt = ref_model.encode_text(tokenizer([caption]), normalize=True)
    torch.testing.assert_close(tiny_backbone.encode_images([image]), want_img, rtol=0, atol=1e-5)
    torch.testing.assert_close(tiny_backbone.encode_texts([caption]), want_txt, rtol=0, atol=1e-5)
    assert tiny_backbone.encode_images([image]).dtype == torch.float32
