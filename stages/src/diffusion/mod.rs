//! Stable Diffusion in tch, one component per file as diffusers names them. `nn::Path` names mirror the
//! checkpoint keys so diffusers safetensors load as they are.

pub mod attention;
pub mod clip;
pub mod component_load;
pub mod config;
pub mod controlnet;
pub mod embeddings;
pub mod error;
pub mod hub;
pub mod image_tensors;
pub mod img2img;
pub mod inpaint;
pub mod layers;
pub mod lora;
pub mod mapped;
pub mod model_dir;
pub mod noise;
pub mod pipeline_source;
pub mod prompt_encoder;
pub mod request;
pub mod resnet;
pub mod schedulers;
pub mod single_file;
pub mod text_time;
pub mod textual_inversion;
pub mod tiny;
pub mod tiny_files;
pub mod tiny_xl;
pub mod tokenizer;
pub mod unet;
pub mod unet_blocks;
pub mod unet_config;
pub mod vae;
pub mod view_sync;
pub mod weights;
pub mod xl;
