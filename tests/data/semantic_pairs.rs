//! The labelled prompt pairs of `tests/data/semantic_pairs.yaml`, as the semantic cache's tests
//! read them: included by `crates/core/tests/semantic_guard_pairs.rs` (the guard alone) and
//! `crates/server/tests/semantic_pairs.rs` (the guard with the real model).

use serde::Deserialize;

#[derive(Deserialize)]
struct Set {
    pairs: Vec<Pair>,
}

/// Two prompts, labelled `paraphrase` or `trap` (a trap has the category of what differs).
#[derive(Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub label: String,
    #[serde(default)]
    pub category: Option<String>,
}

pub fn load() -> Vec<Pair> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/semantic_pairs.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let set: Set = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    set.pairs
}
