//! Reads `model.safetensors` into the encoder's f32 parameters: finds the tensor names (with or
//! without a `bert.` style prefix, LayerNorm as `weight`/`bias` or the older `gamma`/`beta`),
//! checks every shape against `config.json`, converts f16 and bf16 to f32, and fuses each layer's
//! query, key and value into one matrix. Errors name the file, the tensor and what is wrong.

use crate::config::EncoderConfig;
use crate::encoder::{Encoder, Layer, LayerNorm, Linear};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// The tensor whose name locates the checkpoint's prefix ("" or "bert." or similar).
const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// Loads and checks every parameter the encoder described by `config` needs.
pub(crate) fn load_encoder(path: &Path, config: &EncoderConfig) -> Result<Encoder, String> {
    let bytes =
        std::fs::read(path).map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|err| format!("{}: not a valid safetensors file: {err}", path.display()))?;
    let reader = Reader::new(path, &tensors)?;
    let h = config.hidden;
    let layers = (0..config.layers)
        .map(|index| read_layer(&reader, config, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Encoder {
        config: config.clone(),
        word_embeddings: reader.tensor(WORD_EMBEDDINGS, &[config.vocab, h])?,
        position_embeddings: reader.tensor(
            "embeddings.position_embeddings.weight",
            &[config.max_positions, h],
        )?,
        token_type_embeddings: reader.tensor(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab, h],
        )?,
        embedding_norm: reader.layer_norm("embeddings.LayerNorm", h)?,
        layers,
    })
}

fn read_layer(reader: &Reader, config: &EncoderConfig, index: usize) -> Result<Layer, String> {
    let (h, i) = (config.hidden, config.intermediate);
    let at = |name: &str| format!("encoder.layer.{index}.{name}");
    // Query, key and value stacked as one [3·hidden, hidden] layer: one product instead of three.
    let mut qkv_weight = Vec::with_capacity(3 * h * h);
    let mut qkv_bias = Vec::with_capacity(3 * h);
    for part in ["query", "key", "value"] {
        let name = at(&format!("attention.self.{part}"));
        qkv_weight.extend(reader.tensor(&format!("{name}.weight"), &[h, h])?);
        qkv_bias.extend(reader.tensor(&format!("{name}.bias"), &[h])?);
    }
    Ok(Layer {
        qkv: Linear::from_torch(&qkv_weight, qkv_bias, h, 3 * h),
        attention_out: reader.linear(&at("attention.output.dense"), h, h)?,
        attention_norm: reader.layer_norm(&at("attention.output.LayerNorm"), h)?,
        ffn_in: reader.linear(&at("intermediate.dense"), h, i)?,
        ffn_out: reader.linear(&at("output.dense"), i, h)?,
        ffn_norm: reader.layer_norm(&at("output.LayerNorm"), h)?,
    })
}

/// Looks tensors up by their name without the checkpoint's prefix.
struct Reader<'a> {
    path: &'a Path,
    tensors: &'a SafeTensors<'a>,
    prefix: String,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, tensors: &'a SafeTensors<'a>) -> Result<Self, String> {
        let names = tensors.names();
        let found = names.iter().find(|name| name.ends_with(WORD_EMBEDDINGS));
        let Some(found) = found else {
            return Err(format!(
                "{}: no tensor named \"{WORD_EMBEDDINGS}\" (with or without a prefix such as \
                 \"bert.\"): not a BERT checkpoint",
                path.display()
            ));
        };
        let prefix = found[..found.len() - WORD_EMBEDDINGS.len()].to_owned();
        Ok(Reader {
            path,
            tensors,
            prefix,
        })
    }

    fn linear(&self, name: &str, inputs: usize, outputs: usize) -> Result<Linear, String> {
        let weight = self.tensor(&format!("{name}.weight"), &[outputs, inputs])?;
        let bias = self.tensor(&format!("{name}.bias"), &[outputs])?;
        Ok(Linear::from_torch(&weight, bias, inputs, outputs))
    }

    fn layer_norm(&self, name: &str, width: usize) -> Result<LayerNorm, String> {
        let either = |new: &str, old: &str| {
            let new_name = format!("{name}.{new}");
            if self.has(&new_name) {
                self.tensor(&new_name, &[width])
            } else {
                self.tensor(&format!("{name}.{old}"), &[width])
            }
        };
        Ok(LayerNorm {
            gamma: either("weight", "gamma")?,
            beta: either("bias", "beta")?,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.tensors
            .tensor(&format!("{}{name}", self.prefix))
            .is_ok()
    }

    /// The tensor `name` as f32, after checking it has exactly `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| format!("{}: tensor \"{full}\" is missing", self.path.display()))?;
        if view.shape() != shape {
            return Err(format!(
                "{}: tensor \"{full}\" has shape {:?}, config.json implies {shape:?}",
                self.path.display(),
                view.shape()
            ));
        }
        to_f32(view.dtype(), view.data()).ok_or_else(|| {
            format!(
                "{}: tensor \"{full}\" has dtype {:?}; supported: F32, F16, BF16",
                self.path.display(),
                view.dtype()
            )
        })
    }
}

/// Little-endian tensor bytes as f32, or `None` for a dtype that is not a float this crate reads.
fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => return None,
    };
    Some(values)
}

/// IEEE 754 half precision to single precision, subnormals, infinities and NaN included.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        // Subnormal: mantissa · 2⁻²⁴, exact in f32.
        (0, m) => (m as f32 * 2f32.powi(-24)).to_bits(),
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn bf16_is_the_top_half_of_f32() {
        let bytes = (1.5f32.to_bits() >> 16) as u16;
        assert_eq!(to_f32(Dtype::BF16, &bytes.to_le_bytes()), Some(vec![1.5]));
        assert_eq!(to_f32(Dtype::I64, &[0; 8]), None);
    }
}
