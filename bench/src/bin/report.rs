//! `report`: turns the raw JSON results a `bench/run` (or `bench/compare-peers`)
//! invocation wrote into one markdown table. It owns the presentation only:
//! which figure of which result file goes in which row, the ratios against
//! the `direct` (loadgen → mock) and `bare` (bare proxy) baselines of the same
//! run, and the ✔/✘ marks against the targets in `bench/README.md`. A
//! missing or unreadable file shows as `—`; nothing here fails the run.
//!
//! Result files are `<scenario>-<target>.json` in `--results`, with scenarios
//! `open500`, `open2000`, `closed64`, `hits50`, `stream`, `streams1000` and `startup`.
//!
//! Targets of the OpenAI chat completions entrance are plain keys (`sy-full`). A target of
//! another entrance `E` (the Anthropic Messages API: `anthropic`) is keyed `E.<name>` and
//! compared with that entrance's own baselines, `E.direct` and `E.bare` (loadgen speaking `E`
//! to the mock, straight or through the bare proxy), so every column's added latency is what
//! the gateway adds to a request of its own dialect.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "Print the benchmark results as one markdown table")]
struct Args {
    /// Directory holding the `<scenario>-<target>.json` files.
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
    /// Comma-separated target keys, in column order; `direct` and `bare` are
    /// the baselines.
    #[arg(
        long,
        default_value = "direct,bare,sy-minimal,sy-full,sy-full-norecords,sy-full-redis,\
                         sy-full-guards,anthropic.direct,anthropic.bare,anthropic.sy-full,anthropic.sy-full-openai"
    )]
    targets: String,
    /// Column heading for a target, `key=Heading` (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
}

const DIRECT: &str = "direct";
const BARE: &str = "bare";

struct Column {
    key: String,
    heading: String,
}

/// The entrance prefix of a target key (`"anthropic."`, or `""` for OpenAI chat completions)
/// and the target's name within it.
fn split_key(key: &str) -> (&str, &str) {
    match key.find('.') {
        Some(dot) => key.split_at(dot + 1),
        None => ("", key),
    }
}

/// The keys of the direct and bare-proxy baselines a target is compared with: those of its
/// own entrance.
fn baselines(key: &str) -> (String, String) {
    let (entrance, _) = split_key(key);
    (format!("{entrance}{DIRECT}"), format!("{entrance}{BARE}"))
}

/// How a row compares a cell with the baselines.
#[derive(Copy, Clone)]
enum Compare {
    /// Show the difference (added latency) against direct and bare.
    Added,
    /// Show the ratio against direct and bare.
    Ratio,
    /// Absolute figure only.
    None,
}

/// A target a non-baseline cell is checked against.
#[derive(Copy, Clone)]
enum Target {
    /// Value minus direct's value at most this.
    AddedAtMost(f64),
    /// Value at least this fraction of bare's value.
    RatioOfBareAtLeast(f64),
    /// Value at most this.
    AtMost(f64),
}

#[derive(Copy, Clone)]
enum Unit {
    Micros,
    Millis,
    KiB,
    PerSecond,
    Count,
}

struct Row {
    scenario: &'static str,
    metric: &'static str,
    file: &'static str,
    pointer: &'static str,
    unit: Unit,
    compare: Compare,
    target: Option<(Target, &'static str)>,
}

const fn row(
    scenario: &'static str,
    metric: &'static str,
    file: &'static str,
    pointer: &'static str,
    unit: Unit,
    compare: Compare,
) -> Row {
    Row {
        scenario,
        metric,
        file,
        pointer,
        unit,
        compare,
        target: None,
    }
}

const fn with_target(mut r: Row, target: Target, text: &'static str) -> Row {
    r.target = Some((target, text));
    r
}

const ROWS: &[Row] = &[
    with_target(
        row(
            "500 req/s, 1 KB prompt",
            "p50",
            "open500",
            "/latency/p50_us",
            Unit::Micros,
            Compare::Added,
        ),
        Target::AddedAtMost(100.0),
        "added ≤ 100 µs",
    ),
    with_target(
        row(
            "",
            "p99",
            "open500",
            "/latency/p99_us",
            Unit::Micros,
            Compare::Added,
        ),
        Target::AddedAtMost(1000.0),
        "added ≤ 1 ms",
    ),
    row(
        "",
        "p99.9",
        "open500",
        "/latency/p999_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "2,000 req/s, 1 KB prompt",
        "p50",
        "open2000",
        "/latency/p50_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "p99",
        "open2000",
        "/latency/p99_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "p99.9",
        "open2000",
        "/latency/p999_us",
        Unit::Micros,
        Compare::Added,
    ),
    with_target(
        row(
            "max throughput, 64 conns",
            "req/s",
            "closed64",
            "/rps",
            Unit::PerSecond,
            Compare::Ratio,
        ),
        Target::RatioOfBareAtLeast(0.70),
        "≥ 0.70× bare",
    ),
    row(
        "",
        "server CPU per request",
        "closed64",
        "/server/cpu_us_per_request",
        Unit::Micros,
        Compare::Ratio,
    ),
    row(
        "",
        "p99 latency",
        "closed64",
        "/latency/p99_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "500 req/s, half the prompts repeated",
        "p50",
        "hits50",
        "/latency/p50_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "server CPU per request",
        "hits50",
        "/server/cpu_us_per_request",
        Unit::Micros,
        Compare::Ratio,
    ),
    with_target(
        row(
            "stream, 100 chunks × 10 ms",
            "TTFT p50",
            "stream",
            "/ttft/p50_us",
            Unit::Micros,
            Compare::Added,
        ),
        Target::AddedAtMost(1000.0),
        "added ≤ 1 ms",
    ),
    row(
        "",
        "TTFT p99",
        "stream",
        "/ttft/p99_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "inter-chunk p50",
        "stream",
        "/interchunk/p50_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "inter-chunk p99",
        "stream",
        "/interchunk/p99_us",
        Unit::Micros,
        Compare::Added,
    ),
    row(
        "",
        "last chunk (total) p50",
        "stream",
        "/latency/p50_us",
        Unit::Micros,
        Compare::Added,
    ),
    with_target(
        row(
            "1,000 concurrent streams",
            "server peak RSS",
            "streams1000",
            "/server/rss_peak_kb",
            Unit::KiB,
            Compare::None,
        ),
        Target::AtMost(150.0 * 1024.0),
        "≤ 150 MB",
    ),
    row(
        "",
        "streams open at peak",
        "streams1000",
        "/peak_in_flight",
        Unit::Count,
        Compare::None,
    ),
    row(
        "",
        "TTFT p99 under load",
        "streams1000",
        "/ttft/p99_us",
        Unit::Micros,
        Compare::None,
    ),
    with_target(
        row(
            "start-up (median of runs)",
            "to first served request",
            "startup",
            "/startup_ms/median",
            Unit::Millis,
            Compare::None,
        ),
        Target::AtMost(100.0),
        "≤ 100 ms",
    ),
    with_target(
        row(
            "",
            "idle RSS",
            "startup",
            "/idle_rss_kb/median",
            Unit::KiB,
            Compare::None,
        ),
        Target::AtMost(30.0 * 1024.0),
        "≤ 30 MB",
    ),
];

/// Loadgen result files whose `errors` are summed into the errors row.
const LOAD_FILES: &[&str] = &["open500", "open2000", "closed64", "stream", "streams1000"];

fn main() {
    let args = Args::parse();
    let columns: Vec<Column> = args
        .targets
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| Column {
            key: key.to_owned(),
            heading: heading(key, &args.labels),
        })
        .collect();
    print!("{}", render(&args.results, &columns));
}

fn heading(key: &str, labels: &[String]) -> String {
    if let Some(label) = labels
        .iter()
        .filter_map(|l| l.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
    {
        return label.to_owned();
    }
    match key {
        DIRECT => "direct (no proxy)".to_owned(),
        BARE => "bare proxy".to_owned(),
        "sy-minimal" => "Switchyard minimal".to_owned(),
        "sy-full" => "Switchyard full".to_owned(),
        "sy-full-redis" => "Switchyard full + Redis".to_owned(),
        "sy-full-norecords" => "Switchyard full, records off".to_owned(),
        "sy-full-guards" => "Switchyard full + guardrails".to_owned(),
        "anthropic.direct" => "direct, anthropic".to_owned(),
        "anthropic.bare" => "bare proxy, anthropic".to_owned(),
        "anthropic.sy-full" => "Switchyard full, anthropic→anthropic".to_owned(),
        "anthropic.sy-full-openai" => "Switchyard full, anthropic→openai".to_owned(),
        other => match split_key(other) {
            ("", name) => name.to_owned(),
            (entrance, name) => format!(
                "{}, {}",
                heading(name, labels),
                &entrance[..entrance.len() - 1]
            ),
        },
    }
}

fn load(dir: &Path, file: &str, target: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{file}-{target}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

fn value(dir: &Path, file: &str, target: &str, pointer: &str) -> Option<f64> {
    load(dir, file, target)?.pointer(pointer)?.as_f64()
}

fn render(dir: &Path, columns: &[Column]) -> String {
    let mut out = String::new();
    out.push_str("| Scenario | Metric |");
    for column in columns {
        out.push_str(&format!(" {} |", column.heading));
    }
    out.push_str(" Target |\n|---|---|");
    for _ in columns {
        out.push_str("--:|");
    }
    out.push_str("---|\n");

    // A row no column has a figure for is left out (e.g. the streaming rows
    // of compare-peers); its scenario name then moves to the next row shown.
    let mut pending_scenario = "";
    for r in ROWS {
        if !r.scenario.is_empty() {
            pending_scenario = r.scenario;
        }
        let cells: Vec<Option<String>> = columns
            .iter()
            .map(|column| {
                let (direct, bare) = baselines(&column.key);
                let direct = value(dir, r.file, &direct, r.pointer);
                let bare = value(dir, r.file, &bare, r.pointer);
                value(dir, r.file, &column.key, r.pointer)
                    .map(|v| cell(r, &column.key, v, direct, bare))
            })
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        out.push_str(&format!("| {pending_scenario} | {} |", r.metric));
        pending_scenario = "";
        for cell in cells {
            out.push_str(&format!(" {} |", cell.as_deref().unwrap_or("—")));
        }
        out.push_str(&format!(" {} |\n", r.target.map_or("", |(_, text)| text)));
    }

    out.push_str("| all load scenarios | errors (non-2xx, transport, timeouts) |");
    for column in columns {
        let files: Vec<Value> = LOAD_FILES
            .iter()
            .filter_map(|file| load(dir, file, &column.key))
            .collect();
        let cell = if files.is_empty() {
            "—".to_owned()
        } else {
            let errors: f64 = files.iter().filter_map(|v| v["errors"].as_f64()).sum();
            let ok: f64 = files.iter().filter_map(|v| v["count"].as_f64()).sum();
            if errors > 0.0 {
                format!("⚠ {} of {}", group(errors), group(ok + errors))
            } else {
                "0".to_owned()
            }
        };
        out.push_str(&format!(" {cell} |"));
    }
    out.push_str(" 0 |\n");
    out
}

/// One cell: the absolute figure, the comparison with the baselines of its
/// entrance (`direct`, `bare`), and a target mark for non-baseline columns.
fn cell(r: &Row, key: &str, v: f64, direct: Option<f64>, bare: Option<f64>) -> String {
    let mut text = format_value(v, r.unit);
    let name = split_key(key).1;
    let baseline = name == DIRECT || name == BARE;
    let mut notes = Vec::new();
    match r.compare {
        Compare::Added => {
            if name != DIRECT
                && let Some(d) = direct
            {
                notes.push(signed(v - d, r.unit));
            }
            if !baseline && let Some(b) = bare {
                notes.push(format!("{} vs bare", signed(v - b, r.unit)));
            }
        }
        Compare::Ratio => {
            if name != DIRECT
                && let Some(d) = direct.filter(|d| *d > 0.0)
            {
                notes.push(format!("{:.2}× direct", v / d));
            }
            if !baseline && let Some(b) = bare.filter(|b| *b > 0.0) {
                notes.push(format!("{:.2}× bare", v / b));
            }
        }
        Compare::None => {}
    }
    if !notes.is_empty() {
        text.push_str(&format!(" ({})", notes.join("; ")));
    }
    if !baseline && let Some((target, _)) = r.target {
        let pass = match target {
            Target::AddedAtMost(limit) => direct.map(|d| v - d <= limit),
            Target::RatioOfBareAtLeast(ratio) => bare.map(|b| v >= ratio * b),
            Target::AtMost(limit) => Some(v <= limit),
        };
        match pass {
            Some(true) => text.push_str(" ✔"),
            Some(false) => text.push_str(" ✘"),
            None => {}
        }
    }
    text
}

fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Micros if v.abs() >= 1_000_000.0 => format!("{:.2} s", v / 1e6),
        Unit::Micros if v.abs() >= 100_000.0 => format!("{:.1} ms", v / 1000.0),
        Unit::Micros if v.abs() >= 1_000.0 => format!("{:.2} ms", v / 1000.0),
        Unit::Micros if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{} µs", group(v)),
        Unit::Micros => format!("{v:.1} µs"),
        Unit::Millis => format!("{v:.1} ms"),
        Unit::KiB => format!("{:.1} MB", v / 1024.0),
        Unit::PerSecond => format!("{}/s", group(v)),
        Unit::Count => group(v),
    }
}

fn signed(delta: f64, unit: Unit) -> String {
    let sign = if delta < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format_value(delta.abs(), unit))
}

/// `v` rounded to an integer with thousands separators.
fn group(v: f64) -> String {
    let rounded = v.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(42355.7), "42,356");
        assert_eq!(group(-1234567.0), "-1,234,567");
    }

    #[test]
    fn formats_units() {
        assert_eq!(format_value(278.0, Unit::Micros), "278 µs");
        assert_eq!(format_value(12345.0, Unit::Micros), "12.35 ms");
        assert_eq!(format_value(1792.0, Unit::Micros), "1.79 ms");
        assert_eq!(format_value(991_740.0, Unit::Micros), "991.7 ms");
        assert_eq!(format_value(8_421_400.0, Unit::Micros), "8.42 s");
        assert_eq!(format_value(18.7, Unit::Micros), "18.7 µs");
        assert_eq!(format_value(47172.0, Unit::KiB), "46.1 MB");
    }

    #[test]
    fn cells_compare_and_mark() {
        let r = &ROWS[0];
        assert_eq!(cell(r, DIRECT, 278.0, Some(278.0), Some(445.0)), "278 µs");
        assert_eq!(
            cell(r, BARE, 445.0, Some(278.0), Some(445.0)),
            "445 µs (+167 µs)"
        );
        assert_eq!(
            cell(r, "sy-full", 350.0, Some(278.0), Some(445.0)),
            "350 µs (+72 µs; −95 µs vs bare) ✔"
        );
    }

    #[test]
    fn entrance_columns_compare_with_their_own_baselines() {
        assert_eq!(baselines("sy-full"), ("direct".into(), "bare".into()));
        assert_eq!(
            baselines("anthropic.sy-full-openai"),
            ("anthropic.direct".into(), "anthropic.bare".into())
        );
        assert_eq!(
            heading("responses.sy-full", &[]),
            "Switchyard full, responses"
        );
        let dir = std::env::temp_dir().join(format!("report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (target, p50) in [
            ("direct", 100),
            ("bare", 150),
            ("anthropic.direct", 200),
            ("anthropic.bare", 260),
            ("anthropic.sy-full", 300),
        ] {
            let json = format!("{{\"latency\":{{\"p50_us\":{p50}}},\"count\":10,\"errors\":0}}");
            std::fs::write(dir.join(format!("open500-{target}.json")), json).unwrap();
        }
        let columns: Vec<Column> = ["anthropic.bare", "anthropic.sy-full"]
            .iter()
            .map(|key| Column {
                key: (*key).into(),
                heading: heading(key, &[]),
            })
            .collect();
        let table = render(&dir, &columns);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(table.contains("| bare proxy, anthropic |"), "{table}");
        assert!(
            table.contains("| 260 µs (+60 µs) | 300 µs (+100 µs; +40 µs vs bare) ✔ |"),
            "{table}"
        );
    }

    #[test]
    fn renders_with_missing_files() {
        let columns = vec![Column {
            key: "nothing-here".into(),
            heading: "x".into(),
        }];
        let table = render(Path::new("/nonexistent"), &columns);
        assert!(!table.contains("500 req/s"));
        assert!(
            table
                .contains("| all load scenarios | errors (non-2xx, transport, timeouts) | — | 0 |")
        );
    }
}
