//! The command line. `--help` is the user's first manual, so every command carries examples.

use crate::engine::progress::ProgressMode;
use crate::export::ExportFormat;
use crate::plan::shard::ShardArg;
use crate::report::thumbs::ThumbProgress;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  texaug model init-tiny --kind sd1 --out output/models/tiny-sd1   # a tiny random model, for trying things
  texaug validate recipes/demo.toml           # every problem, as file:line:col, with a fix
  texaug plan recipes/demo.toml               # the jobs a run would make
  texaug run recipes/demo.toml --progress bar
  texaug run recipes/demo.toml --shard 0/4 --resume
  texaug merge /scratch/demo-0 /scratch/demo-1 --out output/demo-merged
  texaug inspect output/demo
  texaug report output/demo                   # HTML contact sheet: output/demo/report/index.html

Exit codes: 0 ok, 1 usage or validation error, 2 some samples failed (their rows say why).";

/// Re-texture meshes and images with Stable Diffusion, as a reproducible batch pipeline.
///
/// A recipe (TOML) names the sources, the model and the stages; `texaug run` turns every source into
/// variants under `output/<name>/samples/<sample_id>/` and records each sample in a Parquet manifest.
#[derive(Debug, Parser)]
#[command(name = "texaug", version, after_help = EXAMPLES, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a recipe: make every planned sample (or this shard's) and record it in the manifest.
    #[command(after_help = "\
Examples:
  texaug run recipes/demo.toml
  texaug run recipes/demo.toml --devices cuda:0,cuda:1 --progress json
  texaug run recipes/big.toml --shard 3/16 --resume      # one task of a job array
  texaug run recipes/big.toml --shard auto --resume      # the same, its shard from SLURM_ARRAY_TASK_ID
  texaug run recipes/demo.toml --output /scratch/demo --fail-fast

A killed run loses at most the samples in flight: run again with --resume.")]
    Run(RunArgs),
    /// Print the jobs a run would make (sample_id, source, stage, variant, seed, prompt, strength).
    #[command(after_help = "\
Examples:
  texaug plan recipes/demo.toml
  texaug plan recipes/demo.toml --shard 1/4 --format jsonl
  texaug plan recipes/demo.toml --shards 16 | tail -17     # every shard's size")]
    Plan(PlanArgs),
    /// Check a recipe, its source manifest, the source files and the model; list every problem.
    #[command(after_help = "\
Every problem is printed as `file:line:col: message` followed by how to fix it; exit code 1 if any.

Example:
  texaug validate recipes/demo.toml")]
    Validate(ValidateArgs),
    /// Summarize an output folder: counts per label, stage and status, and every failure with its error.
    #[command(after_help = "Example:\n  texaug inspect output/demo")]
    Inspect(InspectArgs),
    /// Write an HTML contact sheet of an output folder: counts, failures, thumbnails, turntables, the recipe.
    #[command(after_help = "\
Examples:
  texaug report output/demo                  # then open output/demo/report/index.html
  texaug report output/demo-dataset --max-per-cell 4 --progress none
  (cd output && zip -r demo-report.zip demo/report demo/samples)   # the page links samples/ relatively

The page is one self-contained file (inline CSS and SVG, no network) beside OUT/report/thumbs/ (each image at most
160 px); a thumbnail links its full image under OUT/samples/. It shows the counts per stage and label, every
failure with its error, a grid of thumbnails (rows: labels, columns: stage and variant), a turntable strip per
rendered mesh (its views by azimuth, the object's box drawn on each), CLIP-score histograms when the rows have
scores, and the recipe. A path in the manifest that would leave OUT is listed as a failure, never opened.
OUT/report/ is built aside and renamed into place, replacing an earlier report.")]
    Report(ReportArgs),
    /// Merge the outputs of several shards into one folder (samples and one manifest, deduplicated).
    #[command(after_help = "\
Examples:
  texaug merge output/demo --out output/demo-merged          # all shards of one output folder
  texaug merge /scratch/a /scratch/b --out output/demo --copy --recipe recipes/demo.toml

Every sample of the recipe's plan must be there exactly once, made by that recipe and one model; a missing one is
listed with its shard (exit 1, or --allow-missing). The destination is built next to --out and renamed into place,
so it is complete or absent; an earlier merge there is replaced, so merge again when late shards arrive.")]
    Merge(MergeArgs),
    /// Export an output folder as a training set: Hugging Face ImageFolder or Parquet, COCO, YOLO, WebDataset.
    #[command(after_help = "\
Examples:
  texaug export output/demo-dataset --format coco              # → output/demo-dataset/export/coco
  texaug export output/demo-dataset --format imagefolder --val-ratio 0.2 --seed 7
  texaug export output/demo-dataset --format webdataset --shard-size 500 --out /data/demo-wds
  texaug export output/demo-dataset --format hf-parquet --progress json

Every ok sample with an image is exported (mesh rows hold only a GLB; their rendered views are exported), in
sample-id order, so exporting twice gives the same bytes. The split is the source manifest's `split` column where
it has one, else drawn from a hash of the source id and --seed: every view and variant of one object lands in the
same split. The folder is built beside --out and renamed into place; an earlier export there is replaced.

Readers: datasets.load_dataset(\"imagefolder\", data_dir=DIR), pycocotools COCO(DIR/annotations/instances_train.json),
Ultralytics YOLO(...).train(data=DIR/data.yaml), webdataset.WebDataset(DIR/train-000000.tar),
datasets.load_dataset(\"parquet\", data_files=DIR/data/train-*.parquet).")]
    Export(ExportArgs),
    /// One img2img call on one image: the quickest way to try a model, prompt and strength.
    #[command(after_help = "\
Examples:
  texaug generate --model models/tiny-sd1 --image in.png --prompt \"a mug carved from oak\" \\
      --strength 0.6 --steps 20 --guidance 7.5 --scheduler ddim --seed 42 --out out.png
  texaug generate --model sd-v1-5-inpainting.safetensors --image in.png --mask background.png \\
      --prompt \"a workshop bench\" --strength 1 --out out.png      # inpaint where the mask is white")]
    Generate(Box<GenerateArgs>),
    /// Model utilities.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Developer utilities (demo data).
    #[command(subcommand, hide = true)]
    Dev(DevCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Make only shard I of N (0-based): whole batches, each given to a shard by a hash of its first sample id.
    /// `auto` reads a Slurm array task (SLURM_ARRAY_TASK_ID and the array's size) or a Kubernetes Indexed Job
    /// pod (JOB_COMPLETION_INDEX, with --shards N).
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<ShardArg>,
    /// With --shard auto in a Kubernetes Indexed Job: the number of shards (the Job's `completions`); default
    /// TEXAUG_SHARDS, or the Slurm array's size.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Devices, overriding the recipe: `auto`, `cpu`, `cuda:0`, or a list `cuda:0,cuda:1`.
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Continue a run into the same output: skip samples the journal holds as done, retry failed ones. Refused
    /// when the journal was written by another recipe (its file edited) or another model (weights, ControlNet or
    /// depth estimator); the message names which.
    #[arg(long)]
    pub resume: bool,
    /// Resume even though the journal was written by another recipe or model (implies --resume): the old samples
    /// are kept beside the new ones, each row's recipe_hash and model_hash saying which made it. Without it,
    /// start a new output with --output DIR.
    #[arg(long)]
    pub force_resume: bool,
    /// How to report progress.
    #[arg(long, value_enum, default_value = "bar")]
    pub progress: ProgressMode,
    /// Stop at the first failed sample (finished samples are kept; run again with --resume).
    #[arg(long)]
    pub fail_fast: bool,
    /// Output folder, overriding the recipe's `output` (default `output/<name>`).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Aligned columns for reading.
    Table,
    /// One JSON object per job, for scripts.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
    /// Only the jobs of this shard (see `texaug run --shard`; `auto` as there).
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<ShardArg>,
    /// The number of shards: with --shard auto as for `texaug run`; alone, every job with its shard of N and
    /// each shard's size.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The recipe (TOML).
    pub recipe: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An output folder of `texaug run` (holds `manifest/` and `samples/`); the page goes to OUT/report/.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// How to report progress over the thumbnails.
    #[arg(long, value_enum, default_value = "bar")]
    pub progress: ThumbProgress,
    /// Thumbnails per grid cell (label × stage variant); the rest are counted, not shown.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_per_cell: usize,
    /// Turntable strips (one per rendered mesh) shown.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_strips: usize,
    /// Failures listed on the page.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub max_failures: usize,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An output folder (holds `manifest/part-*.parquet`).
    pub output: PathBuf,
    /// Print at most this many failures.
    #[arg(long, default_value_t = 50)]
    pub max_failures: usize,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Output folders to merge (each holds `manifest/part-*.parquet` and `samples/`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged folder; must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Copy sample files instead of hard-linking them (hard links fall back to copies across file systems).
    #[arg(long)]
    pub copy: bool,
    /// The recipe the shards ran, whose plan the merge must hold exactly once (default: the one the inputs'
    /// run.toml names).
    #[arg(long, value_name = "RECIPE")]
    pub recipe: Option<PathBuf>,
    /// Merge even when planned samples are missing (they are listed per shard); merge again when they arrive.
    #[arg(long)]
    pub allow_missing: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// An output folder of `texaug run` or `texaug merge` (holds `manifest/` and `samples/`).
    pub output: PathBuf,
    /// The layout to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The export folder (default OUTPUT/export/<format>); an earlier export there is replaced.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the source manifest gives no split: the share of sources (not samples) drawn for validation.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub val_ratio: f64,
    /// The seed of that draw (the same seed, sources and ratio give the same split).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Samples per WebDataset tar, rows per Parquet file.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_size: u64,
    /// How to report progress: bar or JSON events (one per line), on stderr.
    #[arg(long, value_enum, default_value = "bar")]
    pub progress: ProgressMode,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model: a diffusers folder (SD 1.x, 2.x or SDXL), or a single-file checkpoint (.safetensors in the original SD layout).
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// For a single-file --model: the diffusers folder whose configs and tokenizer it uses (default: texaug's
    /// built-in configs of the detected kind).
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// For a single-file --model whose kind cannot be told: sd1, sd1-inpaint, sd2, sd2-v, sd2-depth, sd2-inpaint.
    #[arg(long)]
    pub kind: Option<String>,
    /// A replacement VAE: a diffusers AutoencoderKL folder or one .safetensors file.
    #[arg(long, value_name = "DIR|FILE")]
    pub vae: Option<PathBuf>,
    /// A LoRA (kohya/A1111 or diffusers/PEFT .safetensors) merged at load, with its scale after `@` (default 1);
    /// repeat for several.
    #[arg(long = "lora", value_name = "FILE[@SCALE]")]
    pub loras: Vec<String>,
    /// A textual-inversion embedding whose token the prompts may use; `FILE=TOKEN` names the token (an A1111 file
    /// needs one). Repeat for several.
    #[arg(long = "embedding", value_name = "FILE[=TOKEN]")]
    pub embeddings: Vec<String>,
    /// Input image.
    #[arg(long, value_name = "IN.png")]
    pub image: PathBuf,
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value = "")]
    pub negative: String,
    /// How much to change the image, in (0, 1]: 0.3 keeps the layout, 0.9 nearly ignores it.
    #[arg(long, default_value_t = 0.6)]
    pub strength: f64,
    #[arg(long, default_value_t = 30)]
    pub steps: u32,
    /// Classifier-free guidance scale (<= 1 disables it).
    #[arg(long, default_value_t = 7.5)]
    pub guidance: f64,
    /// ddim | euler | euler_a | dpmpp2m | dpmpp2m_karras | pndm (default: the model's scheduler config).
    #[arg(long)]
    pub scheduler: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run with this long side (multiple of 8); the result is resized back to the input's size.
    #[arg(long)]
    pub size: Option<u32>,
    /// With --size: keep (the aspect: 1920x1080 runs at 512x288), crop (the centred square), pad (the whole
    /// image on a square, cut back after) or stretch (to size x size).
    #[arg(long, default_value = "keep", value_parser = parse_fit)]
    pub fit: texaug_stages::job::Fit,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Depth image for a depth-conditioned model.
    #[arg(long, value_name = "D.png")]
    pub depth: Option<PathBuf>,
    /// ControlNet folder (conditioned on --depth; SD 1.x or SDXL, matching the model).
    #[arg(long, value_name = "DIR")]
    pub controlnet: Option<PathBuf>,
    /// With --controlnet: how strongly the depth steers the result.
    #[arg(long, default_value_t = 1.0)]
    pub conditioning_scale: f64,
    /// SDXL: the `original_size` micro-condition, HEIGHTxWIDTH (default: the image's size)
    #[arg(long, value_name = "HxW", help_heading = "SDXL")]
    pub original_size: Option<String>,
    /// SDXL: the `target_size` micro-condition, HEIGHTxWIDTH (default: the image's size)
    #[arg(long, value_name = "HxW", help_heading = "SDXL")]
    pub target_size: Option<String>,
    /// SDXL: `crops_coords_top_left`, TOPxLEFT (default 0x0)
    #[arg(long, value_name = "TxL", help_heading = "SDXL")]
    pub crop: Option<String>,
    /// SDXL refiner (requires_aesthetics_score): the aesthetic score conditioned on
    #[arg(long, default_value_t = 6.0, help_heading = "SDXL")]
    pub aesthetic_score: f64,
    /// SDXL refiner: the aesthetic score of the negative (unconditional) pass
    #[arg(long, default_value_t = 2.5, help_heading = "SDXL")]
    pub negative_aesthetic_score: f64,
    /// SDXL: start at this fraction of the schedule from the image's latents without adding noise (a refiner
    /// continuing a base model's output); --strength is then unused
    #[arg(long, value_name = "FRACTION", help_heading = "SDXL")]
    pub denoising_start: Option<f64>,
    /// Inpainting mask at the image's size: white repaints, black keeps (grey: ≥ 128 repaints). Needed by an
    /// inpainting model (9 UNet input channels); a plain model keeps the unmasked part by blending. Strength 1
    /// (the inpainting default in diffusers) starts from pure noise.
    #[arg(long, value_name = "MASK.png")]
    pub mask: Option<PathBuf>,
    #[arg(long, value_name = "OUT.png")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Write a tiny random model in diffusers layout (for tests and CI; seconds on a CPU).
    #[command(
        after_help = "Example:\n  texaug model init-tiny --kind sd1 --out output/models/tiny-sd1 --vocab bpe_simple_vocab_16e6.txt.gz"
    )]
    InitTiny(InitTinyArgs),
    /// Say what a model file or folder holds: kind, prediction type, resolution, parameters, dtypes (from headers
    /// only; nothing is loaded).
    #[command(
        after_help = "Examples:\n  texaug model inspect models/dreamshaper_8.safetensors\n  texaug model inspect models/sd-2-depth --json"
    )]
    Inspect(ModelInspectArgs),
    /// Write a diffusers folder as one single-file checkpoint in the original SD layout (for A1111, ComfyUI or
    /// diffusers' from_single_file).
    #[command(
        after_help = "Example:\n  texaug model to-single-file --model output/models/tiny-sd1 --out tiny-sd1.safetensors --dtype fp16"
    )]
    ToSingleFile(ToSingleFileArgs),
    /// Download Stable Diffusion pipelines from the Hugging Face Hub into the shared cache (HF_HUB_CACHE, else
    /// $HF_HOME/hub, else ~/.cache/huggingface/hub), once, before a cluster run: the tasks then read the cache
    /// (run them with HF_HUB_OFFLINE=1) instead of downloading the model once per task. A pipeline already
    /// complete in the cache is not fetched again. Gated repositories need HF_TOKEN; HF_ENDPOINT names a mirror.
    #[command(
        after_help = "Examples:\n  texaug model fetch stable-diffusion-v1-5/stable-diffusion-v1-5\n  \
                      HF_HOME=/shared/hf texaug model fetch stabilityai/stable-diffusion-2-depth@main"
    )]
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Hub ids, `org/name` or `org/name@revision`, as a recipe's `[model] id` names them.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ToSingleFileArgs {
    /// The diffusers folder (SD 1.x/2.x, 2-depth).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    #[arg(long, value_name = "OUT.safetensors")]
    pub out: PathBuf,
    /// keep | fp32 | fp16 | bf16.
    #[arg(long, default_value = "keep")]
    pub dtype: String,
}

#[derive(Debug, Args)]
pub struct ModelInspectArgs {
    /// A single-file checkpoint, a VAE or LoRA file, or a diffusers folder.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TinyKindArg {
    Sd1,
    Sd2,
    Sd2Depth,
    Sd1Inpaint,
    Controlnet,
    /// SDXL base layout: text_encoder + text_encoder_2 (with projection), tokenizer_2, a text_time UNet.
    Sdxl,
    /// The sdxl pipeline with a matching SDXL ControlNet in controlnet/.
    SdxlControlnet,
    /// A transformers CLIPModel (the scorer's model), not a diffusion pipeline.
    Clip,
}

#[derive(Debug, Args)]
pub struct InitTinyArgs {
    #[arg(long, value_enum)]
    pub kind: TinyKindArg,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz); default: TEXAUG_CLIP_VOCAB, else the bundle's
    /// share/texaug/ beside the executable, else $TEXAUG_CACHE/clip/.
    #[arg(long, value_name = "GZ")]
    pub vocab: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write the demo's source images and meshes, and a manifest.csv, into DIR.
    DemoData { dir: PathBuf },
    /// Measure the journal's durable append rate and a merge of synthetic rows (figures for bench/RESULTS.md and
    /// docs/SCALE.md); writes ROWS sample folders under DIR.
    BenchMerge {
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, default_value_t = 16)]
        shards: usize,
        /// Durable journal appends to time first.
        #[arg(long, default_value_t = 20_000)]
        appends: usize,
    },
}

fn parse_fit(s: &str) -> Result<texaug_stages::job::Fit, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shard_parses_from_the_command_line() {
        let cli = Cli::try_parse_from(["texaug", "run", "r.toml", "--shard", "2/5"]).unwrap();
        match cli.command {
            Command::Run(args) => assert_eq!(
                args.shard,
                Some(ShardArg::Fixed(crate::plan::Shard { index: 2, count: 5 }))
            ),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["texaug", "run", "r.toml", "--shard", "5/5"]).is_err());
    }

    #[test]
    fn force_resume_parses() {
        let cli = Cli::try_parse_from(["texaug", "run", "r.toml", "--force-resume"]).unwrap();
        match cli.command {
            Command::Run(args) => assert!(args.force_resume && !args.resume),
            other => panic!("parsed as {other:?}"),
        }
    }
}
