"""Reads a `texaug export` folder back with the readers its users have and prints a JSON summary on stdout.

    python ci/check_export.py EXPORT_DIR FORMAT [RUN_OUTPUT]

FORMAT is imagefolder, coco, yolo, webdataset or hf-parquet. With RUN_OUTPUT (the folder `texaug run` wrote), COCO
annotations are checked against the run's own mask PNGs: annToMask equal to the mask, the box equal to its extent,
the area equal to its pixel count. Any failed check raises (non-zero exit); tests/e2e_export.rs asserts on the
summary.
"""

import contextlib
import glob
import json
import os
import sys
import tempfile

# Local folders only: never the Hub, and a cache of our own so no earlier export is read back instead.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="texaug-check-export-")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def split_summary(rows, labels, sample_ids, **extra):
    return dict(rows=rows, labels=sorted(set(labels)), sample_ids=sample_ids, **extra)


def check_hf(ds):
    out = {}
    for split, d in ds.items():
        ids, labels, boxes, masks = [], [], 0, 0
        for row in d:
            img = row["image"]
            assert isinstance(img, Image.Image), (split, type(img))
            assert img.size == (row["width"], row["height"]), (row["sample_id"], img.size)
            ids.append(row["sample_id"])
            labels.append(row["label"])
            if row.get("has_bbox", row.get("bbox_w") is not None):
                boxes += 1
            mask = row.get("mask")
            if mask is not None:
                assert isinstance(mask, Image.Image) and mask.size == img.size, row["sample_id"]
                masks += 1
        assert ids == sorted(ids), f"{split} is not in sample-id order"
        out[split] = split_summary(len(d), labels, ids, boxes=boxes, masks=masks)
    return out


def imagefolder(root, _run):
    import datasets

    ds = datasets.load_dataset("imagefolder", data_dir=root)
    for d in ds.values():
        assert d.features["label"].dtype == "string", d.features
    return dict(splits=check_hf(ds), features=sorted(next(iter(ds.values())).features))


def hf_parquet(root, _run):
    import datasets

    files = {}
    for path in sorted(glob.glob(os.path.join(root, "data", "*.parquet"))):
        split = os.path.basename(path).split("-")[0]
        files.setdefault(split, []).append(path)
    ds = datasets.load_dataset("parquet", data_files=files)
    features = next(iter(ds.values())).features
    assert isinstance(features["image"], datasets.Image), features
    assert isinstance(features["mask"], datasets.Image), features
    return dict(splits=check_hf(ds), features=sorted(features), files={k: len(v) for k, v in files.items()})


def coco(root, run):
    from pycocotools.coco import COCO

    out, checked = {}, 0
    for path in sorted(glob.glob(os.path.join(root, "annotations", "instances_*.json"))):
        split = os.path.basename(path)[len("instances_") : -len(".json")]
        c = COCO(path)
        names = {cat["id"]: cat["name"] for cat in c.loadCats(c.getCatIds())}
        assert sorted(names) == list(range(1, len(names) + 1)), names
        assert list(names.values()) == sorted(names.values()), names
        ids, labels = [], []
        for img in c.loadImgs(sorted(c.getImgIds())):
            with Image.open(os.path.join(root, "images", split, img["file_name"])) as im:
                assert im.size == (img["width"], img["height"]), img
            ids.append(img["sample_id"])
            labels.append(img["label"])
            for ann in c.loadAnns(c.getAnnIds(imgIds=[img["id"]])):
                assert names[ann["category_id"]] == img["label"], (ann["category_id"], img)
                m = c.annToMask(ann)
                assert m.shape == (img["height"], img["width"]), m.shape
                ys, xs = np.nonzero(m)
                extent = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
                assert ann["bbox"] == extent, (ann["bbox"], extent)
                assert ann["area"] == int(m.sum()), (ann["area"], int(m.sum()))
                if run:
                    sid = img["sample_id"]
                    png = os.path.join(run, "samples", sid[:2], sid, "mask.png")
                    want = (np.asarray(Image.open(png).convert("L")) >= 128).astype(np.uint8)
                    assert np.array_equal(m, want), f"annToMask differs from {png}"
                    checked += 1
        assert ids == sorted(ids), f"{split} is not in sample-id order"
        out[split] = split_summary(len(ids), labels, ids, annotations=len(c.getAnnIds()))
    return dict(splits=out, categories=sorted(names.values()), masks_checked=checked)


def yolo(root, _run):
    import yaml

    with open(os.path.join(root, "data.yaml")) as f:
        data = yaml.safe_load(f)
    names = data["names"]
    assert sorted(names) == list(range(len(names))), names
    base = data["path"]
    assert os.path.isdir(base), base
    out = {}
    for split in ("train", "val", "test"):
        if split not in data or not os.path.isdir(os.path.join(base, "images", split)):
            continue
        images = sorted(os.listdir(os.path.join(base, data[split])))
        ids, labels, boxes = [], [], 0
        for name in images:
            sid = name.split(".")[0]
            with Image.open(os.path.join(base, data[split], name)) as im:
                im.load()
            with open(os.path.join(base, "labels", split, sid + ".txt")) as f:
                lines = [l.split() for l in f.read().splitlines() if l.strip()]
            for cls, *xywh in lines:
                assert int(cls) in names, cls
                vals = [float(v) for v in xywh]
                assert len(vals) == 4 and all(0.0 <= v <= 1.0 for v in vals), vals
                labels.append(names[int(cls)])
                boxes += 1
            ids.append(sid)
        out[split] = split_summary(len(images), labels, ids, boxes=boxes)
    return dict(splits=out, names=[names[i] for i in range(len(names))])


def webdataset(root, _run):
    import webdataset as wds

    out = {}
    shards = sorted(glob.glob(os.path.join(root, "*.tar")))
    for split in sorted({os.path.basename(s).split("-")[0] for s in shards}):
        urls = [s for s in shards if os.path.basename(s).startswith(split + "-")]
        ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil")
        ids, labels, masks = [], [], 0
        for sample in ds:
            meta = sample["json"]
            img = sample.get("png", sample.get("jpg"))
            assert isinstance(img, Image.Image), sorted(sample)
            assert img.size == (meta["width"], meta["height"]), (meta["sample_id"], img.size)
            assert sample["__key__"] == meta["sample_id"], sample["__key__"]
            if "mask.png" in sample:
                assert sample["mask.png"].size == img.size
                masks += 1
            ids.append(meta["sample_id"])
            labels.append(meta["label"])
        assert ids == sorted(ids), f"{split} is not in sample-id order"
        out[split] = split_summary(len(ids), labels, ids, masks=masks, shards=len(urls))
    return dict(splits=out)


def main():
    root, fmt = sys.argv[1], sys.argv[2]
    run = sys.argv[3] if len(sys.argv) > 3 else None
    check = {
        "imagefolder": imagefolder,
        "hf-parquet": hf_parquet,
        "coco": coco,
        "yolo": yolo,
        "webdataset": webdataset,
    }[fmt]
    # pycocotools and others print progress on stdout, which must hold the summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        summary = check(root, run)
    summary["format"] = fmt
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
