"""Per-picture encoder cost of fp32 vs the CPU default (int8), in one run, and how close they are.

    python -m bench.precision_bench                      # ViT-L-14-336, random weights, CPU
    python -m bench.precision_bench --model ViT-B-32 --pictures 8 --rounds 3

Both backbones are built from the same seeded random weights (`--pretrained none`: speed only,
nothing is downloaded), one at `--precision fp32` (the exact path) and one at int8
(`simclip.backbone.quantize_int8`). Synthetic meme-like pictures (a photo-like gradient with a
caption) are encoded in batches of `--batch`, image tower then text tower (what the server runs
per picture), the two precisions interleaved round after round so that a change in the machine's
load hits both alike. Printed: the machine (cores, torch threads, load average before and
after), the build time of each backbone, per-picture wall ms (image, text, both) and CPU ms
(both towers, this process's threads together; the minimum over rounds and the median), the
fp32 / int8 ratios of the medians, and the cosine between the two embeddings of each picture and
caption (mean and minimum). On a shared machine the wall ratio moves with the others' load; the
CPU-time ratio much less. `--mlp-only` adds a third build, int8 with the
attention left in float (what `torch.ao.quantization.quantize_dynamic` alone quantizes: it skips
nn.MultiheadAttention's projections), to show what quantizing the attention adds.
"""

import argparse
import os
import statistics
import time

import torch
from PIL import Image, ImageDraw

from simclip import DEFAULT_MODEL, load_backbone
from simclip.backbone import quantize_int8

CAPTIONS = ["when the meme is harmful", "me explaining to my mom why the internet is down",
            "nobody: absolutely nobody: me at 3 am", "this is fine", "they said it could not be done",
            "look at this graph", "one does not simply walk into a server", "is this a pigeon"]


def make_pictures(n, size=512):
    """n synthetic meme-like pictures: a coloured gradient, shapes, a caption at the top."""
    pictures = []
    for i in range(n):
        g = torch.linspace(0, 255, size).to(torch.uint8)
        rgb = torch.stack([g.roll(37 * i).expand(size, size), g.expand(size, size).T,
                           torch.full((size, size), (60 * i) % 256, dtype=torch.uint8)], dim=-1)
        image = Image.fromarray(rgb.numpy(), "RGB")
        draw = ImageDraw.Draw(image)
        draw.ellipse((100 + 10 * i, 180, 380, 460), fill=(200, 40 * i % 256, 90))
        draw.rectangle((0, 0, size, 70), fill=(255, 255, 255))
        draw.text((20, 25), CAPTIONS[i % len(CAPTIONS)].upper(), fill=(0, 0, 0))
        pictures.append(image)
    return pictures


def encode(backbone, pixels, captions, batch):
    """({"image", "text", "cpu"}: wall ms of each tower and CPU ms of both, all pictures), image
    embeddings, text embeddings; batch by batch."""
    img, txt, ms = [], [], {"image": 0.0, "text": 0.0, "cpu": 0.0}
    for i in range(0, len(captions), batch):
        c0, t0 = time.process_time(), time.perf_counter()
        img.append(backbone.encode_pixels(pixels[i:i + batch]))  # (b, D)
        t1 = time.perf_counter()
        txt.append(backbone.encode_texts(captions[i:i + batch]))  # (b, D)
        t2, c2 = time.perf_counter(), time.process_time()
        ms["image"] += (t1 - t0) * 1000
        ms["text"] += (t2 - t1) * 1000
        ms["cpu"] += (c2 - c0) * 1000
    return ms, torch.cat(img), torch.cat(txt)


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="open_clip architecture (random weights)")
    p.add_argument("--pictures", type=int, default=4, help="pictures encoded per round")
    p.add_argument("--batch", type=int, default=2, help="pictures per encoder call")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per precision (interleaved)")
    p.add_argument("--precision", default="int8", help="the precision compared with fp32")
    p.add_argument("--mlp-only", action="store_true",
                   help="also time int8 with the attention left in float (quantize_dynamic alone)")
    return p.parse_args(argv)


def main(argv=None):
    """Run the benchmark and print its report."""
    args = parse_args(argv)
    load_before = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, quantized engine {torch.backends.quantized.engine}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    backbones = {}
    for precision in ("fp32", args.precision):
        t0 = time.perf_counter()
        backbones[precision] = load_backbone(args.model, "none", device="cpu", precision=precision)
        print(f"built {args.model} at {precision} in {time.perf_counter() - t0:.1f} s")
    if args.mlp_only:
        t0 = time.perf_counter()
        backbone = load_backbone(args.model, "none", device="cpu", precision="fp32")
        quantize_int8(backbone.model, attention=False)
        backbones["int8-mlp-only"] = backbone
        print(f"built {args.model} at int8, MLPs only, in {time.perf_counter() - t0:.1f} s")
    pictures = make_pictures(args.pictures)
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(args.pictures)]
    pixels = backbones["fp32"].preprocess_images(pictures)  # (N, 3, H, W), the same for both
    embeddings = {}
    for precision, backbone in backbones.items():  # untimed: first-call initialisation
        embeddings[precision] = encode(backbone, pixels[:args.batch], captions[:args.batch],
                                       args.batch)[1:]
    times = {p: {"image": [], "text": [], "cpu": []} for p in backbones}
    for _ in range(args.rounds):
        for precision, backbone in backbones.items():
            ms, img, txt = encode(backbone, pixels, captions, args.batch)
            for key, value in ms.items():
                times[precision][key].append(value / args.pictures)
            embeddings[precision] = (img, txt)
    load_after = os.getloadavg()

    print(f"\n{args.pictures} pictures x {args.rounds} rounds, batch {args.batch}; ms per picture, "
          f"min over rounds / median. Wall time moves with the machine's other load; CPU time "
          f"(this process, all threads) much less, so its ratio is the steadier one.")
    print("| precision | image wall ms | text wall ms | image + text wall ms | image + text CPU ms |")
    print("|---|---:|---:|---:|---:|")
    wall, cpu = {}, {}
    for precision, t in times.items():
        both = [a + b for a, b in zip(t["image"], t["text"])]
        wall[precision], cpu[precision] = statistics.median(both), statistics.median(t["cpu"])
        print(f"| {precision} | {min(t['image']):.0f} / {statistics.median(t['image']):.0f} "
              f"| {min(t['text']):.0f} / {statistics.median(t['text']):.0f} "
              f"| {min(both):.0f} / {wall[precision]:.0f} "
              f"| {min(t['cpu']):.0f} / {cpu[precision]:.0f} |")
    print()
    ref_img, ref_txt = embeddings["fp32"]
    for precision in list(backbones)[1:]:
        print(f"fp32 / {precision} (image + text, medians): wall {wall['fp32'] / wall[precision]:.2f}x, "
              f"CPU {cpu['fp32'] / cpu[precision]:.2f}x")
        q_img, q_txt = embeddings[precision]
        cos_img, cos_txt = (ref_img * q_img).sum(-1), (ref_txt * q_txt).sum(-1)  # (N,) unit vectors
        print(f"cosine {precision} to fp32: image mean {cos_img.mean():.5f} min "
              f"{cos_img.min():.5f}; text mean {cos_txt.mean():.5f} min {cos_txt.min():.5f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")


if __name__ == "__main__":
    main()
