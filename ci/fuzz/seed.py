#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ with texaug's own inputs: the hostile corpus, the demo sources, manifests and
recipes, and a few depth images and Parquet/JSONL manifests written here. `make fuzz` grows the corpora from these
and `afl-cmin` keeps the ones that add coverage; the result is committed, and `make test` replays it.

Needs pyarrow (the test venv of `make test` has it) for the Parquet seeds. Run from the repository root:
    python3 ci/fuzz/seed.py
"""
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
MAX_SEED_BYTES = 64 << 10


def put(target, name, data):
    out = CORPUS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)


def copy(target, files):
    for f in sorted(files):
        if f.is_file() and f.stat().st_size <= MAX_SEED_BYTES:
            put(target, f.name, f.read_bytes())


def png(width, height, bit_depth, color_type, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def float_tiff(width, height, values, little=True):
    e = "<" if little else ">"
    data = struct.pack(e + "%df" % len(values), *values)
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 10 + 4), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, len(data)),
        (339, 3, 1, 3),
    ]
    ifd = struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack(e + "H", value) + b"\0\0" if typ == 3 else struct.pack(e + "I", value)
        ifd += struct.pack(e + "HHI", tag, typ, count) + packed
    ifd += struct.pack(e + "I", 0)
    head = (b"II*\0" if little else b"MM\0*") + struct.pack(e + "I", 8)
    return head + ifd + data


def main():
    hostile = ROOT / "tests" / "hostile"
    demo = ROOT / "manifests" / "demo"
    mesh_exts = {".glb", ".gltf"}
    image_exts = {".png", ".jpg", ".jpeg", ".webp"}
    copy("mesh", [f for f in list(hostile.iterdir()) + list(demo.rglob("*")) if f.suffix in mesh_exts])
    copy("image", [f for f in list(hostile.iterdir()) + list(demo.iterdir()) if f.suffix in image_exts])

    gray8 = png(4, 4, 8, 0, [bytes([16 * (x + y) for x in range(4)]) for y in range(4)])
    gray16 = png(4, 4, 16, 0, [b"".join(struct.pack(">H", 4000 * (x + y)) for x in range(4)) for y in range(4)])
    put("depth_image", "gray8.png", gray8)
    put("depth_image", "gray16.png", gray16)
    put("depth_image", "float_le.tif", float_tiff(4, 4, [0.25 * i for i in range(16)]))
    put("depth_image", "float_be.tif", float_tiff(4, 4, [1.0 + i for i in range(16)], little=False))
    put("depth_image", "flat.tif", float_tiff(2, 2, [3.0] * 4))
    copy("depth_image", [hostile / n for n in ("png_bad_bit_depth.png", "png_zero_width.png", "good_1x1.png")])

    copy("manifest_csv", list((ROOT / "manifests").glob("*.csv")) + [hostile / "manifest.csv"]
         + list((hostile / "manifests").glob("*.csv")))
    rows = [
        {"id": "mug", "path": "input.glb", "label": "mug"},
        {"id": "tex", "path": "texture.png", "label": "swatch", "kind": "image", "split": "train"},
        {"id": "d", "path": "texture.png", "label": "swatch", "depth": "buffer.bin", "prompt": "a {label}"},
    ]
    put("manifest_jsonl", "three.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    put("manifest_jsonl", "blank_lines.jsonl", ("\n" + json.dumps(rows[1]) + "\n\n").encode())
    put("manifest_jsonl", "unknown_key.jsonl", b'{"id": "a", "path": "texture.png", "label": "x", "color": 1}\n')
    put("manifest_jsonl", "duplicate.jsonl", (json.dumps(rows[1]) + "\n" + json.dumps(rows[1]) + "\n").encode())
    put("manifest_jsonl", "not_object.jsonl", b'[1, 2]\n"text"\n{"id": 5}\n')

    import pyarrow as pa
    import pyarrow.parquet as pq

    def parquet(name, table, **kw):
        buf = io.BytesIO()
        pq.write_table(table, buf, **kw)
        put("manifest_parquet", name, buf.getvalue())

    cols = {k: [r.get(k) for r in rows] for k in ("id", "path", "label", "kind", "depth", "prompt", "split")}
    parquet("three.parquet", pa.table(cols))
    parquet("three_snappy_dict.parquet", pa.table(cols), compression="snappy", use_dictionary=True)
    parquet("three_gzip.parquet", pa.table(cols), compression="gzip", use_dictionary=False)
    parquet("large_string.parquet", pa.table({k: pa.array(v, pa.large_string()) for k, v in cols.items()}))
    parquet("int_id.parquet", pa.table({"id": [1, 2], "path": ["texture.png"] * 2, "label": ["a", "b"]}))
    parquet("unknown_col.parquet", pa.table({"id": ["a"], "path": ["texture.png"], "label": ["a"], "x": [1.5]}))
    parquet("nested.parquet", pa.table({"id": ["a"], "path": ["texture.png"], "label": [["a", "b"]]}))

    copy("recipe", list((ROOT / "recipes").glob("*.toml")) + list((hostile / "recipes").glob("*.toml")))

    # Model files: safetensors headers with the tensors detection reads (tiny shapes, so they stay small).
    def safetensors(tensors, metadata=None, extra=b""):
        header, offset, data = {}, 0, b""
        for name, (dtype, shape) in tensors.items():
            n = 1
            for d in shape:
                n *= d
            size = n * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[dtype]
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
            data += bytes(size)
        if metadata:
            header["__metadata__"] = metadata
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data + extra

    unet = "model.diffusion_model."
    sd1 = {
        unet + "input_blocks.0.0.weight": ("F16", [2, 4, 1, 1]),
        unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": ("F16", [2, 768]),
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": ("F32", [1, 2]),
        "first_stage_model.encoder.mid.attn_1.q.weight": ("F32", [2, 2, 1, 1]),
    }
    put("checkpoint", "sd1_sentinels.safetensors", safetensors(sd1))
    sd2 = dict(sd1)
    sd2.pop("cond_stage_model.transformer.text_model.embeddings.position_embedding.weight")
    sd2[unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"] = ("F16", [2, 1024])
    sd2["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = ("F32", [6, 2])
    put("checkpoint", "sd2_with_modelspec.safetensors",
        safetensors(sd2, {"modelspec.architecture": "stable-diffusion-v2-512", "modelspec.prediction_type": "epsilon"}))
    depth = dict(sd2)
    depth[unet + "input_blocks.0.0.weight"] = ("BF16", [2, 5, 1, 1])
    put("checkpoint", "sd2_depth.safetensors", safetensors(depth))
    put("checkpoint", "lora.safetensors", safetensors({
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": ("F16", [2, 4]),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": ("F16", [4, 2]),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": ("F16", []),
    }))
    put("checkpoint", "vae.safetensors", safetensors({
        "encoder.down.0.block.0.conv1.weight": ("F32", [1, 1, 1, 1]),
        "decoder.up.0.block.0.conv1.weight": ("F32", [1, 1, 1, 1]),
    }))
    put("checkpoint", "truncated.safetensors", safetensors(sd1)[:-7])
    layer = "lora_unet_mid_block_attentions_0_proj_in"
    lora = {layer + ".lora_down.weight": ("F32", [2, 4]), layer + ".lora_up.weight": ("F32", [4, 2])}
    put("checkpoint", "lora_matching.safetensors", safetensors({**lora, layer + ".alpha": ("F32", [])}))
    put("checkpoint", "lora_alpha_vector.safetensors", safetensors({**lora, layer + ".alpha": ("F32", [2])}))
    put("checkpoint", "embedding_a1111.safetensors", safetensors({"emb_params": ("F32", [2, 8])}))
    put("checkpoint", "sdxl.safetensors", safetensors({
        unet + "input_blocks.0.0.weight": ("F16", [2, 4, 1, 1]),
        "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": ("F16", [2]),
    }))
    for target in ("mesh", "image", "depth_image", "manifest_csv", "manifest_jsonl", "manifest_parquet", "recipe",
                   "checkpoint"):
        print(f"{target}: {len(list((CORPUS / target).iterdir()))} seeds")


if __name__ == "__main__":
    main()
