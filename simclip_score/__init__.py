"""Bulk scoring: `simclip score SOURCE... --out FILE` over a corpus of memes.

Two engines give the same rows: `local` (this machine: a decode + OCR pool over the cores, the
encoders in batches, with the server's batching rule `simclip.collect_batch`) and `ray` (Ray
Data over a cluster; `pip install 'simclip[scale]'`). This package is the only one that
imports `ray`; `import simclip` never loads it.

    sources.py    the inputs: folders, globs, lists, tables, WebDataset shards, URLs
    output.py     the row schema, JSONL and Parquet writers, resume
    work.py       options and the per-picture stages both engines share
    local.py      the local engine
    ray_engine.py the Ray engine
    ocr.py        OCR specs, including rapidocr on CUDA
    cli.py        the command
"""
