"""The frozen CLIP encoders, through open_clip (the only module that imports it).

Weights are resolved by (architecture, pretrained tag), as open_clip does: a known tag is
downloaded on first use into the Hugging Face cache (with a progress bar) and reused after that;
a local file path loads that checkpoint; `None` builds seeded random weights, which is what the
tiny test architecture uses. The preprocessing travels with the weights: we use the transform
open_clip returns and never hard-code CLIP's mean and std.

open_clip: https://github.com/mlfoundations/open_clip
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from PIL import Image

from .constants import DEFAULT_MODEL, DEFAULT_PRETRAINED, RANDOM_INIT_SEED
from .errors import BackboneUnavailableError
from .fileutil import sha256_file

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS = ("none", "random")  # the --pretrained values that build seeded random weights

open_clip.add_model_config(Path(__file__).parent / "model_configs")


def list_backbones() -> list[str]:
    """Every architecture name open_clip knows (e.g. 'ViT-L-14-336'), our 'simclip-tiny' included."""
    return open_clip.list_models()


def get_default_pretrained(model: str | os.PathLike[str]) -> str:
    """The weights tag used when none is given: 'openai' where it exists, else the first tag.

    Raises:
        ValueError: `model` is an architecture with no published weights (e.g. 'simclip-tiny'):
            random weights are only ever built when asked for by name (`pretrained='none'`).
    """
    tags = open_clip.list_pretrained_tags_by_model(model) if model in open_clip.list_models() else []
    if DEFAULT_PRETRAINED in tags:
        return DEFAULT_PRETRAINED
    if tags:
        return tags[0]
    raise ValueError(f"{model!r} has no published weights: pass --pretrained none for seeded "
                     f"random weights (tests, demos: its verdicts mean nothing) or "
                     f"--pretrained PATH for a weights file")


def resolve_weights(model: str | os.PathLike[str] | None = None,
                    pretrained: str | os.PathLike[str] | None = None) -> tuple[str, str | None]:
    """(model, pretrained) with the defaults filled in, the one place they are decided.

    `model` None is DEFAULT_MODEL; `pretrained` None is the model's default tag ('openai' for
    the paper's ViT-L-14-336, see `get_default_pretrained`); a local model directory keeps None
    (its weights are inside). Random weights only come from an explicit 'none' (or 'random'),
    returned as 'none'.

    Raises:
        ValueError: an architecture with no published weights and no `pretrained` given.
    """
    model = str(model or DEFAULT_MODEL)
    if pretrained in (None, "") and not os.path.isdir(model) and model in open_clip.list_models():
        pretrained = get_default_pretrained(model)
    if pretrained in RANDOM_WEIGHTS:
        pretrained = "none"
    return model, None if pretrained in (None, "") else str(pretrained)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Pick the device: the one asked for, else CUDA, then MPS, then CPU.

    `None`, '' and 'auto' pick automatically; anything else goes to `torch.device`, which
    raises RuntimeError for a malformed name.
    """
    if device not in (None, "", "auto"):
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


INT8 = "int8"  # weights int8 per output channel, activations quantized on the fly, the rest fp32
# precision -> the dtype activations run in (the same names as simclip.options.PRECISIONS)
DTYPES = {"int8": torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def is_int8_available() -> bool:
    """True when this torch build runs int8 dynamic quantization on the CPU: it has
    `torch.ao.quantization.quantize_dynamic` and a kernel engine (fbgemm/x86 on Intel and AMD,
    qnnpack on ARM)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return any(engine != "none" for engine in torch.backends.quantized.supported_engines)


def get_precision(precision: str | None = None, device: str | torch.device | None = None) -> str:
    """The precision `load_backbone(device=device, precision=precision)` runs the encoders in.

    None picks per device: 'fp16' on CUDA, 'int8' on a CPU (dynamic quantization of the towers'
    Linear layers, `quantize_int8`; 'fp32' where torch has no int8 kernels), 'fp32' on MPS.

    Raises:
        ValueError: a precision not in DTYPES, or 'int8' on a device other than the CPU
            (torch's int8 dynamic kernels are CPU kernels).
    """
    dev = get_device(device)
    if precision is None:
        if dev.type == "cuda":
            return "fp16"
        return INT8 if dev.type == "cpu" and is_int8_available() else "fp32"
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}; available: {', '.join(DTYPES)}")
    if precision == INT8 and dev.type != "cpu":
        raise ValueError(f"int8 runs on the CPU only, not on {dev.type}: use --precision fp16 "
                         f"(or bf16, fp32) there, or --device cpu")
    if precision == INT8 and not is_int8_available():
        raise ValueError("this torch build has no int8 CPU kernels (torch.backends.quantized."
                         "supported_engines is empty): use --precision fp32")
    return precision


class _SelfAttention(torch.nn.Module):
    """Self-attention with nn.MultiheadAttention's weights and its eval results (within float
    rounding), its input and output projections as nn.Linear so that dynamic quantization reaches
    them: `quantize_dynamic` leaves MHA's packed `in_proj_weight` and its `out_proj` (a
    NonDynamicallyQuantizableLinear) in float, a third of a ViT block's matmul work."""

    def __init__(self, mha: torch.nn.MultiheadAttention) -> None:
        super().__init__()
        dim = mha.embed_dim
        self.num_heads, self.batch_first = mha.num_heads, mha.batch_first
        self.in_proj = torch.nn.Linear(dim, 3 * dim, bias=mha.in_proj_bias is not None)
        self.in_proj.weight = mha.in_proj_weight
        if mha.in_proj_bias is not None:
            self.in_proj.bias = mha.in_proj_bias
        self.out_proj = torch.nn.Linear(dim, dim, bias=mha.out_proj.bias is not None)
        self.out_proj.weight, self.out_proj.bias = mha.out_proj.weight, mha.out_proj.bias

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                need_weights: bool = False,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """MHA's call for q is k is v: (B, N, D) batch first (else (N, B, D)) -> (same, None)."""
        x = q if self.batch_first else q.transpose(0, 1)
        B, N, D = x.shape
        qkv = self.in_proj(x).view(B, N, 3, self.num_heads, D // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, heads, N, head_dim)
        y = torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2],
                                                             attn_mask=attn_mask)
        y = self.out_proj(y.transpose(1, 2).reshape(B, N, D))  # (B, N, D)
        return (y if self.batch_first else y.transpose(0, 1)), None


def quantize_int8(clip: torch.nn.Module, attention: bool = True) -> torch.nn.Module:
    """Quantize a float32 CPU CLIP in place for inference: every nn.Linear of both towers (the
    MLPs and, through `_SelfAttention`, the attention projections) gets int8 weights, one scale
    per output channel, and quantizes its input on the fly (torch's dynamic quantization,
    `torch.ao.quantization.quantize_dynamic`). Embeddings, norms, the softmax and the final
    projections stay fp32. `attention=False` leaves the attention in float, as
    `quantize_dynamic` alone does (slower: bench/precision_bench.py --mlp-only). Returns `clip`.

    Measured on ViT-L-14-336 (docs/bench.md, random weights, 2 AVX2 cores): 1.6-1.8x faster per
    picture than fp32 (1.2-1.3x with the MLPs alone), embeddings at cosine 0.9997 (images) and
    0.9988 (texts) to fp32; the tested bounds are in tests/test_precision.py.
    """
    from open_clip.transformer import ResidualAttentionBlock

    for block in clip.modules() if attention else ():
        attn = getattr(block, "attn", None)
        if isinstance(block, ResidualAttentionBlock) and not hasattr(block, "ln_1_kv") \
                and isinstance(attn, torch.nn.MultiheadAttention) and attn._qkv_same_embed_dim:
            block.attn = _SelfAttention(attn)
    with warnings.catch_warnings():
        # torch >= 2.10 marks torch.ao.quantization deprecated for torchao, whose CPU int8 path
        # needs torch.compile to be fast; these eager fbgemm/qnnpack kernels still ship and are
        # what docs/bench.md measures. Both warnings are torch's own, raised while quantizing.
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor, torch.quantize_per_channel",
                                UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(clip, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                         inplace=True)
    for block in clip.modules():
        fc = getattr(getattr(block, "mlp", None), "c_fc", None)
        if fc is not None and not isinstance(fc, torch.nn.Linear):
            fc.int8_original_dtype = torch.float32  # open_clip reads the towers' dtype here
    return clip


# ---- the weights download ----------------------------------------------------------------
# Tagged weights live on the Hugging Face hub (open_clip's registry names the repo). We fetch
# the file ourselves into the hub's own cache layout, because huggingface_hub 2.x writes each
# download to a process-unique temporary file it deletes on failure (no resume after a restart)
# and does not check the file's sha256. The hub's client does the rest: the endpoint
# ($HF_ENDPOINT), the metadata HEAD, the session (proxies, token), the cache's pointers.

WEIGHTS_STALL_S = 30.0  # no byte received for this long: the transfer is stalled, retried
WEIGHTS_RETRIES = 4  # retries of a stalled or cut transfer, or a 5xx/429 answer
WEIGHTS_BACKOFF_S = 1.0  # the first retry waits this long, doubling each time
WEIGHTS_CHUNK = 1 << 20  # bytes between two progress reports
WEIGHTS_DISK_MARGIN = 100 * 2 ** 20  # kept free beyond the file itself
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"  # open_clip's default file in a hub repo
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"  # ... and the one it prefers

ProgressFn = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)


def _hf_is_offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_endpoint():
    """The hub the weights come from: $HF_ENDPOINT (a mirror) or huggingface.co."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def _can_reach(host, port=443, timeout=3.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _weights_filenames(filename):
    """The files open_clip tries in a hub repo for an `hf_hub` entry's filename, in its order
    (`open_clip.pretrained.download_pretrained_from_hf`: the safetensors file first)."""
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _cached_path(pretrained_cfg, cache_dir):
    """The cached weights file a pretrained tag points at, or None."""
    hub = pretrained_cfg.get("hf_hub", "")
    if not hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename = os.path.split(hub)
    for name in _weights_filenames(filename):
        path = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
        if isinstance(path, str):
            return path
    return None


def _is_cached(pretrained_cfg, cache_dir):
    """True if the weights a pretrained tag points at are already on disk."""
    return _cached_path(pretrained_cfg, cache_dir) is not None


def _check_downloadable(model, pretrained, cache_dir, progress=None):
    """load_backbone's weights step: `download_weights` (fails at once, with what to do, when
    tagged weights are neither cached nor reachable)."""
    download_weights(model, pretrained, cache_dir, progress)


def _progress_bar(desc):
    """A ProgressFn drawing a tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = None

    def report(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=desc, disable=None)
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return report


def _http():
    """The HTTP library of huggingface_hub's session (httpx2 from huggingface_hub 2.0 on)."""
    try:
        import httpx2 as http
    except ImportError:  # huggingface_hub 1.x
        import httpx as http
    return http


class _Retry(Exception):
    """A transfer to try again: cut short, or an answer that may be transient."""


def _check_disk(folder, need, label):
    """InsufficientDiskError when `folder`'s filesystem has less than `need` bytes free."""
    from .errors import InsufficientDiskError

    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise InsufficientDiskError(
            f"the CLIP weights {label} need {need / 1e9:.2f} GB ({need} bytes) free in {folder}, "
            f"only {free / 1e9:.2f} GB are: free some space there, or put the weights on a larger "
            f"disk (--weights-cache-dir DIR or HF_HOME)", needed=need, free=free, folder=str(folder))


def _transfer(url, headers, part, size, report, stall_s):
    """One GET of `url` into `part`, continuing its bytes with a Range request. Returns when
    `part` holds `size` bytes; _Retry when cut short or on a 408/429/5xx answer."""
    from huggingface_hub import get_session, hf_raise_for_status

    http = _http()
    have = part.stat().st_size if part.exists() else 0
    if have > size:  # not this file's bytes
        part.unlink()
        have = 0
    if have == size:
        return
    headers = {**headers, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with get_session().stream("GET", url, headers=headers, timeout=http.Timeout(stall_s)) as r:
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise _Retry(f"the server answered {r.status_code}")
        hf_raise_for_status(r)
        if have and (r.status_code != 206 or not r.headers.get("Content-Range", "")
                     .startswith(f"bytes {have}-")):
            have = 0  # the server sent the whole file: start over
        with open(part, "r+b" if have else "wb") as f:
            f.seek(have)
            f.truncate()
            reported = have
            for chunk in r.iter_bytes():  # as they arrive: a cut keeps every byte received
                f.write(chunk)
                have += len(chunk)
                if have - reported >= WEIGHTS_CHUNK or have == size:
                    f.flush()
                    report(have, size)
                    reported = have
    if have != size:
        raise _Retry(f"the transfer ended at {have} of {size} bytes")


def _fetch(repo_id, names, cache_dir, report, stall_s, label):
    """One try: the file's metadata (HEAD), then its bytes into the hub cache's blob, verified.
    Returns the snapshot path; _Retry or the HTTP library's transport errors to try again."""
    from filelock import FileLock
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import build_hf_headers

    from .errors import WeightsDownloadError

    meta = name = None
    for name in names:
        try:
            meta = get_hf_file_metadata(hf_hub_url(repo_id, name), timeout=stall_s)
            break
        except GatedRepoError as e:
            raise BackboneUnavailableError(
                f"{repo_id} is gated on {_hub_endpoint()}: accept its terms there and log in "
                f"(`hf auth login`, or set HF_TOKEN), then start again. ({e})") from e
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status in (408, 429) or (status or 0) >= 500:
                raise _Retry(f"the hub answered {status}") from e
            if status != 404:
                raise BackboneUnavailableError(f"the hub refused {label}: {e}") from e
    if meta is None:
        raise BackboneUnavailableError(f"{_hub_endpoint()}/{repo_id} has none of {names}: is "
                                       f"HF_ENDPOINT a mirror of it?")
    if not meta.etag or not meta.commit_hash or meta.size is None:
        raise WeightsDownloadError(
            f"{meta.location} did not answer as a Hugging Face hub does (an ETag, X-Repo-Commit "
            f"and the size are needed): check HF_ENDPOINT ({_hub_endpoint()})")
    size = meta.size
    storage = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id,
                                                                          repo_type="model")
    blob = storage / "blobs" / meta.etag
    if not blob.exists():
        part = blob.with_name(blob.name + ".incomplete")  # kept across restarts, resumed
        lock = storage.parent / ".locks" / storage.name / f"{meta.etag}.lock"  # the hub's own
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            if not blob.exists():
                have = part.stat().st_size if part.exists() else 0
                report(min(have, size), size)
                _check_disk(storage, max(size - have, 0) + WEIGHTS_DISK_MARGIN, label)
                blob.parent.mkdir(parents=True, exist_ok=True)
                headers = build_hf_headers()
                if urllib.parse.urlsplit(meta.location).netloc != \
                        urllib.parse.urlsplit(_hub_endpoint()).netloc:
                    headers.pop("authorization", None)  # a signed CDN address: no token there
                _transfer(meta.location, headers, part, size, report, stall_s)
                _verify(part, size, meta.etag, label)
                part.replace(blob)
    report(size, size)
    # The verified blob is in place: the hub links it into the snapshot (no transfer).
    return hf_hub_download(repo_id, name, cache_dir=cache_dir)


def _verify(part, size, etag, label):
    """The file received is the one announced: its size, and its sha256 when the hub's ETag is
    one (the LFS files weights are); else WeightsDownloadError and the bytes are deleted."""
    from .errors import WeightsDownloadError

    got = part.stat().st_size
    digest = sha256_file(part) if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) \
        else None
    if got != size or (digest is not None and digest != etag):
        part.unlink()
        what = f"{got} bytes, expected {size}" if got != size else \
            f"sha256 {digest}, expected {etag}"
        raise WeightsDownloadError(
            f"the CLIP weights {label} received are not the published file ({what}); they were "
            f"deleted: start again to fetch them anew, and if it repeats check HF_ENDPOINT "
            f"({_hub_endpoint()}) or your proxy")


def download_weights(model: str | os.PathLike[str] | None = None,
                     pretrained: str | os.PathLike[str] | None = None,
                     cache_dir: str | os.PathLike[str] | None = None,
                     progress: ProgressFn | None = None, *, stall_s: float | None = None,
                     retries: int | None = None, backoff_s: float | None = None) -> str | None:
    """Make sure the weights file of a pretrained tag is in the Hugging Face cache, downloading
    it if needed (what `load_backbone` does first). The file is the one open_clip's registry
    names (`open_clip.get_pretrained_cfg(model, pretrained)["hf_hub"]`), from $HF_ENDPOINT
    (default huggingface.co), into `cache_dir` (default: the hub cache, $HF_HOME/hub).

    The download
      * checks the free disk space first (the file's size, from the hub's HEAD, plus 100 MB);
      * resumes: the bytes go to `blobs/<etag>.incomplete` in the cache, kept after a cut, a
        failure or a restart and continued with an HTTP Range request;
      * detects a stall from the byte count (no byte for `stall_s` seconds) and retries it, as
        a cut connection or a 408/429/5xx answer, `retries` times after `backoff_s` seconds,
        doubling each time;
      * verifies the size and the sha256 the hub announces (the ETag of an LFS file) before the
        file enters the cache; a file that fails is deleted, never cached.
    Only one process downloads a file at a time (the hub's lock file); others wait for it.

    Args:
        model, pretrained: as `load_backbone` (None: the defaults, `resolve_weights`).
        cache_dir: the hub cache folder to use, as `load_backbone`'s.
        progress: called as progress(done, total) in bytes: once with the bytes already there
            before the first byte is fetched, after every MiB, and with done == total at the
            end (also when the file was cached). None draws a progress bar on a terminal.
        stall_s, retries, backoff_s: default WEIGHTS_STALL_S, WEIGHTS_RETRIES,
            WEIGHTS_BACKOFF_S.

    Returns:
        The cached file's path; None when there is nothing to download: random weights, a
        local file or directory, or a tag open_clip fetches from its own URL (no `hf_hub`).

    Raises:
        BackboneUnavailableError: an unknown tag (naming the known ones); not cached while
            offline (HF_HUB_OFFLINE) or with the hub unreachable, saying what to do; a gated or
            missing repository.
        InsufficientDiskError: not enough free space (`needed` bytes in `folder`).
        WeightsDownloadError: still failing after the retries, or the file received is not the
            published one (size, sha256).
    """
    model, pretrained = resolve_weights(model, pretrained)
    if pretrained in (None, "none") or os.path.isdir(model) or os.path.isfile(pretrained):
        return None
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise BackboneUnavailableError(
            f"pretrained weights {pretrained!r} are not a file and not a known tag for {model!r}. "
            f"Known tags: {tags or 'none (use --pretrained none for random weights)'}"
        )
    label = f"{model}/{pretrained}"
    report = progress or _progress_bar(f"CLIP weights {label}")
    if _is_cached(cfg, cache_dir):
        path = _cached_path(cfg, cache_dir)
        if path is not None:
            size = os.path.getsize(path)
            report(size, size)
        return path
    if not cfg.get("hf_hub"):
        return None  # open_clip downloads it from cfg["url"] itself
    cache_dir = None if cache_dir is None else str(cache_dir)
    where = cache_dir or os.environ.get("HF_HOME", "~/.cache/huggingface")
    hint = (
        f"Connect to the internet once so {label} can be downloaded into {where}, "
        f"or copy the weights file here and pass its path with --pretrained PATH."
    )
    offline = BackboneUnavailableError(
        f"CLIP weights {label} are not cached and HF_HUB_OFFLINE is set. {hint}")
    if _hf_is_offline():
        raise offline
    endpoint = urllib.parse.urlsplit(_hub_endpoint())
    host = endpoint.hostname or "huggingface.co"
    if not _can_reach(host, port=endpoint.port or (80 if endpoint.scheme == "http" else 443)):
        raise BackboneUnavailableError(
            f"CLIP weights {label} are not cached and {host} cannot be reached. {hint} "
            f"(A mirror of the hub: set HF_ENDPOINT.)"
        )
    logger.info("downloading the CLIP weights %s (first use only)", label)
    repo_id, filename = os.path.split(cfg["hf_hub"])
    stall_s = WEIGHTS_STALL_S if stall_s is None else stall_s
    retries = WEIGHTS_RETRIES if retries is None else retries
    delay = WEIGHTS_BACKOFF_S if backoff_s is None else backoff_s
    http = _http()
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    from .errors import WeightsDownloadError

    for attempt in range(retries + 1):
        try:
            return _fetch(repo_id, _weights_filenames(filename), cache_dir, report, stall_s, label)
        except OfflineModeIsEnabled as e:  # HF_HUB_OFFLINE as huggingface_hub read it at import
            raise offline from e
        except HfHubHTTPError as e:  # an answer not worth retrying (403 from a CDN, 416...)
            raise WeightsDownloadError(f"could not download the CLIP weights {label}: {e}") from e
        except (_Retry, http.TransportError) as e:
            if attempt == retries:
                raise WeightsDownloadError(
                    f"could not download the CLIP weights {label} from {_hub_endpoint()} after "
                    f"{retries + 1} tries ({type(e).__name__}: {e}); the bytes received are "
                    f"kept: start again to continue") from e
            logger.warning("downloading %s: %s: %s (try %d of %d); retrying in %.1f s", label,
                           type(e).__name__, e, attempt + 1, retries + 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


GELU = "gelu"
QUICK_GELU = "quick_gelu"  # x * sigmoid(1.702 x): the activation OpenAI trained CLIP with


@dataclass
class BackboneInfo:
    """What identifies a backbone: a head trained on one must not be used on another."""

    model: str  # open_clip architecture name
    pretrained: str  # tag, 'file:<sha256 prefix>', 'local-dir' or 'random'
    embed_dim: int  # dimension of the projected, L2-normalized embeddings
    activation: str = GELU  # the towers' MLP activation: 'gelu' or 'quick_gelu'
    # the encoders' precision (a DTYPES key), None where unknown; not part of `id`: embeddings of
    # one precision are within rounding of another's, so a head made at one serves at another
    precision: str | None = None

    @property
    def random_weights(self) -> bool:
        """True for seeded random weights (`pretrained='none'`): embeddings, and every head or
        calibration made on them, mean nothing outside tests and demos."""
        return self.pretrained == "random"

    @property
    def id(self) -> str:
        """One string naming the backbone: 'ViT-L-14-336/openai/quickgelu' for a QuickGELU build
        (OpenAI's weights), 'ViT-B-32/laion2b_s34b_b79k' for a GELU one. The same weights built
        with the other activation give other embeddings, so the activation is part of the id
        (and of every embedding cache path and checkpoint made with it)."""
        base = f"{self.model}/{self.pretrained}"
        if self.activation == QUICK_GELU and not self.model.endswith("-quickgelu"):
            return f"{base}/quickgelu"
        return base


class Backbone:
    """Frozen CLIP image and text towers with their preprocessing and tokenizer (open_clip).

    Built by `load_backbone`. Encoders run on `device` in `dtype` under no_grad and return
    L2-normalized float32 CPU tensors (B, D), D = `embed_dim`. At `info.precision` 'int8' the
    towers' Linear layers are quantized (`quantize_int8`), `dtype` is float32 between them, and
    each item is encoded alone so that its result does not depend on its batch.
    """

    def __init__(self, model: open_clip.CLIP | open_clip.CustomTextCLIP,
                 preprocess: Callable[[Image.Image], torch.Tensor],
                 tokenizer: Callable[[list[str]], torch.Tensor], info: BackboneInfo,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.info = info
        self.device = device
        self.dtype = dtype

    @property
    def embed_dim(self) -> int:
        """Dimension of the embeddings the encoders return."""
        return self.info.embed_dim

    @property
    def image_size(self) -> int:
        """Input side in pixels, from the model's own preprocessing config."""
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else size

    def preprocess_images(self, images: Iterable[Image.Image]) -> torch.Tensor:
        """PIL images -> one float32 batch (B, 3, H, W) on the CPU, H = W = `image_size` pixels.

        Resized, cropped and normalized by the transform open_clip ships with the weights.
        RuntimeError for an empty batch (torch.stack of nothing).
        """
        return torch.stack([self.preprocess(im) for im in images])

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels (B, 3, H, W) -> L2-normalized float32 CPU embeddings (B, D)."""
        x = pixels.to(self.device, dtype=self.dtype, non_blocking=True)
        return self._encode(self.model.encode_image, x)

    @torch.no_grad()
    def encode_images(self, images: Iterable[Image.Image]) -> torch.Tensor:
        """PIL images (RGB, any size) -> L2-normalized float32 CPU embeddings (B, D)."""
        return self.encode_pixels(self.preprocess_images(images))

    @torch.no_grad()
    def encode_texts(self, texts: Iterable[str]) -> torch.Tensor:
        """Strings -> L2-normalized float32 CPU embeddings (B, D).

        Texts longer than the tokenizer's context (77 tokens for OpenAI CLIP) are truncated.
        """
        tokens = self.tokenizer(list(texts)).to(self.device)  # (B, context_length)
        return self._encode(self.model.encode_text, tokens)

    def _encode(self, encode: Callable[..., torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """encode(x) as L2-normalized float32 CPU embeddings (B, D). At int8 one item at a time:
        dynamic quantization gives each call's activations one scale, so in a batch a picture's
        embedding would depend on the pictures beside it (by ~1e-3); alone it is the same in any
        batch, as the result cache assumes. Costs little: a ViT's matmuls are large already."""
        if self.info.precision != INT8 or len(x) < 2:
            return encode(x, normalize=True).float().cpu()
        return torch.cat([encode(x[i:i + 1], normalize=True) for i in range(len(x))]).float().cpu()


def _list_quick_gelu_weights():
    """(sha256s, Hugging Face repo ids) of every open_clip weights tag trained with QuickGELU.

    OpenAI's own files are named by their sha256 in open_clip's registry
    (openaipublic.azureedge.net/clip/models/<sha256>/ViT-L-14-336px.pt); the Hugging Face copies
    by their repo (timm/vit_large_patch14_clip_336.openai).
    """
    digests, repos = set(), set()
    for name, tag in open_clip.list_pretrained():
        cfg = open_clip.get_pretrained_cfg(name, tag)
        if not cfg.get("quick_gelu"):
            continue
        parts = cfg.get("url", "").split("/")
        digests.update(p for p in parts if len(p) == 64 and all(c in "0123456789abcdef" for c in p))
        if cfg.get("hf_hub"):
            repos.add(cfg["hf_hub"].strip("/").split("/")[0] + "--" +
                      cfg["hf_hub"].strip("/").split("/")[1])
    return digests, repos


def is_quick_gelu_weights_file(path: str | os.PathLike[str], digest: str | None = None) -> bool:
    """True when a local weights file is one that open_clip's registry says was trained with
    QuickGELU (OpenAI's CLIP): its sha256 is an OpenAI release's, or it sits in the Hugging Face
    cache folder of such a tag's repo. Other files (fine-tunes, renamed copies) can't be told
    apart by their bytes: pass `quick_gelu=True` (`--quick-gelu`) for those."""
    digests, repos = _list_quick_gelu_weights()
    if (digest or sha256_file(path)) in digests:
        return True
    resolved = str(Path(path).resolve()).replace("/", "--")
    return any(f"models--{repo}--" in resolved for repo in repos)


def _resolve(model, pretrained, quick_gelu=None):
    """(open_clip name, identity tag, weights to load or None, model id, force QuickGELU) for
    model/pretrained. `quick_gelu` None decides from the weights: a tag's own `quick_gelu`
    (open_clip's registry), or a local file recognised by `is_quick_gelu_weights_file`."""
    pretrained = None if pretrained in (None, "", *RANDOM_WEIGHTS) else str(pretrained)
    if os.path.isdir(str(model)):
        local_dir = Path(model)
        return f"local-dir:{local_dir.resolve()}", "local-dir", None, local_dir.name, bool(quick_gelu)
    if model not in open_clip.list_models():
        raise ValueError(
            f"unknown backbone {model!r}: not a directory and not an open_clip architecture. "
            f"Available: {', '.join(open_clip.list_models())}"
        )
    if pretrained is None:
        return model, "random", None, model, bool(quick_gelu)
    if os.path.isfile(pretrained):
        digest = sha256_file(pretrained)
        if quick_gelu is None:
            quick_gelu = is_quick_gelu_weights_file(pretrained, digest)
        return model, f"file:{digest[:16]}", pretrained, model, quick_gelu
    if quick_gelu is None:
        quick_gelu = bool((open_clip.get_pretrained_cfg(model, pretrained) or {}).get("quick_gelu"))
    return model, pretrained, pretrained, model, quick_gelu


def config_activation(name, force_quick_gelu):
    """The activation open_clip builds for architecture `name` (a local dir reads its config)."""
    if force_quick_gelu:
        return QUICK_GELU
    if name.startswith("local-dir:"):
        import json

        config = Path(name.removeprefix("local-dir:")) / "open_clip_config.json"
        cfg = json.loads(config.read_text()).get("model_cfg", {}) if config.is_file() else {}
    else:
        cfg = open_clip.get_model_config(name) or {}
    return QUICK_GELU if cfg.get("quick_gelu") else GELU


def get_activation(model: torch.nn.Module) -> str:
    """The MLP activation a built CLIP really uses: 'quick_gelu' if any QuickGELU module is in
    it, else 'gelu'. Read from the modules, so it is true whatever decided it."""
    from open_clip.transformer import QuickGELU

    return QUICK_GELU if any(isinstance(m, QuickGELU) for m in model.modules()) else GELU


def get_backbone_id(model: str | os.PathLike[str] | None = None,
                    pretrained: str | os.PathLike[str] | None = None,
                    quick_gelu: bool | None = None) -> str:
    """The id `load_backbone(model, pretrained, quick_gelu=...)` reports, without building it
    (e.g. 'ViT-L-14-336/openai/quickgelu')."""
    name, tag, _, model_id, force = _resolve(*resolve_weights(model, pretrained), quick_gelu)
    return BackboneInfo(model_id, tag, 0, config_activation(name, force)).id


def load_backbone(model: str | os.PathLike[str] | None = DEFAULT_MODEL,
                  pretrained: str | os.PathLike[str] | None = None,
                  device: str | torch.device | None = None, precision: str | None = None,
                  cache_dir: str | None = None, quick_gelu: bool | None = None,
                  weights_progress: ProgressFn | None = None) -> Backbone:
    """Build the frozen CLIP backbone with open_clip (github.com/mlfoundations/open_clip).

    Args:
        model: an open_clip architecture name (see `list_backbones()`), or a local directory
            holding `open_clip_config.json` and weights (loaded through open_clip's `local-dir:`).
            None: DEFAULT_MODEL.
        pretrained: a pretrained tag (e.g. 'openai'), a local weights file, 'none' for seeded
            random weights, or None for the model's default tag (`resolve_weights`).
        device: 'cuda', 'mps', 'cpu' (or a torch.device) or None for automatic (CUDA, then
            MPS, then CPU).
        precision: 'int8' (CPU only: `quantize_int8`), 'fp32' (the exact, unquantized path),
            'fp16' or 'bf16'; None picks per device (`get_precision`): fp16 on CUDA, int8 on a
            CPU, fp32 on MPS. `info.precision` records it.
        cache_dir: where downloaded weights go; None means the Hugging Face cache.
        quick_gelu: build the towers with QuickGELU, the activation OpenAI trained CLIP with.
            None decides from the weights: a tag's own setting in open_clip's registry
            (True for 'openai'), or, for a local file, whether it is a known OpenAI release
            (`is_quick_gelu_weights_file`). open_clip 3.x otherwise builds every
            non-'-quickgelu' architecture with GELU and only warns.
        weights_progress: called as weights_progress(done, total) in bytes while tagged
            weights are found in the cache or downloaded (`download_weights`); None draws a
            progress bar on a terminal.

    Returns:
        A `Backbone` in eval mode with every parameter frozen; `info.activation` says which
        activation it was built with, and `info.id` carries it.

    Raises:
        BackboneUnavailableError: weights missing and not downloadable, with what to do;
            InsufficientDiskError and WeightsDownloadError (its subclasses) from the download.
        ValueError: an unknown architecture, naming the known ones, or one with no published
            weights and no `pretrained`.
        ValueError: also for a precision not in DTYPES, or int8 off the CPU.
        RuntimeError: a malformed device name, or open_clip failing to build the model.
    """
    dev = get_device(device)
    precision = get_precision(precision, dev)
    dtype = DTYPES[precision]
    model, pretrained = resolve_weights(model, pretrained)
    name, tag, checkpoint, model_id, force_quick_gelu = _resolve(model, pretrained, quick_gelu)
    if tag not in ("local-dir", "random") and not tag.startswith("file:"):
        _check_downloadable(model, pretrained, cache_dir, weights_progress)

    # Random weights are seeded, so a head trained on a random test backbone in one process
    # still matches the backbone another process builds.
    rng = torch.random.fork_rng(devices=[]) if checkpoint is None else contextlib.nullcontext()
    try:
        with rng:
            if checkpoint is None:
                torch.manual_seed(RANDOM_INIT_SEED)
            clip, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=checkpoint, cache_dir=cache_dir,
                force_quick_gelu=force_quick_gelu,
            )
    except BackboneUnavailableError:
        raise
    except RuntimeError as e:
        if "download" in str(e).lower():
            raise BackboneUnavailableError(
                f"could not download CLIP weights {model}/{pretrained}: {e}"
            ) from e
        raise
    tokenizer = open_clip.get_tokenizer(name, cache_dir=cache_dir)

    clip.requires_grad_(False)
    clip.eval()
    clip.to(device=dev, dtype=dtype)
    if precision == INT8:
        quantize_int8(clip)
    embed_dim = int(clip.text_projection.shape[1]) if getattr(clip, "text_projection", None) \
        is not None and clip.text_projection.ndim == 2 else int(clip.visual.output_dim)
    info = BackboneInfo(model=model_id, pretrained=tag, embed_dim=embed_dim,
                        activation=get_activation(clip), precision=precision)
    logger.info("backbone %s on %s (%s)", info.id, dev, precision)
    return Backbone(clip, preprocess, tokenizer, info, dev, dtype)
