"""Typed configs of the training side: where embeddings come from (`EmbedConfig`) and how a head
is trained (`TrainConfig`). The command line builds them (`embed_config_from_args`,
`train_config_from_args`); `evaluate --seeds` and `quickstart` build them directly.

Every default lives here once; the argparse options take their defaults from these fields, and
the head sizes from `simclip.HeadConfig` (the authors' values).
"""

from dataclasses import asdict, dataclass, field, fields

from simclip import ClassifierOptions, HeadConfig

TEXT_SOURCES = ("dataset", "ocr")  # caption source: the dataset's transcription, or our OCR
# Where the warning thresholds are tuned: on validation embeddings of the training text ('same'),
# or of one source ('ocr': what the server sees, so the thresholds fit served scores).
THRESHOLD_TEXTS = ("same", *TEXT_SOURCES)

# The authors' augmentation (their code: torchvision RandAugment, 6 operations at magnitude 9,
# on every training image at every step). Cached views use the same recipe; it is part of the
# cache identity (embed.get_augment_recipe), so views made another way are recomputed.
RANDAUGMENT = {"num_ops": 6, "magnitude": 9}
# Views per training image we recommend, and quickstart caches: with early stopping a head
# trains for about 10 to 20 epochs; drawing one of 8 views + the original per epoch, a meme is
# seen in about 6 (10 epochs) to 8 (20 epochs) different versions, close to the authors' fresh
# view at every step, while the image encoder runs 9x, not once per step.
RECOMMENDED_AUGMENT = 8


@dataclass
class EmbedConfig(ClassifierOptions):
    """The frozen encoders' side: caption source and the embedding cache, plus the backbone and
    OCR options every command shares (`simclip.options.ClassifierOptions`: model, pretrained,
    precision, device, ocr, weights_cache_dir, quick_gelu; `calibration` is unused here)."""

    data_dir: str = ""  # folder holding one sub-folder per dataset (docs/reproduce.md)
    cache_dir: str | None = None  # embedding cache; None: DATA_DIR/embeddings
    text: str = "dataset"  # 'dataset' (the transcription, as the paper) or 'ocr' (as served)
    augment: int = 0  # RandAugment views cached per training image
    batch_size: int = 32  # encoder batch size (images per forward pass)
    shard_size: int = 256  # memes per resumable cache shard

    def __post_init__(self):
        if self.text not in TEXT_SOURCES:
            raise ValueError(f"unknown text source {self.text!r}; available: {', '.join(TEXT_SOURCES)}")
        if self.augment < 0 or self.batch_size < 1 or self.shard_size < 1:
            raise ValueError("augment must be >= 0, batch_size and shard_size >= 1")


@dataclass
class TrainConfig:
    """One training run of a SimCLIP head (defaults: arXiv 2409.05772 and the authors' code)."""

    datasets: list[str] = field(default_factory=list)  # NAME[:setting], one or more
    embed: EmbedConfig = field(default_factory=EmbedConfig)  # where the embeddings come from
    seed: int = 0  # head init, batch order and augmentation views
    epochs: int = 30  # maximum epochs
    patience: int = 5  # stop after this many epochs without a better validation score
    train_batch_size: int = 64  # head training batch size
    lr: float = 1e-4  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    warmup: float = 0.1  # fraction of all steps with a linear learning-rate warm-up
    proj_dim: int = HeadConfig.proj_dim  # siamese projection size
    hidden_dim: int = HeadConfig.hidden_dim  # task MLP width
    depth: int = HeadConfig.depth  # task MLP blocks
    dropout: float = HeadConfig.dropout  # dropout
    # text source of the validation embeddings the warning thresholds are tuned on (THRESHOLD_TEXTS)
    threshold_text: str = "same"

    def __post_init__(self):
        if self.threshold_text not in THRESHOLD_TEXTS:
            raise ValueError(f"unknown threshold text {self.threshold_text!r}; available: "
                             f"{', '.join(THRESHOLD_TEXTS)}")
        if isinstance(self.embed, dict):
            self.embed = EmbedConfig(**self.embed)
        if isinstance(self.datasets, str):
            self.datasets = [self.datasets]
        if not self.datasets:
            raise ValueError("a training run needs at least one dataset")
        if self.epochs < 1 or self.patience < 1 or self.train_batch_size < 1:
            raise ValueError("epochs, patience and train_batch_size must be >= 1")
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(f"warmup {self.warmup!r} is a fraction of the steps, in [0, 1]")

    def to_dict(self):
        """Plain JSON-able dict; `TrainConfig(**d)` rebuilds it."""
        return asdict(self)


def _kwargs_from_args(cls, args):
    """The fields of dataclass `cls` that the argparse namespace `args` sets."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}


def embed_config_from_args(args):
    """An EmbedConfig from parsed `add_cache_args` + `add_backbone_args` options."""
    return EmbedConfig(**_kwargs_from_args(EmbedConfig, args))


def train_config_from_args(args, datasets=None):
    """A TrainConfig from parsed `add_train_args` + cache + backbone options; the datasets are
    `datasets`, else the repeatable `--dataset` option."""
    kwargs = {k: v for k, v in _kwargs_from_args(TrainConfig, args).items()
              if k not in ("embed", "datasets")}
    return TrainConfig(datasets=list(datasets or args.dataset), embed=embed_config_from_args(args),
                       **kwargs)
