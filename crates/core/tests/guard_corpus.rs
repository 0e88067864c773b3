//! The guardrail detectors against a labelled corpus (`tests/guard_corpus/*.jsonl`): personal
//! data, credentials, prompt injections, and benign look-alikes of all three (order numbers
//! that fail Luhn, UUIDs, hashes, versions, code, security prose, base64 images, RTL text).
//!
//! Every line lists everything the PII and secrets detectors should find in it, by kind and
//! value, and whether it is an injection (absent means no). A finding is a true positive when
//! it overlaps an expected value of its detector; an expected value is found when findings
//! cover all of its occurrences. The test prints precision and recall per detector and per kind
//! (`cargo test -p switchyard-core --test guard_corpus -- --nocapture`) and fails below
//! 0.95 precision / 0.90 recall for PII and secrets, 0.90 / 0.80 for injection. It also prints
//! what the three detectors cost per text, for information only: timing belongs to `bench/`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;
use switchyard_core::guard::detect::{
    CustomPattern, Detector, Finding, InjectionDetector, Kind, PiiConfig, PiiDetector,
    SecretsDetector,
};

#[derive(Deserialize)]
struct Line {
    text: String,
    #[serde(default)]
    expect: Vec<Expect>,
    #[serde(default)]
    injection: bool,
}

#[derive(Deserialize)]
struct Expect {
    kind: String,
    value: String,
}

const PII_KINDS: &[&str] = &["email", "phone", "card", "ssn", "iban", "ip", "employee_id"];

fn load() -> Vec<(String, Line)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guard_corpus");
    let mut lines = Vec::new();
    for file in ["pii", "secrets", "injection", "benign"] {
        let path = format!("{dir}/{file}.jsonl");
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (n, raw) in body
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let line: Line =
                serde_json::from_str(raw).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1));
            for e in &line.expect {
                assert!(
                    line.text.contains(&e.value),
                    "{path}:{}: {:?} is not in the text",
                    n + 1,
                    e.value
                );
            }
            lines.push((format!("{file}.jsonl:{}", n + 1), line));
        }
    }
    lines
}

/// The corpus's name for a finding's kind.
fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Secret(s) => s.as_str().to_owned(),
        other => other.category().to_owned(),
    }
}

/// True and false positives and negatives, overall and per kind.
#[derive(Default)]
struct Tally {
    tp: usize,
    fp: usize,
    found: usize,
    missed: usize,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.found, self.found + self.missed)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[derive(Default)]
struct Score {
    all: Tally,
    by_kind: BTreeMap<String, Tally>,
    mistakes: Vec<String>,
}

impl Score {
    /// Compares one detector's findings on one text with the expected values of its kinds.
    fn judge(&mut self, at: &str, text: &str, expected: &[&Expect], findings: &[Finding]) {
        let spans: Vec<(&Expect, Vec<(usize, usize)>)> = expected
            .iter()
            .map(|e| {
                (
                    *e,
                    text.match_indices(&e.value)
                        .map(|(i, v)| (i, i + v.len()))
                        .collect(),
                )
            })
            .collect();
        for f in findings {
            let kind = kind_name(&f.kind);
            let overlaps = |want: Option<&str>| {
                spans.iter().any(|(e, occ)| {
                    want.is_none_or(|k| e.kind == k)
                        && occ.iter().any(|&(s, end)| f.start < end && s < f.end)
                })
            };
            let t = self.by_kind.entry(kind.clone()).or_default();
            if overlaps(Some(&kind)) {
                t.tp += 1
            } else {
                t.fp += 1
            }
            if overlaps(None) {
                self.all.tp += 1;
            } else {
                self.all.fp += 1;
                self.mistakes
                    .push(format!("  FP {kind:<16} {at}: {:?}", f.text(text)));
            }
        }
        for (e, occ) in &spans {
            let covered = |same_kind: bool| {
                occ.iter().all(|&(s, end)| {
                    findings.iter().any(|f| {
                        (!same_kind || kind_name(&f.kind) == e.kind) && f.start <= s && end <= f.end
                    })
                })
            };
            let t = self.by_kind.entry(e.kind.clone()).or_default();
            if covered(true) {
                t.found += 1
            } else {
                t.missed += 1
            }
            if covered(false) {
                self.all.found += 1;
            } else {
                self.all.missed += 1;
                self.mistakes
                    .push(format!("  FN {:<16} {at}: {:?}", e.kind, e.value));
            }
        }
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<22} precision {:.3}  recall {:.3}  (tp {}, fp {}, found {}, missed {})",
            self.all.precision(),
            self.all.recall(),
            self.all.tp,
            self.all.fp,
            self.all.found,
            self.all.missed
        );
        for (kind, t) in &self.by_kind {
            println!(
                "  {kind:<20} precision {:.3}  recall {:.3}  (tp {}, fp {}, found {}, missed {})",
                t.precision(),
                t.recall(),
                t.tp,
                t.fp,
                t.found,
                t.missed
            );
        }
        for m in &self.mistakes {
            println!("{m}");
        }
    }
}

fn detectors() -> (PiiDetector, SecretsDetector, InjectionDetector) {
    let pii = PiiDetector::new(PiiConfig {
        custom: vec![CustomPattern::new("employee_id", r"\bEMP-\d{6}\b")],
        ..PiiConfig::default()
    })
    .expect("the corpus's custom pattern compiles");
    (pii, SecretsDetector::default(), InjectionDetector::new())
}

#[test]
fn detectors_meet_their_precision_and_recall_on_the_corpus() {
    let corpus = load();
    assert!(
        corpus.len() >= 300,
        "the corpus has {} examples",
        corpus.len()
    );
    let (pii, secrets, injection) = detectors();
    let (mut pii_score, mut secret_score) = (Score::default(), Score::default());
    let (mut tp, mut fp, mut found, mut missed) = (0, 0, 0, 0);
    let mut injection_mistakes = Vec::new();
    for (at, line) in &corpus {
        let (pii_expect, secret_expect): (Vec<&Expect>, Vec<&Expect>) = line
            .expect
            .iter()
            .partition(|e| PII_KINDS.contains(&e.kind.as_str()));
        let mut out = Vec::new();
        pii.find(&line.text, &mut out);
        pii_score.judge(at, &line.text, &pii_expect, &out);
        out.clear();
        secrets.find(&line.text, &mut out);
        secret_score.judge(at, &line.text, &secret_expect, &out);

        let report = injection.assess(&line.text);
        match (report.flagged, line.injection) {
            (true, true) => (tp, found) = (tp + 1, found + 1),
            (true, false) => fp += 1,
            (false, true) => missed += 1,
            (false, false) => {}
        }
        if report.flagged != line.injection {
            let names: Vec<_> = report.signal_names().collect();
            let what = if report.flagged { "FP" } else { "FN" };
            injection_mistakes.push(format!(
                "  {what} {at}: score {:.2} {names:?}",
                report.score
            ));
        }
    }
    let injection_tally = Tally {
        tp,
        fp,
        found,
        missed,
    };

    println!("\nguardrail corpus: {} examples", corpus.len());
    pii_score.print("pii");
    secret_score.print("secrets");
    println!(
        "{:<22} precision {:.3}  recall {:.3}  (tp {tp}, fp {fp}, missed {missed})",
        "injection",
        injection_tally.precision(),
        injection_tally.recall()
    );
    for m in &injection_mistakes {
        println!("{m}");
    }
    print_cost(&corpus, &secrets, &injection);

    assert!(
        pii_score.all.precision() >= 0.95 && pii_score.all.recall() >= 0.90,
        "pii below 0.95 / 0.90"
    );
    assert!(
        secret_score.all.precision() >= 0.95 && secret_score.all.recall() >= 0.90,
        "secrets below 0.95 / 0.90"
    );
    assert!(
        injection_tally.precision() >= 0.90 && injection_tally.recall() >= 0.80,
        "injection below 0.90 / 0.80"
    );
}

/// Information only (this is a debug build unless run with `--release`): what each detector,
/// in its default configuration, costs on 4 KB prompts built from the corpus, and all three
/// per corpus text.
fn print_cost(corpus: &[(String, Line)], secrets: &SecretsDetector, injection: &InjectionDetector) {
    let mut prompts: Vec<String> = vec![String::new()];
    for (_, line) in corpus {
        let last = prompts.last_mut().expect("one prompt at least");
        last.push_str(&line.text);
        last.push('\n');
        if last.len() >= 4096 {
            prompts.push(String::new());
        }
    }
    prompts.retain(|p| p.len() >= 4096);
    // Realistic traffic is mostly clean: a prompt made of the benign look-alikes only.
    let mut clean = String::new();
    for (_, line) in corpus.iter().filter(|(at, _)| at.starts_with("benign")) {
        if clean.len() + line.text.len() > 4096 {
            break;
        }
        clean.push_str(&line.text);
        clean.push('\n');
    }
    let texts: Vec<&str> = corpus.iter().map(|(_, l)| l.text.as_str()).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let default_pii = PiiDetector::new(PiiConfig::default()).expect("the default config is valid");
    let mut out = Vec::new();
    let mut time = |texts: &[&str], f: &mut dyn FnMut(&str, &mut Vec<Finding>)| {
        let rounds = 20;
        let started = Instant::now();
        for _ in 0..rounds {
            for t in texts {
                out.clear();
                f(t, &mut out);
            }
        }
        started.elapsed() / (rounds * texts.len().max(1)) as u32
    };
    let mut all = |t: &str, out: &mut Vec<Finding>| {
        default_pii.find(t, out);
        secrets.find(t, out);
        std::hint::black_box(injection.assess(t));
    };
    let per_text = time(&texts, &mut all);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("cost ({build} build, default configurations), per prompt:");
    let clean = [clean.as_str()];
    let sets: [(&str, &[&str]); 2] = [
        (
            "~4 KB of corpus lines (dense: every line a finding or a look-alike)",
            &prompts,
        ),
        ("~4 KB of benign lines (closer to real traffic)", &clean),
    ];
    for (what, set) in sets {
        let pii = time(set, &mut |t, out| default_pii.find(t, out));
        let sec = time(set, &mut |t, out| secrets.find(t, out));
        let inj = time(set, &mut |t, _| {
            std::hint::black_box(injection.assess(t));
        });
        let every = time(set, &mut all);
        println!("  {what}: pii {pii:?}, secrets {sec:?}, injection {inj:?}, all three {every:?}");
    }
    println!(
        "  per corpus text (~{} B): all three {per_text:?}",
        texts.iter().map(|t| t.len()).sum::<usize>() / texts.len()
    );
}
