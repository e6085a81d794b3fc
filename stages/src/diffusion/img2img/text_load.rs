//! The pipeline's text side at load: which towers a model has (SD's one; SDXL's two, a refiner's second alone)
//! and whether they fit what its UNet reads.

use tch::Device;

use crate::diffusion::component_load;
use crate::diffusion::error::DiffusionError;
use crate::diffusion::pipeline_source::PipelineSource;
use crate::diffusion::prompt_encoder::{EncodeStyle, PromptEncoder, TextTower};
use crate::diffusion::unet_config::UNet2DConditionConfig;
use crate::diffusion::xl::XlSettings;

/// The text encoders: SD 1/2's one, or SDXL's `text_encoder` (absent in a refiner) and `text_encoder_2` with
/// its projection, checked against what the UNet reads.
pub(super) fn load_text(
    src: &PipelineSource,
    unet_cfg: &UNet2DConditionConfig,
    device: Device,
) -> Result<(PromptEncoder, Option<XlSettings>), DiffusionError> {
    let origin = src.configs.origin("unet/config.json");
    let tower = |component: &'static str, tokenizer: &str, projection: bool| {
        let cfg = src.configs.text_encoder_at(component)?;
        let (net, projection, store) =
            component_load::text_encoder_at(src, component, &cfg, projection, device)?;
        Ok::<_, DiffusionError>(TextTower {
            component,
            tokenizer: src.configs.tokenizer_at(tokenizer)?,
            net,
            projection,
            store,
        })
    };
    if !src.configs.is_xl() {
        if unet_cfg.has_text_time() {
            return Err(DiffusionError::XlShape {
                path: origin,
                why: "the UNet is SDXL's (addition_embed_type \"text_time\") but there is no text_encoder_2"
                    .into(),
            });
        }
        return Ok((
            PromptEncoder {
                towers: vec![tower("text_encoder", "tokenizer", false)?],
                style: EncodeStyle::LastHidden,
            },
            None,
        ));
    }
    let mut towers = Vec::new();
    if src.configs.has("text_encoder/config.json") {
        towers.push(tower("text_encoder", "tokenizer", false)?);
    }
    towers.push(tower("text_encoder_2", "tokenizer_2", true)?);
    let width: i64 = towers.iter().map(|t| t.net.config().hidden_size).sum();
    let projection = towers
        .last()
        .and_then(|t| t.net.config().projection_dim)
        .unwrap_or(0);
    let cross = unet_cfg
        .block_plan()
        .map(|p| p.cross_attention_dim[0])
        .unwrap_or(0);
    let Some((time_dim, in_features)) = unet_cfg.text_time_dims() else {
        return Err(DiffusionError::XlShape {
            path: origin,
            why: "the model has text_encoder_2 (SDXL) but its UNet has no addition_embed_type \"text_time\"".into(),
        });
    };
    let ids = (in_features - projection) / time_dim;
    if cross != width || (in_features - projection) % time_dim != 0 || !(5..=6).contains(&ids) {
        return Err(DiffusionError::XlShape {
            path: origin,
            why: format!(
                "cross_attention_dim {cross} must equal the text encoders' widths ({width}) and \
                 projection_class_embeddings_input_dim {in_features} must be projection_dim {projection} + \
                 5 or 6 × addition_time_embed_dim {time_dim}"
            ),
        });
    }
    let settings = XlSettings::new(ids, src.configs.model_index().as_deref());
    Ok((
        PromptEncoder {
            towers,
            style: EncodeStyle::Xl {
                force_zeros_for_empty_prompt: settings.force_zeros_for_empty_prompt,
            },
        },
        Some(settings),
    ))
}
