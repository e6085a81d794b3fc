# texaug — two commands on a fresh machine:
#   make demo    install libtorch on first use, build, make tiny models, run recipes/demo.toml and demo-depth.toml
#   make test    install what the tests need on first use, run every test
# Everything fetched goes to $(TEXAUG_CACHE) (default ~/.cache/texaug), so a second call starts at once.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export TEXAUG_CACHE ?= $(HOME)/.cache/texaug
TORCH_FLAVOR ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo cuda || echo cpu)
export TEXAUG_TORCH := $(TORCH_FLAVOR)
export LIBTORCH := $(TEXAUG_CACHE)/libtorch-2.11.0-$(TORCH_FLAVOR)
export TEXAUG_CLIP_VOCAB := $(TEXAUG_CACHE)/clip/bpe_simple_vocab_16e6.txt.gz
PYCHECK := $(TEXAUG_CACHE)/pycheck/bin/python
VALIDATOR := ci/gltf-validator/node_modules/.installed

TEXAUG := target/release/texaug
TINY_MODEL := output/models/tiny-sd1
TINY_DEPTH_MODEL := output/models/tiny-sd2-depth
TINY_INPAINT_MODEL := output/models/tiny-sd1-inpaint
TINY_CLIP := output/models/tiny-clip

.PHONY: help setup build dist demo test lint fmt bench bench-cpu bench-gpu-dry bench-merge container-check soak fuzz fuzz-seed fixtures fullsize-check clean-output

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(LIBTORCH)/.complete:
	bash ci/setup-libtorch.sh >/dev/null

$(TEXAUG_CLIP_VOCAB):
	bash ci/setup-vocab.sh >/dev/null

# Rerun when the list changes: the script rebuilds an environment made from another list, else returns at once.
$(PYCHECK): ci/pycheck-requirements.txt ci/setup-pycheck.sh
	bash ci/setup-pycheck.sh >/dev/null

$(VALIDATOR): ci/gltf-validator/package.json
	@if command -v npm >/dev/null; then \
	    (cd ci/gltf-validator && npm ci --no-audit --no-fund --loglevel=error) && touch $@; \
	else echo "npm not found: install Node.js (apt-get install nodejs npm) for the glTF-Validator test" >&2; exit 1; fi

setup: $(LIBTORCH)/.complete $(TEXAUG_CLIP_VOCAB)  ## install libtorch 2.11 and the CLIP vocabulary (first use only)

build: setup  ## release binary at target/release/texaug
	cargo build --release --locked -p texaug-pipeline

dist: build $(TEXAUG_CLIP_VOCAB)  ## dist/texaug-<version>-<cpu|cuda>-linux-x86_64.tar.gz: binary, its libtorch, the vocabulary, the demo
	bash ci/dist/build.sh

container-check:  ## build ci/dist/Dockerfile's image from the bundle (make dist first) and run the demo in it
	bash ci/dist/container-check.sh

bench-merge: build  ## journal append rate and a 1,000,000-row merge of synthetic rows (MERGE_ROWS to change)
	rm -rf bench/out/merge && $(TEXAUG) dev bench-merge bench/out/merge --rows $(MERGE_ROWS) --shards 16

MERGE_ROWS ?= 1000000

$(TINY_MODEL)/model_index.json: | build
	$(TEXAUG) model init-tiny --kind sd1 --out $(TINY_MODEL)

$(TINY_DEPTH_MODEL)/model_index.json: | build
	$(TEXAUG) model init-tiny --kind sd2-depth --out $(TINY_DEPTH_MODEL)

$(TINY_INPAINT_MODEL)/model_index.json: | build
	$(TEXAUG) model init-tiny --kind sd1-inpaint --out $(TINY_INPAINT_MODEL)

$(TINY_CLIP)/config.json: | build
	$(TEXAUG) model init-tiny --kind clip --out $(TINY_CLIP)

demo: build $(TINY_MODEL)/model_index.json $(TINY_DEPTH_MODEL)/model_index.json $(TINY_INPAINT_MODEL)/model_index.json $(TINY_CLIP)/config.json  ## run recipes/demo.toml, demo-depth.toml, inpaint.toml and demo-dataset.toml into output/
	$(TEXAUG) run recipes/demo.toml --resume
	$(TEXAUG) inspect output/demo
	$(TEXAUG) run recipes/demo-depth.toml --resume
	$(TEXAUG) inspect output/demo-depth
	$(TEXAUG) run recipes/inpaint.toml --resume
	$(TEXAUG) inspect output/inpaint
	$(TEXAUG) run recipes/demo-dataset.toml --resume
	$(TEXAUG) inspect output/demo-dataset
	$(TEXAUG) export output/demo-dataset --format coco
	$(TEXAUG) report output/demo-dataset
	@echo "texaug: open output/demo-dataset/report/index.html for the contact sheet"

# Tests run in the release profile: they reuse every dependency `make build` compiled (one dependency tree, not
# two), and the numeric tests run optimized.
test: setup $(PYCHECK) $(VALIDATOR)  ## run every test (unit, parity against diffusers, end to end)
	TEXAUG_PYTHON_CHECK=1 TEXAUG_PYTHON=$(PYCHECK) TEXAUG_REQUIRE_GLTF_VALIDATOR=1 TEXAUG_REQUIRE_SLURM=1 TEXAUG_REQUIRE_CHROMIUM=1 \
	    cargo test --workspace --locked --release

lint: setup  ## rustfmt and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked --release -- -D warnings

fmt:
	cargo fmt --all

bench: build  ## benchmarks (the raster/bake ones, then bench-cpu); figures go to bench/RESULTS.md
	cargo bench --workspace --locked
	bash bench/cpu_vs_diffusers.sh

bench-gpu-dry: build  ## bench/gpu.sh's whole run on the CPU at toy sizes (the GPU half: see bench/RESULTS.md)
	BENCH_GPU_DRY=1 OUT=bench/out/gpu-dry bash bench/gpu.sh run bench/out/gpu-pack

bench-cpu: build  ## texaug vs diffusers on the CPU, SD 1.5 architecture, 256², 10 steps (~15 min; figures for bench/RESULTS.md)
	bash bench/cpu_vs_diffusers.sh

soak: build $(TINY_MODEL)/model_index.json  ## soak benchmark: 10,000 tiny-model samples, RSS every second (SOAK_N to change)
	bash bench/soak.sh $(SOAK_N)

SOAK_N ?= 10000
FUZZ_MINUTES ?= 10
FUZZ_TARGETS ?= mesh image depth_image manifest_csv manifest_jsonl manifest_parquet recipe

fuzz: setup  ## fuzz each target FUZZ_MINUTES (default 10) under AFL++ (afl.rs); crashes go to fuzz/crashes/
	bash ci/fuzz/run.sh $(FUZZ_MINUTES) $(FUZZ_TARGETS)

fuzz-seed: $(PYCHECK)  ## re-seed fuzz/corpus from the hostile corpus, demo data, manifests and recipes
	$(PYCHECK) ci/fuzz/seed.py

fixtures:  ## regenerate tests/fixtures with diffusers (needs Python and network to PyPI)
	python3 -m venv $(TEXAUG_CACHE)/reference && $(TEXAUG_CACHE)/reference/bin/pip install -q -r ci/reference/requirements.txt
	$(TEXAUG_CACHE)/reference/bin/python ci/reference/make_fixtures.py --out tests/fixtures

fullsize-check: setup  ## SD 1.5 / SD 2.1 / SDXL sized networks and single files with random weights against diffusers (slow, ~22 GB)
	python3 -m venv $(TEXAUG_CACHE)/reference && $(TEXAUG_CACHE)/reference/bin/pip install -q -r ci/reference/requirements.txt
	$(TEXAUG_CACHE)/reference/bin/python ci/reference/fullsize.py --out $(TEXAUG_CACHE)/fullsize
	TEXAUG_FULLSIZE_DIR=$(TEXAUG_CACHE)/fullsize cargo test --release --locked -p texaug-stages --test parity_networks fullsize -- --ignored --nocapture
	TEXAUG_FULLSIZE_DIR=$(TEXAUG_CACHE)/fullsize cargo test --release --locked -p texaug-stages --test single_file fullsize -- --ignored --nocapture
	TEXAUG_FULLSIZE_DIR=$(TEXAUG_CACHE)/fullsize cargo test --release --locked -p texaug-stages --test parity_xl fullsize -- --ignored --nocapture

clean-output:  ## remove output/ (keeps the folder)
	find output -mindepth 1 -not -name .gitkeep -delete
