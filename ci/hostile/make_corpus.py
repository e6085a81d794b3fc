#!/usr/bin/env python3
"""Writes the hostile corpus, tests/hostile/, deterministically (stdlib only: struct, zlib, json).

    python3 ci/hostile/make_corpus.py            # from the repository root

Every file is small; tests/e2e_hostile.rs runs `texaug run` over manifest.csv, which lists each of them, and checks
each row against expected.json (outcome and, for failures, a fragment of the error). Escaping URIs name
`../hostile-secret.txt` / `../hostile-secret.png`, which the test creates beside a temp copy of the folder.
"""
import json
import os
import shutil
import struct
import zlib

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "hostile")
DEMO = os.path.join(ROOT, "manifests", "demo")

ENTRIES = []  # (file, kind, outcome, error fragment, what)


def add(name, data, kind, outcome, err, what):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    if name in POLICY:
        outcome, err = POLICY[name]
    elif outcome == "failed":
        err = FRAG.get(name, "is not a readable image" if kind == "image" else err)
    ENTRIES.append((name, kind, outcome, err, what))

# The error fragment each failing row must carry (default: its file's name; for an image the decoder's own words
# after "is not a readable image" are not pinned).
FRAG = {
    "acc_bad_component_type.glb": "accessor 0 has componentType 5999",
    'acc_bad_type.glb': 'accessor 1 has type "VEC9"',
    "acc_count_past_view.glb": "accessor 0 reads 400 elements of 12 bytes",
    "acc_huge_no_view.glb": "declares 268435456 elements with no bufferView (all zeros), over the limit",
    "acc_offset_huge.glb": "from byte 9007199254740992 of bufferView 0",
    "buffer_length_huge.glb": "buffer 0 declares 1099511627776 bytes but the BIN chunk holds",
    'buffer_uri_dotdot.gltf': "lies outside the asset's folder",
    "buffer_uri_file_scheme.gltf": "uses the file: scheme",
    "glb_bad_magic.glb": "the JSON does not parse",
    "glb_bad_version.glb": "GLB container version 1",
    "glb_bin_chunk_huge.glb": "is a truncated or malformed GLB: the chunk at byte offset",
    "glb_empty.glb": "the JSON does not parse",
    "glb_header_only.glb": "is a truncated or malformed GLB: the header declares",
    "glb_json_chunk_past_end.glb": "is a truncated or malformed GLB: the chunk at byte offset 12",
    "glb_json_not_json.glb": "the JSON chunk at byte offset 20 does not parse",
    "glb_length_past_file.glb": "the header declares 1073741824 bytes but the file ends",
    "glb_no_bin.glb": "buffer 0 has no uri and is not the BIN chunk",
    "glb_truncated_bin.glb": "is a truncated or malformed GLB",
    "gltf_empty_object.gltf": "only glTF 2.0 is supported",
    "gltf_no_meshes.gltf": "has nothing to re-texture",
    "gltf_not_json.gltf": "the JSON does not parse",
    "image_view_bomb.glb": "100000×100000 (10000000000 pixels) by its header, over the limit",
    "image_view_garbage.glb": "image 0 (base color of material 0) cannot be decoded",
    'no_texcoord.glb': "has no UVs: its material's base color uses TEXCOORD_0",
    "png_bomb_100000.png": "100000×100000 (10000000000 pixels) by its header, over the limit",
    "texcoord_set_7.glb": "uses TEXCOORD_7, which the primitive lacks",
    "texture_index_missing.glb": "refers to texture 9, which does not exist",
    "uri_absolute.gltf": "which is an absolute path; texaug refused it without reading",
    'uri_backslash.gltf': "lies outside the asset's folder",
    "uri_bad_base64.gltf": "corrupt base64 data URI",
    'uri_deep_dotdot.gltf': "lies outside the asset's folder",
    'uri_dotdot_png.gltf': "lies outside the asset's folder",
    'uri_dotdot_txt.gltf': "lies outside the asset's folder",
    "uri_file_scheme.gltf": "uses the file: scheme",
    'uri_folder.gltf': "names the asset's folder itself, not a file",
    "uri_http_scheme.gltf": "texaug never fetches anything over the network",
    'uri_missing_file.gltf': 'refers to "not-here.png"',
    'uri_pct_dotdot.gltf': "lies outside the asset's folder",
    'uri_pct_slash.gltf': "lies outside the asset's folder",
    "view_bad_buffer.glb": "refers to buffer 5, which does not exist",
    "view_bad_stride.glb": "has byteStride 3; a stride must be at least the element size",
    "view_past_buffer.glb": "bufferView 0 spans bytes 0..1048576 of buffer 0",
}


# Inputs whose outcome is policy, as texaug behaves today (and the test pins): (style outcome, error fragment).
POLICY = {
    "png_no_iend.png": ("failed", "unexpected end of file"),
    "jpeg_truncated.jpg": ("ok", ""),  # the JPEG decoder fills the missing scans
    "webp_riff_huge.webp": ("ok", ""),  # the RIFF size is not trusted; the chunks decode
    "image_uri_and_view.glb": ("failed", "both a uri and bufferView"),
    "texture_no_source.glb": ("failed", "has no image"),
    "node_nan_matrix.glb": ("failed", "does not parse"),
}

# The style stage re-textures base-color images and never reads geometry: these load and finish "ok" there (the
# GLB is written back as it came). The depth stage reads the triangles and must refuse them with this fragment.
DEPTH = {
    "acc_index_missing.glb": "accessor 42 does not exist",
    "acc_negative_count.glb": "accessor 0 does not exist or has no count",
    "acc_position_vec2.glb": "3 components are required",
    "idx_float.glb": "componentType 5126",
    "idx_out_of_range.glb": "index 1000 but only 4 vertices",
    "inf_positions.glb": "not a finite number",
    "nan_positions.glb": "not a finite number",
    "nan_uvs.glb": "not a finite number",
    "instancing_bomb.glb": "over a million nodes",
    "node_bad_child.glb": "node 99, which does not exist",
    "node_bad_mesh.glb": "mesh 5, which does not exist",
    "node_cycle.glb": "cycle in the node hierarchy",
    "node_self_child.glb": "cycle in the node hierarchy",
    "scene_bad_node.glb": "node 7, which does not exist",
}
for _n in DEPTH:
    POLICY[_n] = ("ok", "")
# Accepted by both stages: glTF forbids them, but they do no harm.
for _n in ["acc_position_u8.glb", "idx_not_triangles.glb", "zero_area.glb", "no_material.glb"]:
    POLICY[_n] = ("ok", "")


# ---------- PNG ----------

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(w, h, rows=None, color=6, depth=8, ihdr_only=False, iend=True):
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if ihdr_only:
        return sig + ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    if rows is None:
        rows = b"".join(b"\x00" + bytes(v for x in range(w)
                                        for v in ((x * 7 + y * 13) % 256, (x * 3) % 256, (y * 5) % 256, 255)) for y in range(h))
    out = sig + ihdr + chunk(b"IDAT", zlib.compress(rows, 9))
    return out + (chunk(b"IEND", b"") if iend else b"")


def texture_png(n=8, tint=0):
    return png(n, n, b"".join(b"\x00" + bytes(v for x in range(n) for v in ((x * 32) % 256, (y * 32) % 256, tint, 255))
                              for y in range(n)))


# ---------- JPEG / WebP ----------

def jpeg_sof(w, h):
    # SOI, SOF0 (baseline, 3 components) with the given size, then EOI: a header that declares a size and no data.
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def webp_vp8x(w, h):
    body = struct.pack("<I", 0) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", len(body)) + body
    data = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(data)) + data


# ---------- glTF / GLB ----------

def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def base_mesh(positions=None, uvs=None, indices=None, tex=None, material=True):
    """A textured quad: (json dict, bin bytes). The texture is an image in a bufferView."""
    positions = positions or [0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0]
    uvs = uvs or [0, 1, 1, 1, 1, 0, 0, 0]
    indices = indices if indices is not None else [0, 1, 2, 0, 2, 3]
    tex = tex if tex is not None else texture_png()
    pos_b, uv_b = f32(positions), f32(uvs)
    idx_b = struct.pack("<%dH" % len(indices), *indices)
    views, binary = [], b""

    def view(data):
        nonlocal binary
        while len(binary) % 4:
            binary += b"\x00"
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)})
        binary += data
        return len(views) - 1

    vp, vu, vi, vt = view(pos_b), view(uv_b), view(idx_b), view(tex)
    finite = [p for p in positions if p == p and abs(p) != float("inf")] or [0]
    prim = {"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2}
    if material:
        prim["material"] = 0
    doc = {
        "asset": {"version": "2.0", "generator": "texaug ci/hostile/make_corpus.py"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [prim]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"bufferView": vt, "mimeType": "image/png"}],
        "accessors": [
            {"bufferView": vp, "componentType": 5126, "count": len(positions) // 3, "type": "VEC3",
             "min": [min(finite)] * 3, "max": [max(finite)] * 3},
            {"bufferView": vu, "componentType": 5126, "count": len(uvs) // 2, "type": "VEC2"},
            {"bufferView": vi, "componentType": 5123, "count": len(indices), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": 0}],
    }
    while len(binary) % 4:
        binary += b"\x00"
    doc["buffers"][0]["byteLength"] = len(binary)
    return doc, binary


def glb(doc, binary, json_bytes=None):
    j = json_bytes if json_bytes is not None else json.dumps(doc, separators=(",", ":")).encode()
    while len(j) % 4:
        j += b" "
    out = struct.pack("<I4s", len(j), b"JSON") + j
    if binary is not None:
        out += struct.pack("<I4s", len(binary), b"BIN\x00") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(out)) + out


def gltf_external(doc, binary, bin_name):
    """A .gltf whose buffer is the data URI of `binary` unless the document already names a uri."""
    import base64
    doc = json.loads(json.dumps(doc))
    if "uri" not in doc["buffers"][0]:
        doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
    return json.dumps(doc, indent=1).encode()


def mutated(fn, **kw):
    doc, binary = base_mesh(**kw)
    fn(doc)
    return glb(doc, binary)


def image_uri_mesh(uri):
    """A .gltf (buffer as data URI) whose base-color image is `uri`."""
    doc, binary = base_mesh()
    doc["images"] = [{"uri": uri}]
    return gltf_external(doc, binary, None)


def main():
    if os.path.isdir(OUT):
        for n in os.listdir(OUT):
            p = os.path.join(OUT, n)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(OUT, exist_ok=True)
    # Byte for byte as written: no end-of-line conversion (bom_crlf.csv keeps its CRLFs), no diffs of binaries.
    with open(os.path.join(OUT, ".gitattributes"), "w", newline="\n") as f:
        f.write("* -text -diff\nREADME.md text diff\n")

    # --- good ones, copied from the demo and generated ---
    for n, kind in [("apple.png", "image"), ("chessboard.jpg", "image"), ("mug.glb", "mesh")]:
        with open(os.path.join(DEMO, n), "rb") as f:
            add("good_" + n, f.read(), kind, "ok", "", "a demo file, unchanged")
    add("good_quad.glb", glb(*base_mesh()), "mesh", "ok", "", "a textured quad, image in a bufferView")
    add("good_1x1.png", png(1, 1), "image", "ok", "", "a 1x1 RGBA PNG")
    add("good_8192x2.png", png(8192, 2), "image", "ok", "", "an 8192x2 RGBA PNG (extreme aspect, at the width cap)")
    add("good_png_named.jpg", texture_png(16), "image", "ok", "", "a PNG named .jpg (decoded by content)")

    # --- PNG ---
    good = texture_png(16)
    add("png_empty.png", b"", "image", "failed", "png_empty.png", "zero bytes")
    add("png_signature_only.png", good[:8], "image", "failed", "png_signature_only.png", "the signature, nothing else")
    add("png_truncated_ihdr.png", good[:20], "image", "failed", "png_truncated_ihdr.png", "cut inside IHDR")
    add("png_truncated_idat.png", png(64, 64)[:120], "image", "failed", "png_truncated_idat.png", "cut inside IDAT")
    bad_crc = bytearray(good)
    bad_crc[29] ^= 0xFF  # IHDR's CRC
    add("png_bad_crc.png", bytes(bad_crc), "image", "failed", "png_bad_crc.png", "IHDR CRC wrong")
    add("png_garbage.png", bytes((i * 131 + 7) % 256 for i in range(512)), "image", "failed", "png_garbage.png",
        "512 bytes of noise")
    add("png_text.png", b"this is not an image\n", "image", "failed", "png_text.png", "a text file named .png")
    add("png_bomb_100000.png", png(100000, 100000, ihdr_only=True), "image", "failed", "pixels",
        "decompression bomb: IHDR says 100000x100000, tiny IDAT")
    add("png_bomb_wide.png", png(2**31 - 1, 1, ihdr_only=True), "image", "failed", "png_bomb_wide.png",
        "IHDR width 2^31-1 (refused by the PNG decoder's memory limit, not texaug's pixel cap)")
    add("png_zero_width.png", png(0, 16, ihdr_only=True), "image", "failed", "png_zero_width.png",
        "IHDR width 0")
    add("png_bad_color_type.png", png(4, 4, color=7, ihdr_only=True), "image", "failed",
        "png_bad_color_type.png", "color type 7")
    add("png_bad_bit_depth.png", png(4, 4, depth=3, ihdr_only=True), "image", "failed",
        "png_bad_bit_depth.png", "bit depth 3")
    add("png_idat_short.png", png(32, 32, rows=b"\x00" * 40), "image", "failed", "png_idat_short.png",
        "IDAT inflates to fewer bytes than 32x32 needs")
    add("png_bad_zlib.png", good[:33] + chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 40) + chunk(b"IEND", b""),
        "image", "failed", "png_bad_zlib.png", "IDAT is not a zlib stream")
    add("png_bad_filter.png", png(4, 4, rows=b"".join(b"\x09" + b"\x00" * 16 for _ in range(4))), "image",
        "failed", "png_bad_filter.png", "row filter type 9")
    add("png_no_iend.png", png(8, 8, iend=False), "image", "policy", "", "otherwise valid, no IEND chunk (the decoder wants it)")

    # --- JPEG ---
    with open(os.path.join(DEMO, "chessboard.jpg"), "rb") as f:
        jpg = f.read()
    add("jpeg_empty.jpg", b"", "image", "failed", "jpeg_empty.jpg", "zero bytes")
    add("jpeg_soi_only.jpg", b"\xff\xd8", "image", "failed", "jpeg_soi_only.jpg", "SOI marker only")
    add("jpeg_truncated.jpg", jpg[: len(jpg) // 3], "image", "policy", "jpeg_truncated.jpg",
        "the demo JPEG cut at a third")
    add("jpeg_header_only.jpg", jpg[:200], "image", "failed", "jpeg_header_only.jpg", "the first 200 bytes")
    add("jpeg_bomb.jpg", jpeg_sof(65000, 65000), "image", "failed", "jpeg_bomb.jpg",
        "SOF0 says 65000x65000, no scan (fails decoding the header, before the pixel cap)")
    add("jpeg_zero_size.jpg", jpeg_sof(0, 0), "image", "failed", "jpeg_zero_size.jpg", "SOF0 says 0x0")
    add("jpeg_garbage.jpg", b"\xff\xd8" + bytes((i * 57 + 3) % 256 for i in range(400)), "image", "failed",
        "jpeg_garbage.jpg", "SOI then noise")

    # --- WebP ---
    with open(os.path.join(DEMO, "flower.webp"), "rb") as f:
        webp = f.read()
    add("webp_empty.webp", b"", "image", "failed", "webp_empty.webp", "zero bytes")
    add("webp_truncated.webp", webp[: len(webp) // 2], "image", "failed", "webp_truncated.webp",
        "the demo WebP cut in half")
    add("webp_riff_huge.webp", b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + webp[8:], "image", "policy",
        "webp_riff_huge.webp", "RIFF size 4 GiB")
    add("webp_bomb.webp", webp_vp8x(16384, 16384), "image", "failed", "webp_bomb.webp",
        "VP8X canvas 16384x16384, no image data (fails decoding the header, before the pixel cap)")
    add("webp_riff_only.webp", b"RIFF\x04\x00\x00\x00WEBP", "image", "failed", "webp_riff_only.webp",
        "a RIFF/WEBP header and no chunk")

    # --- GLB container ---
    gdoc, gbin = base_mesh()
    good_glb = glb(gdoc, gbin)
    add("glb_empty.glb", b"", "mesh", "failed", "glb_empty.glb", "zero bytes")
    add("glb_bad_magic.glb", b"glTX" + good_glb[4:], "mesh", "failed", "glb_bad_magic.glb", "magic glTX")
    add("glb_header_only.glb", good_glb[:12], "mesh", "failed", "glb_header_only.glb", "12-byte header, no chunk")
    add("glb_bad_version.glb", good_glb[:4] + struct.pack("<I", 1) + good_glb[8:], "mesh", "failed",
        "glb_bad_version.glb", "container version 1")
    add("glb_length_past_file.glb", good_glb[:8] + struct.pack("<I", 1 << 30) + good_glb[12:], "mesh", "failed",
        "glb_length_past_file.glb", "header length 1 GiB, file is small")
    jl = struct.unpack("<I", good_glb[12:16])[0]
    add("glb_json_chunk_past_end.glb", good_glb[:12] + struct.pack("<I", 0x7FFFFFF0) + good_glb[16:], "mesh",
        "failed", "glb_json_chunk_past_end.glb", "JSON chunk length past the file")
    add("glb_json_not_json.glb", glb(None, gbin, json_bytes=b"{not json"), "mesh", "failed",
        "glb_json_not_json.glb", "JSON chunk is not JSON")
    add("glb_truncated_bin.glb", good_glb[: 12 + 8 + jl + 8 + 20], "mesh", "failed", "glb_truncated_bin.glb",
        "cut 20 bytes into the BIN chunk")
    add("glb_bin_chunk_huge.glb", good_glb[: 12 + 8 + jl] + struct.pack("<I", 0xFFFFFFF0) + good_glb[12 + 8 + jl + 4:],
        "mesh", "failed", "glb_bin_chunk_huge.glb", "BIN chunk length 4 GiB")
    add("glb_no_bin.glb", glb(gdoc, None), "mesh", "failed", "glb_no_bin.glb",
        "buffer 0 has no uri and there is no BIN chunk")
    add("gltf_not_json.gltf", b"{\"asset\": ", "mesh", "failed", "gltf_not_json.gltf", "truncated JSON")
    add("gltf_empty_object.gltf", b"{}", "mesh", "failed", "gltf_empty_object.gltf", "`{}`: no asset, no mesh")
    add("gltf_no_meshes.gltf", json.dumps({"asset": {"version": "2.0"}}).encode(), "mesh", "failed",
        "gltf_no_meshes.gltf", "an asset with no mesh")

    # --- accessors and indices ---
    def acc(i, **kv):
        def f(d):
            d["accessors"][i].update(kv)
        return f

    def pop(i, key):
        def f(d):
            d["accessors"][i].pop(key, None)
        return f

    add("acc_count_past_view.glb", mutated(acc(0, count=400)), "mesh", "failed", "acc_count_past_view.glb",
        "POSITION count 400, its view holds 4")
    add("acc_huge_no_view.glb", mutated(lambda d: (d["accessors"][0].pop("bufferView"),
                                                   d["accessors"][0].update(count=1 << 28))),
        "mesh", "failed", "acc_huge_no_view.glb", "POSITION count 2^28 without a bufferView (all zeros)")
    add("acc_bad_component_type.glb", mutated(acc(0, componentType=5999)), "mesh", "failed",
        "acc_bad_component_type.glb", "POSITION componentType 5999")
    add("acc_position_u8.glb", mutated(acc(0, componentType=5121)), "mesh", "failed", "acc_position_u8.glb",
        "POSITION as UNSIGNED_BYTE")
    add("acc_position_vec2.glb", mutated(acc(0, type="VEC2")), "mesh", "failed", "acc_position_vec2.glb",
        "POSITION as VEC2")
    add("acc_bad_type.glb", mutated(acc(1, type="VEC9")), "mesh", "failed", "acc_bad_type.glb",
        "TEXCOORD_0 type VEC9")
    add("acc_negative_count.glb", mutated(acc(0, count=-1)), "mesh", "failed", "acc_negative_count.glb",
        "count -1")
    add("acc_offset_huge.glb", mutated(acc(0, byteOffset=2**53)), "mesh", "failed", "acc_offset_huge.glb",
        "byteOffset 2^53")
    add("acc_index_missing.glb", mutated(lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(
        POSITION=42)), "mesh", "failed", "acc_index_missing.glb", "POSITION names accessor 42 of 3")
    add("idx_out_of_range.glb", glb(*base_mesh(indices=[0, 1, 2, 0, 2, 1000])), "mesh", "failed",
        "idx_out_of_range.glb", "an index 1000 with 4 vertices")
    add("idx_float.glb", mutated(acc(2, componentType=5126, count=1)), "mesh", "failed", "idx_float.glb",
        "indices as FLOAT")
    add("idx_not_triangles.glb", glb(*base_mesh(indices=[0, 1, 2, 3])), "mesh", "policy",
        "idx_not_triangles.glb", "4 indices: not a multiple of 3")
    add("view_past_buffer.glb", mutated(lambda d: d["bufferViews"][0].update(byteLength=1 << 20)), "mesh",
        "failed", "view_past_buffer.glb", "bufferView 1 MiB in a small buffer")
    add("view_bad_buffer.glb", mutated(lambda d: d["bufferViews"][0].update(buffer=5)), "mesh", "failed",
        "view_bad_buffer.glb", "bufferView names buffer 5")
    add("view_bad_stride.glb", mutated(lambda d: d["bufferViews"][0].update(byteStride=3)), "mesh", "failed",
        "view_bad_stride.glb", "byteStride 3 for a VEC3 float accessor")
    add("buffer_length_huge.glb", mutated(lambda d: d["buffers"][0].update(byteLength=1 << 40)), "mesh",
        "failed", "buffer_length_huge.glb", "buffer byteLength 1 TiB")

    # --- URIs ---
    esc = "outside"
    add("uri_dotdot_png.gltf", image_uri_mesh("../hostile-secret.png"), "mesh", "failed", esc,
        "image uri ../hostile-secret.png (a valid PNG the test puts there)")
    add("uri_dotdot_txt.gltf", image_uri_mesh("../hostile-secret.txt"), "mesh", "failed", esc,
        "image uri ../hostile-secret.txt")
    add("uri_absolute.gltf", image_uri_mesh("/etc/hostname"), "mesh", "failed", "uri_absolute.gltf",
        "image uri /etc/hostname")
    add("uri_file_scheme.gltf", image_uri_mesh("file:///etc/hostname"), "mesh", "failed", "scheme",
        "image uri file:///etc/hostname")
    add("uri_http_scheme.gltf", image_uri_mesh("http://127.0.0.1:9/x.png"), "mesh", "failed", "scheme",
        "image uri http://127.0.0.1:9/x.png")
    add("uri_pct_dotdot.gltf", image_uri_mesh("%2e%2e/hostile-secret.png"), "mesh", "failed",
        "uri_pct_dotdot.gltf", "image uri %2e%2e/hostile-secret.png")
    add("uri_pct_slash.gltf", image_uri_mesh("..%2fhostile-secret.png"), "mesh", "failed", "uri_pct_slash.gltf",
        "image uri ..%2fhostile-secret.png")
    add("uri_backslash.gltf", image_uri_mesh("..\\hostile-secret.png"), "mesh", "failed", "uri_backslash.gltf",
        "image uri ..\\hostile-secret.png")
    add("uri_deep_dotdot.gltf", image_uri_mesh("a/../../hostile-secret.png"), "mesh", "failed",
        "uri_deep_dotdot.gltf", "image uri a/../../hostile-secret.png")
    add("uri_missing_file.gltf", image_uri_mesh("not-here.png"), "mesh", "failed", "not-here.png",
        "image uri names a file that does not exist")
    add("uri_folder.gltf", image_uri_mesh("."), "mesh", "failed", "uri_folder.gltf", "image uri `.` (a folder)")
    add("uri_bad_base64.gltf", image_uri_mesh("data:image/png;base64,!!!not base64!!!"), "mesh", "failed",
        "uri_bad_base64.gltf", "data URI with invalid base64")
    bdoc, bbin = base_mesh()
    bdoc["buffers"][0]["uri"] = "../hostile-secret.txt"
    add("buffer_uri_dotdot.gltf", gltf_external(bdoc, bbin, None), "mesh", "failed", esc,
        "buffer uri ../hostile-secret.txt")
    bdoc["buffers"][0]["uri"] = "file:../hostile-secret.txt"
    add("buffer_uri_file_scheme.gltf", gltf_external(bdoc, bbin, None), "mesh", "failed", "scheme",
        "buffer uri file:../hostile-secret.txt")

    # --- geometry ---
    nan, inf = float("nan"), float("inf")
    add("nan_positions.glb", glb(*base_mesh(positions=[nan, 0, 0, 1, nan, 0, 1, 1, nan, 0, 1, 0])), "mesh",
        "policy", "nan_positions.glb", "NaN in POSITION")
    add("inf_positions.glb", glb(*base_mesh(positions=[inf, 0, 0, 1, -inf, 0, 1, 1, 0, 0, 1, 0])), "mesh",
        "policy", "inf_positions.glb", "+-inf in POSITION")
    add("nan_uvs.glb", glb(*base_mesh(uvs=[nan, 1, 1, nan, 1, 0, inf, 0])), "mesh", "policy", "nan_uvs.glb",
        "NaN and inf in TEXCOORD_0")
    add("zero_area.glb", glb(*base_mesh(positions=[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), "mesh", "policy",
        "zero_area.glb", "every vertex at the origin: zero-area triangles")
    add("no_material.glb", glb(*base_mesh(material=False)), "mesh", "policy", "no_material.glb",
        "a primitive without material")
    add("image_uri_and_view.glb", mutated(lambda d: d["images"][0].update(uri="good_1x1.png")), "mesh",
        "policy", "image_uri_and_view.glb", "an image with both uri and bufferView")
    add("texture_index_missing.glb", mutated(lambda d: d["materials"][0]["pbrMetallicRoughness"]
                                             ["baseColorTexture"].update(index=9)), "mesh", "failed",
        "texture_index_missing.glb", "baseColorTexture names texture 9 of 1")
    add("texture_no_source.glb", mutated(lambda d: d["textures"][0].pop("source")), "mesh", "policy",
        "texture_no_source.glb", "a texture without source")
    add("image_view_garbage.glb", glb(*base_mesh(tex=b"\x89PNG\r\n\x1a\n" + b"\x00" * 60)), "mesh", "failed",
        "image_view_garbage.glb", "embedded image is a PNG signature and zeros")
    add("image_view_bomb.glb", glb(*base_mesh(tex=png(100000, 100000, ihdr_only=True))), "mesh", "failed",
        "pixels", "embedded image IHDR 100000x100000")
    add("no_texcoord.glb", mutated(lambda d: d["meshes"][0]["primitives"][0]["attributes"].pop("TEXCOORD_0")),
        "mesh", "failed", "no_texcoord.glb", "textured material, no TEXCOORD_0")
    add("texcoord_set_7.glb", mutated(lambda d: d["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]
                                      .update(texCoord=7)), "mesh", "failed", "texcoord_set_7.glb",
        "baseColorTexture texCoord 7, only TEXCOORD_0 exists")

    # --- scene graph ---
    def nodes(ns, scene_nodes=(0,)):
        def f(d):
            d["nodes"] = ns
            d["scenes"] = [{"nodes": list(scene_nodes)}]
        return f

    add("node_cycle.glb", mutated(nodes([{"mesh": 0, "children": [1]}, {"children": [0]}])), "mesh", "failed",
        "node_cycle.glb", "node 0 -> 1 -> 0")
    add("node_self_child.glb", mutated(nodes([{"mesh": 0, "children": [0]}])), "mesh", "failed",
        "node_self_child.glb", "node 0 is its own child")
    add("node_bad_child.glb", mutated(nodes([{"mesh": 0, "children": [99]}])), "mesh", "failed",
        "node_bad_child.glb", "child 99 of 1 node")
    add("node_bad_mesh.glb", mutated(nodes([{"mesh": 5}])), "mesh", "failed", "node_bad_mesh.glb",
        "node names mesh 5 of 1")
    add("scene_bad_node.glb", mutated(nodes([{"mesh": 0}], scene_nodes=(7,))), "mesh", "failed",
        "scene_bad_node.glb", "scene names node 7 of 1")
    # A DAG: node i has 16 children, all node i+1; 9 levels = 16^8 instances of the quad.
    dag = [{"children": [i + 1] * 16} for i in range(8)] + [{"mesh": 0}]
    add("instancing_bomb.glb", mutated(nodes(dag)), "mesh", "failed", "instancing_bomb.glb",
        "node DAG: 16^8 instances of one mesh")
    add("node_nan_matrix.glb", mutated(nodes([{"mesh": 0, "scale": [nan, 1, 1]}])), "mesh", "policy",
        "node_nan_matrix.glb", "node scale written as a bare NaN: not JSON")

    # --- the run manifest and what each row should end as ---
    lines = ["id,path,label,kind"]
    for name, kind, _, _, _ in ENTRIES:
        lines.append("%s,%s,%s,%s" % (os.path.splitext(name)[0].replace(".", "_"), name, "thing", kind))
    with open(os.path.join(OUT, "manifest.csv"), "w", newline="\n") as f:
        f.write("\n".join(lines) + "\n")

    expected = {}
    for name, kind, outcome, err, what in ENTRIES:
        e = {"kind": kind, "outcome": outcome, "error": err, "what": what}
        if kind == "mesh":
            e["depth_outcome"], e["depth_error"] = ("failed", DEPTH[name]) if name in DEPTH else (outcome, err)
        expected[name] = e
    with open(os.path.join(OUT, "expected.json"), "w", newline="\n") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")

    # --- hostile manifests and recipes (for `texaug validate`) ---
    m = os.path.join(OUT, "manifests")
    os.makedirs(m)
    with open(os.path.join(m, "bom_crlf.csv"), "wb") as f:
        f.write(b"\xef\xbb\xbfid,path,label,kind\r\napple,../good_apple.png,apple,image\r\n"
                b"quad,../good_quad.glb,quad,mesh\r\n")
    with open(os.path.join(m, "duplicate_ids.csv"), "wb") as f:
        f.write(b"id,path,label\napple,../good_apple.png,apple\napple,../good_1x1.png,dot\n")
    r = os.path.join(OUT, "recipes")
    os.makedirs(r)
    base = ('name = "hostile"\nseed = 1\n\n[sources]\nmanifest = "../manifests/bom_crlf.csv"\n\n'
            '[model]\npath = "MODEL"\n\n[devices]\nuse = "cpu"\n\n[[stage]]\nkind = "style"\n'
            'prompts = ["a {label}"]\nstrength = 0.5\nsteps = 2\nguidance = GUIDANCE\nsize = 64\n')
    recipes = {
        "unknown_key.toml": base.replace("GUIDANCE", "2.0").replace("size = 64\n", "size = 64\nstepz = 3\n"),
        "wrong_type.toml": base.replace("GUIDANCE", "2.0").replace("steps = 2", 'steps = "two"'),
        "nan_guidance.toml": base.replace("GUIDANCE", "nan"),
        "inf_guidance.toml": base.replace("GUIDANCE", "inf"),
    }
    for n, t in recipes.items():
        with open(os.path.join(r, n), "w", newline="\n") as f:
            f.write(t)

    write_readme()


def write_readme():
    with open(os.path.join(OUT, "expected.json")) as f:
        expected = json.load(f)
    out = ["# The hostile corpus", "",
           "Generated by `python3 ci/hostile/make_corpus.py` (deterministic, stdlib only); do not edit by hand.",
           "`tests/e2e_hostile.rs` copies this folder into a temp dir beside `hostile-secret.txt` and",
           "`hostile-secret.png` (the targets of the escaping URIs), runs `texaug run` over `manifest.csv` (style",
           "stage, tiny SD 1.x model; then the depth stage over the meshes, tiny SD 2-depth) and checks every row against",
           "`expected.json`: its outcome, and for a failure a fragment its error must contain; every error must also",
           "name its file. No secret byte may reach an output file or error. The style stage never reads geometry,",
           "so a mesh whose only fault is its geometry finishes there and fails in the depth stage.",
           "", "| file | what it is | style stage | depth stage (meshes) |", "|---|---|---|---|"]
    for name in sorted(expected):
        e = expected[name]
        def res(o, err):
            return "ok" if o == "ok" else "failed: `%s`" % err.replace("|", "\\|")
        depth = res(e["depth_outcome"], e["depth_error"]) if "depth_outcome" in e else "—"
        out.append("| `%s` | %s | %s | %s |" % (name, e["what"].replace("|", "\\|"), res(e["outcome"], e["error"]),
                                                depth))
    out += ["", "`manifests/` and `recipes/` are for `texaug validate`:", "",
            "| file | expected |", "|---|---|",
            "| `manifests/bom_crlf.csv` | a UTF-8 BOM and CRLF line endings: reads like any CSV (validate exit 0) |",
            "| `manifests/duplicate_ids.csv` | validate exit 1: ``duplicate id `apple` (first at line 2)``, at line 3 |",
            "| `recipes/unknown_key.toml` | validate exit 1: unknown key `stepz`, at file:line:col |",
            "| `recipes/wrong_type.toml` | validate exit 1: `invalid type: string \"two\", expected u32`, at file:line:col |",
            "| `recipes/nan_guidance.toml` | validate exit 1: guidance NaN refused, at file:line:col |",
            "| `recipes/inf_guidance.toml` | validate exit 1: guidance inf refused, at file:line:col |",
            "", "The recipes' `MODEL` is replaced by the test with its tiny model's folder.", ""]
    with open(os.path.join(OUT, "README.md"), "w", newline="\n") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
