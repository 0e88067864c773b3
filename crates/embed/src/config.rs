//! The model folder's JSON side: `config.json` (encoder sizes), `sentence_bert_config.json`
//! (maximum sequence length) and `1_Pooling/config.json` (pooling mode). It validates that the
//! folder describes something this crate can run — a BERT-family encoder with absolute position
//! embeddings, "gelu" activation and mean pooling — and says precisely what is not supported when
//! it does not. It reads no weights (see `weights.rs`).

use serde::Deserialize;
use std::path::Path;

/// The encoder sizes and constants the forward pass needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncoderConfig {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub vocab: usize,
    pub layer_norm_eps: f32,
}

impl EncoderConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// The subset of a Hugging Face `config.json` for BERT that matters here.
#[derive(Deserialize)]
struct RawBertConfig {
    model_type: Option<String>,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_position_type")]
    position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".to_owned()
}
fn default_position_type() -> String {
    "absolute".to_owned()
}

/// Model types whose checkpoints share BERT's encoder layout and weight names.
const BERT_LIKE: &[&str] = &["bert"];
/// HF activation names that mean the exact, erf-based GELU.
const EXACT_GELU: &[&str] = &["gelu", "gelu_python"];

/// Reads and validates `config.json` in `dir`.
pub(crate) fn read_encoder_config(dir: &Path) -> Result<EncoderConfig, String> {
    let path = dir.join("config.json");
    let raw: RawBertConfig = read_json(&path)?;
    let named = |what: String| format!("{}: {what}", path.display());
    if let Some(model_type) = &raw.model_type
        && !BERT_LIKE.contains(&model_type.as_str())
    {
        return Err(named(format!(
            "model_type \"{model_type}\" is not supported (supported: {})",
            BERT_LIKE.join(", ")
        )));
    }
    if !EXACT_GELU.contains(&raw.hidden_act.as_str()) {
        return Err(named(format!(
            "hidden_act \"{}\" is not supported (supported: gelu)",
            raw.hidden_act
        )));
    }
    if raw.position_embedding_type != "absolute" {
        return Err(named(format!(
            "position_embedding_type \"{}\" is not supported (supported: absolute)",
            raw.position_embedding_type
        )));
    }
    let sizes = [
        ("hidden_size", raw.hidden_size),
        ("num_hidden_layers", raw.num_hidden_layers),
        ("num_attention_heads", raw.num_attention_heads),
        ("intermediate_size", raw.intermediate_size),
        ("max_position_embeddings", raw.max_position_embeddings),
        ("type_vocab_size", raw.type_vocab_size),
        ("vocab_size", raw.vocab_size),
    ];
    if let Some((name, _)) = sizes.iter().find(|(_, value)| *value == 0) {
        return Err(named(format!("{name} must be greater than 0")));
    }
    if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
        return Err(named(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            raw.hidden_size, raw.num_attention_heads
        )));
    }
    if !(raw.layer_norm_eps.is_finite() && raw.layer_norm_eps > 0.0) {
        return Err(named(format!(
            "layer_norm_eps {} must be a positive number",
            raw.layer_norm_eps
        )));
    }
    Ok(EncoderConfig {
        hidden: raw.hidden_size,
        layers: raw.num_hidden_layers,
        heads: raw.num_attention_heads,
        intermediate: raw.intermediate_size,
        max_positions: raw.max_position_embeddings,
        type_vocab: raw.type_vocab_size,
        vocab: raw.vocab_size,
        layer_norm_eps: raw.layer_norm_eps as f32,
    })
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// sentence-transformers' default when the folder has no `sentence_bert_config.json`.
const DEFAULT_MAX_SEQ_LENGTH: usize = 512;

/// The number of tokens (special tokens included) the model reads before truncating:
/// `sentence_bert_config.json`'s `max_seq_length`, else 512, never more than the position table.
pub(crate) fn read_max_seq_length(dir: &Path, config: &EncoderConfig) -> Result<usize, String> {
    let path = dir.join("sentence_bert_config.json");
    let wanted = if path.exists() {
        let raw: SentenceBertConfig = read_json(&path)?;
        raw.max_seq_length.unwrap_or(DEFAULT_MAX_SEQ_LENGTH)
    } else {
        DEFAULT_MAX_SEQ_LENGTH
    };
    // Two tokens are [CLS] and [SEP]; fewer than three leaves no room for the text.
    if wanted < 3 {
        return Err(format!(
            "{}: max_seq_length {wanted} is too small (at least 3)",
            path.display()
        ));
    }
    Ok(wanted.min(config.max_positions))
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// Checks that the folder asks for mean pooling (the only mode implemented). A folder without
/// `1_Pooling/config.json` (a plain HF model) is taken to mean mean pooling, as
/// sentence-transformers does when it wraps such a model.
pub(crate) fn check_pooling(dir: &Path) -> Result<(), String> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.exists() {
        return Ok(());
    }
    let raw: PoolingConfig = read_json(&path)?;
    let others = raw.pooling_mode_cls_token
        || raw.pooling_mode_max_tokens
        || raw.pooling_mode_mean_sqrt_len_tokens;
    if !raw.pooling_mode_mean_tokens || others {
        return Err(format!(
            "{}: only mean pooling (pooling_mode_mean_tokens alone) is supported",
            path.display()
        ));
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{}: not valid: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("switchyard-embed-cfg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("1_Pooling")).expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write temp file");
        }
        dir
    }

    const MINI: &str = r#"{"model_type":"bert","hidden_size":8,"num_hidden_layers":2,
        "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":32,
        "type_vocab_size":2,"vocab_size":50,"layer_norm_eps":1e-12,"hidden_act":"gelu"}"#;

    #[test]
    fn reads_sizes_from_config_json() {
        let dir = folder_with(&[("config.json", MINI)]);
        let config = read_encoder_config(&dir).expect("valid config");
        assert_eq!((config.hidden, config.layers, config.heads), (8, 2, 2));
        assert_eq!(config.head_dim(), 4);
        assert_eq!(
            read_max_seq_length(&dir, &config),
            Ok(32),
            "capped by positions"
        );
    }

    #[test]
    fn rejects_an_activation_it_does_not_implement() {
        let dir = folder_with(&[("config.json", &MINI.replace("\"gelu\"", "\"relu\""))]);
        let err = read_encoder_config(&dir).expect_err("relu is unsupported");
        assert!(
            err.contains("config.json") && err.contains("hidden_act \"relu\""),
            "{err}"
        );
    }

    #[test]
    fn max_seq_length_comes_from_sentence_bert_config() {
        let dir = folder_with(&[
            ("config.json", MINI),
            ("sentence_bert_config.json", r#"{"max_seq_length": 16}"#),
        ]);
        let config = read_encoder_config(&dir).expect("valid config");
        assert_eq!(read_max_seq_length(&dir, &config), Ok(16));
    }

    #[test]
    fn cls_pooling_is_refused_with_the_file_named() {
        let dir = folder_with(&[(
            "1_Pooling/config.json",
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )]);
        let err = check_pooling(&dir).expect_err("cls pooling is unsupported");
        assert!(
            err.contains("1_Pooling") && err.contains("mean pooling"),
            "{err}"
        );
    }
}
