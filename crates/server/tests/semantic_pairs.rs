//! The semantic cache's decision, end to end with the real embedding model, over the labelled
//! pairs in `tests/data/semantic_pairs.yaml`: a pair is served iff the two prompts' embeddings
//! score at least [`THRESHOLD`] (dot product of unit vectors) and the correctness guard does
//! not refuse it. No trap may be served (precision 100%); at least 75% of the paraphrases must
//! be. It prints both figures, the similarity distribution of paraphrases and of traps, and
//! what each candidate threshold would give, to choose the default from.
//!
//! Needs the model folder in SWITCHYARD_TEST_MODEL_DIR (tests/run exports it):
//! `cargo test -p switchyard-server --test semantic_pairs -- --nocapture`

#![cfg(feature = "local-embeddings")]

#[path = "../../../tests/data/semantic_pairs.rs"]
mod pairs;

use std::path::PathBuf;

use pairs::Pair;
use switchyard_core::cache::semantic::guard::Guard;
use switchyard_core::cache::semantic::index::dot;
use switchyard_embed::LocalModel;

/// The similarity threshold under evaluation: the gateway's default (`cache.semantic.threshold`).
/// 0.85 was the starting point; on this set it serves 71% of paraphrases and 0.80 serves 79%,
/// while the guard refuses every trap at any threshold from 0.70 up (traps score higher than
/// paraphrases: median 0.95 against 0.91), so the threshold's job is to reject unrelated
/// prompts, and 0.80 is the default.
static THRESHOLD: std::sync::LazyLock<f32> = std::sync::LazyLock::new(|| {
    switchyard_core::cache::config::SemanticConfig::default().threshold
});

/// A pair as the cache sees it: how similar, and whether the guard lets it through.
struct Scored {
    trap: bool,
    similarity: f32,
    guard_passes: bool,
    pair: Pair,
}

fn model() -> LocalModel {
    let Some(dir) = std::env::var_os("SWITCHYARD_TEST_MODEL_DIR").map(PathBuf::from) else {
        panic!(
            "SWITCHYARD_TEST_MODEL_DIR is not set: it names an all-MiniLM-L6-v2 folder \
             (config.json, model.safetensors, tokenizer.json); tests/run exports it"
        )
    };
    LocalModel::load(&dir).unwrap_or_else(|err| panic!("loading {}: {err}", dir.display()))
}

fn scored() -> Vec<Scored> {
    let (model, guard) = (model(), Guard::default());
    pairs::load()
        .into_iter()
        .map(|pair| Scored {
            trap: pair.label == "trap",
            similarity: dot(&model.embed(&pair.a), &model.embed(&pair.b)),
            guard_passes: guard.refuses(&pair.a, &pair.b).is_none()
                && guard.refuses(&pair.b, &pair.a).is_none(),
            pair,
        })
        .collect()
}

fn served(s: &Scored, threshold: f32) -> bool {
    s.similarity >= threshold && s.guard_passes
}

fn quantiles(label: &str, mut similarities: Vec<f32>) {
    similarities.sort_by(f32::total_cmp);
    let at = |q: f64| similarities[((similarities.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<11} n={:<3} min {:.3}  p10 {:.3}  p25 {:.3}  median {:.3}  p75 {:.3}  p90 {:.3}  max {:.3}",
        similarities.len(),
        at(0.0),
        at(0.1),
        at(0.25),
        at(0.5),
        at(0.75),
        at(0.9),
        at(1.0)
    );
}

fn print_report(all: &[Scored]) {
    let (traps, paraphrases): (Vec<&Scored>, Vec<&Scored>) = all.iter().partition(|s| s.trap);
    println!("similarity (all-MiniLM-L6-v2, dot product of unit vectors):");
    quantiles(
        "paraphrase",
        paraphrases.iter().map(|s| s.similarity).collect(),
    );
    quantiles("trap", traps.iter().map(|s| s.similarity).collect());
    println!("threshold  paraphrases served  traps above threshold  traps served (with guard)");
    for step in 14..=19 {
        let t = step as f32 * 0.05;
        let count =
            |set: &[&Scored], f: &dyn Fn(&Scored) -> bool| set.iter().filter(|s| f(s)).count();
        println!(
            "  {t:.2}     {:>3}/{}              {:>3}/{}                  {}",
            count(&paraphrases, &|s| served(s, t)),
            paraphrases.len(),
            count(&traps, &|s| s.similarity >= t),
            traps.len(),
            count(&traps, &|s| served(s, t)),
        );
    }
    for s in traps.iter().filter(|s| s.similarity < *THRESHOLD) {
        println!(
            "trap below threshold ({:.3}): {:?} / {:?}",
            s.similarity, s.pair.a, s.pair.b
        );
    }
    for s in paraphrases.iter().filter(|s| !served(s, *THRESHOLD)) {
        let why = if s.guard_passes {
            "below threshold"
        } else {
            "guard"
        };
        println!(
            "paraphrase not served ({why}, {:.3}): {:?} / {:?}",
            s.similarity, s.pair.a, s.pair.b
        );
    }
}

#[test]
fn threshold_and_guard_serve_paraphrases_and_never_traps() {
    let all = scored();
    print_report(&all);
    let traps_served: Vec<String> = all
        .iter()
        .filter(|s| s.trap && served(s, *THRESHOLD))
        .map(|s| {
            format!(
                "{:?} trap served ({:.3}): {:?} / {:?}",
                s.pair.category, s.similarity, s.pair.a, s.pair.b
            )
        })
        .collect();
    let paraphrases = all.iter().filter(|s| !s.trap).count();
    let paraphrases_served = all
        .iter()
        .filter(|s| !s.trap && served(s, *THRESHOLD))
        .count();
    let traps = all.len() - paraphrases;
    let share = paraphrases_served as f64 / paraphrases.max(1) as f64;
    println!(
        "threshold {}: precision on traps {}/{traps} refused; {paraphrases_served}/{paraphrases} \
         paraphrases served ({:.0}%)",
        *THRESHOLD,
        traps - traps_served.len(),
        share * 100.0
    );
    assert!(
        traps_served.is_empty(),
        "traps served:\n{}",
        traps_served.join("\n")
    );
    assert!(
        share >= 0.75,
        "only {paraphrases_served}/{paraphrases} paraphrases served at {}",
        *THRESHOLD
    );
}
