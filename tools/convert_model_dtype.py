#!/usr/bin/env python3
"""Copies a model directory with its float weights cast to fp16 or bf16 (numpy only), e.g. to
carry a smaller copy of a model to a GPU machine whose backend computes in that precision.

    python tools/convert_model_dtype.py --model models/all-MiniLM-L6-v2 --dtype f16 --out DIR
"""
import argparse
import json
import pathlib
import shutil
import struct

import numpy as np

NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF  # round to nearest even
    return ((bits + rounding) >> 16).astype(np.uint16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--dtype", choices=["f16", "bf16"], required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    src, dst = pathlib.Path(args.model), pathlib.Path(args.out)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors"), dirs_exist_ok=True)

    raw = (src / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out_header, chunks, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=NP[info["dtype"]]).reshape(info["shape"])
        dtype = info["dtype"]
        if dtype == "F32":
            if args.dtype == "f16":
                array, dtype = array.astype(np.float16), "F16"
            else:
                array, dtype = to_bf16_bits(array), "BF16"
        blob = np.ascontiguousarray(array).tobytes()
        out_header[name] = {"dtype": dtype, "shape": info["shape"],
                            "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    text = json.dumps(out_header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in chunks:
            f.write(blob)
    print(f"{dst}: {offset / 1e6:.1f} MB of {args.dtype} weights")


if __name__ == "__main__":
    main()
