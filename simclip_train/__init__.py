"""simclip_train: the training side of SimCLIP, apart from the inference library (`simclip`).

As open_clip keeps `open_clip_train` beside `open_clip`, this package holds what only training
and evaluation need, installed with the `train` extra (`pip install 'simclip[train]'`):

    datasets     the meme datasets' readers (HarMeme, MAMI, Hateful Memes, MultiOFF, Memotion)
    download     `simclip datasets fetch`: downloads of the public ones
    embed        `simclip embed`: the frozen-encoder embedding cache
    config       TrainConfig / EmbedConfig, the typed configs the commands build
    train        `simclip train`: the SimCLIP head on cached embeddings
    evaluate     `simclip evaluate`: the papers' metrics on a split
    metrics      classification and OCR word metrics
    quickstart   `simclip quickstart`: Harm-C to a served checkpoint in one command
    synthetic    rendered synthetic memes for tests and demos

It imports `simclip`; `simclip` never imports it.
"""
