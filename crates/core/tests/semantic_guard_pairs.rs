//! The semantic cache's correctness guard, alone, against the labelled pairs in
//! `tests/data/semantic_pairs.yaml`: every trap must be refused (for its category's reason),
//! and the guard alone must let at least 90% of the paraphrases through — the embedding
//! threshold removes more later (`crates/server/tests/semantic_pairs.rs` measures both).
//!
//! `cargo test -p switchyard-core --test semantic_guard_pairs -- --nocapture` prints the
//! figures and every paraphrase the guard refuses.

#[path = "../../../tests/data/semantic_pairs.rs"]
mod pairs;

use pairs::load;
use switchyard_core::cache::semantic::guard::{Guard, Refusal};

/// The reason the guard should give for a trap of `category`.
fn expected_reason(category: &str) -> Refusal {
    match category {
        "numbers" | "dates" => Refusal::Numbers,
        "negation" => Refusal::Negation,
        "antonym" => Refusal::Antonym,
        "comparison" => Refusal::Comparison,
        "quoted" => Refusal::Quoted,
        "names" | "codes" => Refusal::NamesOrCodes,
        "opposites" => Refusal::Opposites,
        other => panic!("unknown trap category {other:?}"),
    }
}

#[test]
fn the_guard_refuses_every_trap_and_passes_most_paraphrases() {
    let pairs = load();
    let guard = Guard::default();
    let (mut paraphrases, mut passed, mut traps) = (0, 0, 0);
    let mut failures = Vec::new();
    for pair in &pairs {
        let verdicts = [
            guard.refuses(&pair.a, &pair.b),
            guard.refuses(&pair.b, &pair.a),
        ];
        match pair.label.as_str() {
            "paraphrase" => {
                paraphrases += 1;
                if verdicts == [None, None] {
                    passed += 1;
                } else {
                    println!(
                        "paraphrase refused ({:?}): {:?} / {:?}",
                        verdicts[0], pair.a, pair.b
                    );
                }
            }
            "trap" => {
                traps += 1;
                let category = pair
                    .category
                    .as_deref()
                    .unwrap_or_else(|| panic!("trap without a category: {:?}", pair.a));
                let want = Some(expected_reason(category));
                if verdicts != [want, want] {
                    failures.push(format!(
                        "{category} trap {:?} / {:?}: guard said {verdicts:?}",
                        pair.a, pair.b
                    ));
                }
            }
            other => panic!("unknown label {other:?}"),
        }
    }
    let share = f64::from(passed) / f64::from(paraphrases.max(1));
    println!(
        "guard alone: {traps} traps, all refused: {}",
        failures.is_empty()
    );
    println!(
        "guard alone: {passed}/{paraphrases} paraphrases let through ({:.0}%)",
        share * 100.0
    );
    assert!(
        traps >= 35 && paraphrases >= 35,
        "the set needs at least 35 of each"
    );
    assert!(
        failures.is_empty(),
        "traps not refused for their reason:\n{}",
        failures.join("\n")
    );
    assert!(
        share >= 0.90,
        "the guard alone refuses too many paraphrases: {passed}/{paraphrases}"
    );
}
