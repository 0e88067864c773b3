//! `switchyard report usage|latency|events`: the admin API's reports from a terminal, as an
//! aligned table or (`--json`) the API's JSON as it came. Like `switchyard keys`, it is a client
//! of a running gateway (`--url` / `SWITCHYARD_URL`, `--admin-key` / `SWITCHYARD_ADMIN_KEY`), not
//! a second path into the database: the gateway parses the dates and the grouping and says what
//! is wrong with them.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    gateway: switchyard_server::cli::GatewayArgs,
    /// Start of the range: RFC 3339, a UTC date (2026-01-05) or epoch ms; default: 30 days
    /// before --to. Rounded down to the hour.
    #[arg(long, global = true)]
    from: Option<String>,
    /// End of the range (excluded), same forms; default: now. Rounded up to the hour.
    #[arg(long, global = true)]
    to: Option<String>,
    /// Print the gateway's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    report: Report,
}

#[derive(Subcommand)]
enum Report {
    /// Requests, errors, tokens, cost and feedback, grouped and most expensive first.
    Usage {
        /// Any of team, user, key, feature, model, provider, route, and day or hour
        /// (comma-separated); none: one line for the whole range.
        #[arg(long, default_value = "")]
        group_by: String,
        /// Only the first N rows (top spenders: --group-by key --limit 10).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Latency and time-to-first-token percentiles per provider and model.
    Latency,
    /// Failed upstream attempts by error class, and guardrail actions.
    Events,
}

pub fn run(args: ReportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let body = match runtime.block_on(fetch(&args)) {
        Ok(body) => body,
        Err(message) => return fail(&message),
    };
    if args.json {
        match serde_json::to_string_pretty(&body) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(&format!("cannot print the report: {e}")),
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "{} to {} (UTC, whole hours)",
        text(&body["from"]),
        text(&body["to"])
    );
    match args.report {
        Report::Usage { .. } => print_usage(&body),
        Report::Latency => print_latency(&body),
        Report::Events => print_events(&body),
    }
    ExitCode::SUCCESS
}

/// `GET /admin/reports/…` with the arguments as query parameters.
async fn fetch(args: &ReportArgs) -> Result<Value, String> {
    let base = args.gateway.base();
    let (path, mut query) = match &args.report {
        Report::Usage { group_by, limit } => {
            let mut query = vec![("group_by", group_by.clone())];
            query.extend(limit.map(|n| ("limit", n.to_string())));
            ("usage", query)
        }
        Report::Latency => ("latency", Vec::new()),
        Report::Events => ("events", Vec::new()),
    };
    query.extend(args.from.iter().map(|f| ("from", f.clone())));
    query.extend(args.to.iter().map(|t| ("to", t.clone())));
    let url = reqwest::Url::parse_with_params(&format!("{base}/admin/reports/{path}"), &query)
        .map_err(|e| format!("--url {base}: {e}"))?;
    let request = reqwest::Client::new().get(url);
    args.gateway.send(request, 120).await
}

/// The usage columns after the group's: header, and how a row's metrics print.
const USAGE_COLUMNS: &[(&str, &str, Format)] = &[
    ("REQUESTS", "requests", Format::Int),
    ("ERRORS", "errors", Format::Int),
    ("ERR%", "error_rate", Format::Percent),
    ("RETRY%", "retry_rate", Format::Percent),
    ("FALLBACK%", "fallback_rate", Format::Percent),
    ("CACHE%", "cache_hit_rate", Format::Percent),
    ("RATE_LIMITED", "rate_limited", Format::Int),
    ("OVER_BUDGET", "budget_exceeded", Format::Int),
    ("PROMPT_TOK", "prompt_tokens", Format::Int),
    ("COMPL_TOK", "completion_tokens", Format::Int),
    ("COST_USD", "cost_usd", Format::Usd),
    ("SAVED_USD", "cache_saved_usd", Format::Usd),
    ("AVG_MS", "avg_latency_ms", Format::Ms),
    ("FEEDBACK", "feedback_count", Format::Int),
    ("FB_AVG", "feedback_avg", Format::Score),
];

#[derive(Clone, Copy)]
enum Format {
    Int,
    Percent,
    Usd,
    Ms,
    Score,
}

impl Format {
    fn show(self, v: &Value) -> String {
        let Some(n) = v.as_f64() else {
            return "-".into();
        };
        match self {
            Format::Int => v
                .as_i64()
                .map_or_else(|| format!("{n:.0}"), |i| i.to_string()),
            Format::Percent => format!("{:.1}%", n * 100.0),
            Format::Usd => format!("{n:.4}"),
            Format::Ms => format!("{n:.0}"),
            Format::Score => format!("{n:.2}"),
        }
    }
}

fn print_usage(body: &Value) {
    let groups: Vec<&str> = body["group_by"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut table = Table::new(
        groups
            .iter()
            .map(|g| (g.to_uppercase(), false))
            .chain(USAGE_COLUMNS.iter().map(|(h, _, _)| (h.to_string(), true))),
    );
    let metrics = |row: &Value| {
        USAGE_COLUMNS
            .iter()
            .map(|(_, field, format)| format.show(&row[field]))
            .collect::<Vec<_>>()
    };
    for row in body["rows"].as_array().into_iter().flatten() {
        let mut cells: Vec<String> = groups.iter().map(|g| group_value(&row[g])).collect();
        cells.extend(metrics(row));
        table.push(cells);
    }
    let mut total = vec![String::new(); groups.len()];
    if let Some(first) = total.first_mut() {
        *first = "TOTAL".into();
    }
    total.extend(metrics(&body["total"]));
    table.push(total);
    table.print();
    if body["truncated"].as_bool() == Some(true) {
        eprintln!("note: more groups than the report returns; narrow the range or use --limit");
    }
}

fn print_latency(body: &Value) {
    let mut table = Table::new(
        [
            ("PROVIDER", false),
            ("MODEL", false),
            ("REQUESTS", true),
            ("ERR%", true),
            ("P50_MS", true),
            ("P95_MS", true),
            ("P99_MS", true),
            ("TTFT_P50", true),
            ("TTFT_P95", true),
            ("TTFT_P99", true),
        ]
        .map(|(h, right)| (h.to_owned(), right)),
    );
    for row in body["rows"].as_array().into_iter().flatten() {
        let mut cells = vec![
            text(&row["provider"]),
            text(&row["model"]),
            Format::Int.show(&row["requests"]),
            Format::Percent.show(&row["error_rate"]),
        ];
        for series in ["latency", "ttft"] {
            for p in ["p50_ms", "p95_ms", "p99_ms"] {
                cells.push(Format::Ms.show(&row[series][p]));
            }
        }
        table.push(cells);
    }
    table.print();
}

fn print_events(body: &Value) {
    println!("\nFailed upstream attempts");
    let mut attempts = Table::new(
        [
            ("PROVIDER", false),
            ("MODEL", false),
            ("ERROR_CLASS", false),
            ("COUNT", true),
        ]
        .map(|(h, right)| (h.to_owned(), right)),
    );
    for row in body["attempt_errors"].as_array().into_iter().flatten() {
        attempts.push(vec![
            text(&row["provider"]),
            text(&row["model"]),
            text(&row["error_class"]),
            Format::Int.show(&row["count"]),
        ]);
    }
    attempts.print();
    println!("\nGuardrail actions");
    let mut guardrails = Table::new(
        [("GUARDRAIL", false), ("ACTION", false), ("COUNT", true)]
            .map(|(h, right)| (h.to_owned(), right)),
    );
    for row in body["guardrails"].as_array().into_iter().flatten() {
        guardrails.push(vec![
            text(&row["guardrail"]),
            text(&row["action"]),
            Format::Int.show(&row["count"]),
        ]);
    }
    guardrails.print();
}

/// A group's value; requests without one (no team, no key…) show as `(none)`.
fn group_value(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => text(other),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell; numbers right-aligned.
struct Table {
    headers: Vec<(String, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: impl IntoIterator<Item = (String, bool)>) -> Table {
        Table {
            headers: headers.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| h.clone()).collect();
        let mut out = String::new();
        if self.rows.is_empty() {
            out.push_str("(nothing in this range)\n");
            return out;
        }
        for row in std::iter::once(&headers).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&self.headers)
                .map(|((cell, &w), (_, right))| {
                    let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                    if *right {
                        format!("{pad}{cell}")
                    } else {
                        format!("{cell}{pad}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    fn print(&self) {
        print!("{}", self.render());
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut t = Table::new([("TEAM".to_owned(), false), ("COST_USD".to_owned(), true)]);
        t.push(vec!["search-team".into(), "12.5000".into()]);
        t.push(vec!["(none)".into(), "0.2500".into()]);
        assert_eq!(
            t.render(),
            "TEAM         COST_USD\nsearch-team   12.5000\n(none)         0.2500\n"
        );
        let empty = Table::new([("A".to_owned(), false)]);
        assert_eq!(empty.render(), "(nothing in this range)\n");
    }

    #[test]
    fn numbers_print_as_their_kind() {
        assert_eq!(Format::Int.show(&json!(1234)), "1234");
        assert_eq!(Format::Percent.show(&json!(0.02)), "2.0%");
        assert_eq!(Format::Usd.show(&json!(3.5)), "3.5000");
        assert_eq!(Format::Score.show(&Value::Null), "-");
        assert_eq!(group_value(&Value::Null), "(none)");
    }
}
