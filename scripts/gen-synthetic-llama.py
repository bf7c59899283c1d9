#!/usr/bin/env python3
"""Writes a synthetic LLaMA checkpoint as a Hugging Face folder (config.json, sharded BF16 safetensors and
model.safetensors.index.json) for the end-to-end benchmark (scripts/bench-e2e.sh, docs/results.md).

Shapes: 7b (LLaMA-2-7B: dim 4096, hidden 11008, 32 layers, 32 heads, vocab 32000), 1.1b (TinyLlama-1.1B: dim 2048,
hidden 5632, 22 layers, 32 heads, 4 KV heads, vocab 32000), tiny (dim 256, hidden 688, 4 layers, 8 heads, 2 KV heads)
for testing the script; --layers N keeps the shape's widths with N blocks.

Values (BF16, standard library only, ~1 GB/s): projection weights are symmetric with |w| distributed as
|N(0, sigma)| (sigma = 1/sqrt(in_features), then a random factor in [1, 2) from the free low byte), and a few outlier
input channels (columns) per projection are 16x wider, as the activation-outlier channels of real LLaMA checkpoints
show in the weights that read them; the embedding has sigma 0.02; norm weights are 1 + |N(0, 0.05)|-ish around 1.
The tokenizer is not written: pass --tokenizer data/tokenizer-llama2-32k.bin (the LLaMA 2 vocabulary) to the tools.
Deterministic for a given --seed.
"""
import argparse
import json
import os
import random
import shutil
import struct
import sys
from statistics import NormalDist

SHAPES = {
    "7b": dict(dim=4096, hidden=11008, layers=32, heads=32, kv_heads=32, vocab=32000),
    "1.1b": dict(dim=2048, hidden=5632, layers=22, heads=32, kv_heads=4, vocab=32000),
    "tiny": dict(dim=256, hidden=688, layers=4, heads=8, kv_heads=2, vocab=32000),
}


def bf16_high_byte(x):
    """Sign + the 7 high exponent bits of x's BF16 encoding (the low byte is left random)."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    return (bits >> 24) & 0xFF


def magnitude_table(sigma, offset=0.0):
    """Maps a uniform random byte to a BF16 high byte: bit 7 is the sign, bits 0..6 a quantile of |N(0, sigma)|."""
    nd = NormalDist(0.0, sigma)
    table = bytearray(256)
    for b in range(256):
        q = ((b & 127) + 0.5) / 128.0
        mag = nd.inv_cdf(0.5 + q / 2.0) / 1.5  # the random low byte multiplies by [1, 2): ~1.5 on average
        x = offset + mag if offset else (-mag if b & 128 else mag)
        table[b] = bf16_high_byte(x)
    return bytes(table)


def tensor_bytes(rng, rows, cols, table, outlier_table=None, outliers=()):
    buf = bytearray(rng.randbytes(2 * rows * cols))
    buf[1::2] = bytes(buf[1::2]).translate(table)
    for c in outliers:  # column c of every row: high bytes at 2 * (r * cols + c) + 1
        buf[2 * c + 1::2 * cols] = bytes(buf[2 * c + 1::2 * cols]).translate(outlier_table)
    return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder to create (must not exist)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--layers", type=int, default=0, help="number of blocks (default: the shape's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--outliers", type=int, default=4, help="outlier input channels per projection (default 4)")
    a = ap.parse_args()
    s = dict(SHAPES[a.shape])
    if a.layers:
        if a.layers < 1 or a.layers > 1024:
            sys.exit("gen-synthetic-llama.py: --layers must be in 1..1024")
        s["layers"] = a.layers
    if os.path.exists(a.out):
        sys.exit(f"gen-synthetic-llama.py: --out '{a.out}' exists: give a new folder")
    d, h, L, nh, nkv, V = s["dim"], s["hidden"], s["layers"], s["heads"], s["kv_heads"], s["vocab"]
    kv = d * nkv // nh
    need = 2 * (2 * V * d + L * (2 * d * d + 2 * kv * d + 3 * h * d + 2 * d) + d)
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(a.out))).free
    if need > free - (1 << 30):
        sys.exit(f"gen-synthetic-llama.py: needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
    os.makedirs(a.out)
    rng = random.Random(a.seed)
    emb_table = magnitude_table(0.02)
    norm_table = magnitude_table(0.05, offset=1.0)

    def projection(rows, cols):
        sigma = cols ** -0.5
        outliers = rng.sample(range(cols), min(a.outliers, cols))
        return tensor_bytes(rng, rows, cols, magnitude_table(sigma), magnitude_table(16 * sigma), outliers)

    def norm():
        return tensor_bytes(rng, 1, d, norm_table)

    shards = [("embed", None)] + [("layer", l) for l in range(L)] + [("head", None)]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for (kind, l), fname in zip(shards, names):
        if kind == "embed":
            items = [("model.embed_tokens.weight", [V, d], lambda: tensor_bytes(rng, V, d, emb_table))]
        elif kind == "head":
            items = [("model.norm.weight", [d], norm), ("lm_head.weight", [V, d], lambda: tensor_bytes(rng, V, d, emb_table))]
        else:
            p = f"model.layers.{l}."
            items = [(p + "input_layernorm.weight", [d], norm), (p + "post_attention_layernorm.weight", [d], norm)]
            for n, r, c in [("self_attn.q_proj", d, d), ("self_attn.k_proj", kv, d), ("self_attn.v_proj", kv, d),
                            ("self_attn.o_proj", d, d), ("mlp.gate_proj", h, d), ("mlp.up_proj", h, d),
                            ("mlp.down_proj", d, h)]:
                items.append((p + n + ".weight", [r, c], (lambda r=r, c=c: projection(r, c))))
        header, offset = {}, 0
        for name, shape, _ in items:
            size = 2
            for x in shape:
                size *= x
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
            weight_map[name] = fname
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(os.path.join(a.out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for _, _, make in items:
                f.write(make())
        print(f"{fname}: {offset / 1e6:.0f} MB", file=sys.stderr)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": need}, "weight_map": weight_map}, f, indent=1)
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": d, "intermediate_size": h, "num_hidden_layers": L,
              "num_attention_heads": nh, "num_key_value_heads": nkv, "vocab_size": V, "max_position_embeddings": 2048,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


if __name__ == "__main__":
    main()
