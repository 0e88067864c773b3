//! An in-process sentence-embedding model for Switchyard's semantic cache, so that it works with
//! no embedding service at all. [`LocalModel`] loads a BERT-family sentence-transformer from a
//! local folder (`config.json`, `model.safetensors`, `tokenizer.json`, as exported by
//! sentence-transformers or found on the Hugging Face hub, e.g. all-MiniLM-L6-v2) and returns the
//! mean-pooled, L2-normalised embedding of a text, as sentence-transformers computes it.
//!
//! The encoder is written by hand (`encoder.rs`, ~200 lines of arithmetic) rather than taken from
//! candle + candle-transformers: those would add a large dependency tree and minutes of build on
//! two cores for one small encoder, and the time goes into matrix products anyway, which
//! `matrixmultiply`'s sgemm does well on one core (a hand-written AVX2 kernel over weights
//! packed once at load was tried and was no faster). Tokenisation uses Hugging Face's own
//! `tokenizers` crate, so the token ids match the Python stack exactly. This crate owns loading
//! and computing embeddings; what is cached, and the similarity threshold, belong to the cache.

mod config;
mod encoder;
mod weights;

use std::path::Path;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// A loaded embedding model: tokenizer and encoder weights, immutable after [`LocalModel::load`]
/// and therefore shareable across threads behind an `Arc`.
pub struct LocalModel {
    tokenizer: Tokenizer,
    encoder: encoder::Encoder,
    /// Ids and type ids of the empty text, used if the tokenizer ever fails on an input.
    empty_input: (Vec<u32>, Vec<u32>),
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("dimensions", &self.dimensions())
            .field("layers", &self.encoder.config.layers)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads config.json, model.safetensors and tokenizer.json from `dir`; errors name the file
    /// and what is wrong (missing file, wrong shape, unsupported config).
    pub fn load(dir: &Path) -> Result<LocalModel, String> {
        if !dir.is_dir() {
            return Err(format!("{}: model folder not found", dir.display()));
        }
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            if !dir.join(file).is_file() {
                return Err(format!(
                    "{}: missing file {file} (a model folder holds config.json, \
                     model.safetensors and tokenizer.json)",
                    dir.display()
                ));
            }
        }
        let config = config::read_encoder_config(dir)?;
        let max_tokens = config::read_max_seq_length(dir, &config)?;
        config::check_pooling(dir)?;
        let tokenizer = load_tokenizer(dir, max_tokens, config.vocab)?;
        let encoder = weights::load_encoder(&dir.join("model.safetensors"), &config)?;
        let empty_input = tokenize(&tokenizer, "").map_err(|err| {
            format!(
                "{}: cannot encode the empty text: {err}",
                dir.join("tokenizer.json").display()
            )
        })?;
        Ok(LocalModel {
            tokenizer,
            encoder,
            empty_input,
        })
    }

    /// The length of the vectors [`LocalModel::embed`] returns (the model's hidden size).
    pub fn dimensions(&self) -> usize {
        self.encoder.config.hidden
    }

    /// Mean-pooled, L2-normalised sentence embedding, as sentence-transformers computes it.
    /// Input longer than the model's max_seq_length (256, sentence_bert_config.json; else 512)
    /// is truncated. Synchronous and CPU-bound: callers run it on a blocking thread.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        // A WordPiece tokenizer maps every text to ids (unknown words to [UNK]); the fallback
        // only keeps a tokenizer error from becoming a panic or an error type callers must handle.
        match tokenize(&self.tokenizer, text) {
            Ok((ids, type_ids)) => self.encoder.embed(&ids, &type_ids),
            Err(_) => self.encoder.embed(&self.empty_input.0, &self.empty_input.1),
        }
    }
}

/// Reads tokenizer.json and sets it up for one sentence at a time: no padding (tokenizer.json
/// files from sentence-transformers often pad to a fixed 128), truncation at `max_tokens`.
fn load_tokenizer(dir: &Path, max_tokens: usize, vocab: usize) -> Result<Tokenizer, String> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|err| format!("{}: not a valid tokenizer: {err}", path.display()))?;
    tokenizer.with_padding(None);
    let truncation = TruncationParams {
        max_length: max_tokens,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        direction: TruncationDirection::Right,
    };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(|err| format!("{}: cannot set truncation: {err}", path.display()))?;
    let tokenizer_vocab = tokenizer.get_vocab_size(true);
    if tokenizer_vocab > vocab {
        return Err(format!(
            "{}: {tokenizer_vocab} tokens, more than config.json's vocab_size {vocab}: \
             tokenizer and model do not belong together",
            path.display()
        ));
    }
    Ok(tokenizer)
}

fn tokenize(tokenizer: &Tokenizer, text: &str) -> Result<(Vec<u32>, Vec<u32>), String> {
    let encoding = tokenizer
        .encode(text, true)
        .map_err(|err| err.to_string())?;
    Ok((
        encoding.get_ids().to_vec(),
        encoding.get_type_ids().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LocalModel>();
    }

    #[test]
    fn a_missing_folder_is_named() {
        let err = LocalModel::load(Path::new("/nonexistent/model")).expect_err("no such folder");
        assert!(
            err.contains("/nonexistent/model") && err.contains("not found"),
            "{err}"
        );
    }
}
