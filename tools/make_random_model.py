#!/usr/bin/env python3
"""Writes a Hugging Face / sentence-transformers model directory with random weights.

The architecture is real (same config, tensor names and shapes as the published model); only
the weights are random, initialised as BERT does (normal, std 0.02; LayerNorm weight 1, bias 0)
so activations have realistic magnitudes. Used to benchmark and test large configurations
without downloading them. Needs only numpy; the safetensors file is written directly.

    tools/make_random_model.py --arch bert-base --dtype f16 --out /tmp/bert-base-f16
"""

import argparse
import json
import pathlib
import shutil
import struct
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_TOKENIZER_DIR = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json"]

# Configurations of the published checkpoints (BERT uncased vocabulary, 30522 tokens).
ARCHS = {
    "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536, max_seq_length=256),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_seq_length=512),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                       intermediate_size=4096, max_seq_length=512),
}

SAFETENSORS_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
DTYPE_BYTES = {"f32": 4, "f16": 2, "bf16": 2}


def bert_config(arch):
    a = ARCHS[arch]
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": a["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": a["intermediate_size"],
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "num_attention_heads": a["num_attention_heads"],
        "num_hidden_layers": a["num_hidden_layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "vocab_size": 30522,
    }


def bert_tensors(config):
    """(name, shape, init) for every tensor of a BertModel, in checkpoint order."""
    h = config["hidden_size"]
    i = config["intermediate_size"]
    out = [
        ("embeddings.word_embeddings.weight", (config["vocab_size"], h), "normal"),
        ("embeddings.position_embeddings.weight", (config["max_position_embeddings"], h),
         "normal"),
        ("embeddings.token_type_embeddings.weight", (config["type_vocab_size"], h), "normal"),
        ("embeddings.LayerNorm.weight", (h,), "ones"),
        ("embeddings.LayerNorm.bias", (h,), "zeros"),
    ]
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for m in ("query", "key", "value"):
            out.append((p + f"attention.self.{m}.weight", (h, h), "normal"))
            out.append((p + f"attention.self.{m}.bias", (h,), "zeros"))
        out += [
            (p + "attention.output.dense.weight", (h, h), "normal"),
            (p + "attention.output.dense.bias", (h,), "zeros"),
            (p + "attention.output.LayerNorm.weight", (h,), "ones"),
            (p + "attention.output.LayerNorm.bias", (h,), "zeros"),
            (p + "intermediate.dense.weight", (i, h), "normal"),
            (p + "intermediate.dense.bias", (i,), "zeros"),
            (p + "output.dense.weight", (h, i), "normal"),
            (p + "output.dense.bias", (h,), "zeros"),
            (p + "output.LayerNorm.weight", (h,), "ones"),
            (p + "output.LayerNorm.bias", (h,), "zeros"),
        ]
    out += [("pooler.dense.weight", (h, h), "normal"), ("pooler.dense.bias", (h,), "zeros")]
    return out


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even, NaN kept quiet."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((bits[nan] >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)
    return out


def encode(x, dtype):
    if dtype == "f32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if dtype == "f16":
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    return to_bf16_bits(x).astype("<u2").tobytes()


def write_safetensors(path, tensors, dtype, rng, std):
    """Streams tensors to `path` one at a time so large models never sit in memory twice."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in tensors:
        nbytes = int(np.prod(shape)) * DTYPE_BYTES[dtype]
        header[name] = {"dtype": SAFETENSORS_DTYPE[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for name, shape, init in tensors:
            if init == "normal":
                values = rng.normal(0.0, std, size=shape).astype(np.float32)
            elif init == "ones":
                values = np.ones(shape, dtype=np.float32)
            else:
                values = np.zeros(shape, dtype=np.float32)
            f.write(encode(values, dtype))
    return offset


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=sorted(ARCHS))
    parser.add_argument("--dtype", default="f32", choices=sorted(SAFETENSORS_DTYPE))
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer-from", type=pathlib.Path, default=DEFAULT_TOKENIZER_DIR,
                        help="directory to copy the BERT uncased tokenizer files from")
    parser.add_argument("--no-normalize", action="store_true",
                        help="leave the Normalize module out of modules.json")
    args = parser.parse_args()

    missing = [n for n in TOKENIZER_FILES[:2] if not (args.tokenizer_from / n).is_file()]
    if missing:
        sys.exit(f"{args.tokenizer_from} lacks {', '.join(missing)}; "
                 "run scripts/fetch-model.sh or pass --tokenizer-from")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = bert_config(args.arch)
    config["torch_dtype"] = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[args.dtype]
    write_json(out / "config.json", config)

    rng = np.random.default_rng(args.seed)
    tensors = bert_tensors(config)
    nbytes = write_safetensors(out / "model.safetensors", tensors, args.dtype, rng,
                               config["initializer_range"])

    for name in TOKENIZER_FILES:
        src = args.tokenizer_from / name
        if src.is_file():
            shutil.copyfile(src, out / name)

    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]
    if not args.no_normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    write_json(out / "modules.json", modules)
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": config["hidden_size"],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    write_json(out / "sentence_bert_config.json",
               {"max_seq_length": ARCHS[args.arch]["max_seq_length"], "do_lower_case": False})

    params = sum(int(np.prod(s)) for _, s, _ in tensors)
    print(f"{out}: {args.arch} {args.dtype}, {len(tensors)} tensors, {params / 1e6:.1f}M params, "
          f"{nbytes / 2**20:.1f} MiB of weights")


if __name__ == "__main__":
    main()
