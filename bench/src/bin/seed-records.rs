//! `seed-records`: writes realistic request records into a Switchyard database through the
//! gateway's own writer (`Database::write_batch`, batches of 512 as the recorder sends them),
//! and reports the writer's CPU time per record — the cost the gateway pays per request for
//! its request log and rollups, SQLite's own work included when the database is embedded.
//!
//! The records look like a company's month: a few hundred keys with a skewed share of traffic
//! (each key belongs to one user and one team), features, routes, models on several providers,
//! streams with time to first token, retries and fallbacks, errors, guardrail actions. Used by
//! `bench/run` (writer cost) and to seed a million records for the report timings.

use std::time::Instant;

// The gateway's allocator, so that the writer's cost is measured as the gateway pays it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use switchyard_core::record::{AttemptRecord, RequestRecord};
use switchyard_core::request::{TraceContext, new_request_id};
use switchyard_store::Database;

#[derive(Parser)]
struct Args {
    /// `sqlite://FILE` or `postgres://…` (migrated on connect).
    #[arg(long)]
    url: String,
    /// Records to write.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Days the records span, ending now.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Instead of spreading the records over `--days`, space them as a gateway serving this
    /// many requests per second would (a batch then holds a quarter second of traffic, as the
    /// recorder's batches do under load).
    #[arg(long)]
    rate: Option<f64>,
    /// Distinct virtual keys (and, through them, users, teams, features, routes); 1 with
    /// `--models 1` is the bench scenario: one key on one model.
    #[arg(long, default_value_t = 300)]
    keys: u64,
    /// Distinct models (at most 6).
    #[arg(long, default_value_t = 6)]
    models: u64,
    /// Records per write (the recorder's batch).
    #[arg(long, default_value_t = 512)]
    batch: usize,
}

const MODELS: &[(&str, &str, f64)] = &[
    ("gpt-4o", "openai", 0.01),
    ("gpt-4o-mini", "openai", 0.0006),
    ("claude-sonnet", "anthropic", 0.015),
    ("claude-haiku", "anthropic", 0.001),
    ("llama-70b", "vllm", 0.0009),
    ("gemini-flash", "gemini", 0.0004),
];
const ROUTES: &[&str] = &["smart", "cheap", "chat"];
const FEATURES: &[&str] = &[
    "search",
    "support",
    "summarize",
    "codegen",
    "agent",
    "translate",
    "rag",
    "classify",
];
const USERS: u64 = 150;
const TEAMS: u64 = 20;

/// xorshift64*: deterministic and dependency-free; quality is beside the point here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A skewed pick in [0, n): a few values take most of the draws.
    fn skewed(&mut self, n: u64) -> u64 {
        ((self.unit().powi(3)) * n as f64) as u64
    }
}

fn record(rng: &mut Rng, args: &Args, started_at_ms: i64) -> RequestRecord {
    let key = rng.skewed(args.keys.max(1));
    let models = args.models.clamp(1, MODELS.len() as u64);
    let (model, provider, price) = MODELS[rng.skewed(models) as usize];
    let stream = rng.below(3) == 0;
    let roll = rng.below(1000);
    let status = match roll {
        0..=9 => 429,
        10..=19 => 502,
        20..=24 => 400,
        25..=27 => 499,
        _ => 200,
    };
    let retried = rng.below(20) == 0;
    let latency_ms = 150.0 + rng.unit().powi(2) * 6_000.0;
    let prompt_tokens = 50 + rng.below(4_000);
    let completion_tokens = if status == 200 {
        10 + rng.below(800)
    } else {
        0
    };
    let mut attempts = Vec::new();
    if retried {
        attempts.push(AttemptRecord {
            provider: provider.into(),
            model: model.into(),
            status: Some(500),
            error_class: Some("overloaded"),
            started_at_us: started_at_ms * 1000,
            latency_ms: 40.0,
        });
    }
    if status != 429 && status != 400 {
        attempts.push(AttemptRecord {
            provider: provider.into(),
            model: model.into(),
            status: Some(if status == 499 { 200 } else { status }),
            error_class: (status == 502).then_some("overloaded"),
            started_at_us: started_at_ms * 1000 + 40_000,
            latency_ms: latency_ms - 1.0,
        });
    }
    let served = status == 200 || status == 499;
    RequestRecord {
        request_id: new_request_id(),
        started_at_ms,
        endpoint: "chat.completions",
        dialect: "openai",
        key_id: Some(format!("key_{key:04}")),
        user: Some(format!("user-{:03}", key % USERS)),
        team: Some(format!("team-{:02}", key % TEAMS)),
        feature: Some(
            FEATURES[(key + rng.below(2.min(args.keys))) as usize % FEATURES.len()].into(),
        ),
        tags: vec!["env:prod".into()],
        requested_model: ROUTES[(key % 3) as usize].into(),
        route: Some(ROUTES[(key % 3) as usize].into()),
        provider: served.then(|| provider.into()),
        model: served.then(|| model.into()),
        upstream_model: served.then(|| format!("{model}-2026-01-01")),
        stream,
        status,
        error_code: (status != 200).then(|| "upstream_error".into()),
        admission: (status == 429).then_some("rate_limited"),
        prompt_tokens,
        completion_tokens,
        cached_tokens: 0,
        usage_estimated: false,
        cost_usd: (prompt_tokens + 3 * completion_tokens) as f64 / 1000.0 * price,
        latency_ms,
        ttft_ms: (stream && served).then_some(80.0 + rng.unit() * 400.0),
        attempts,
        cache_hit: false,
        cache_saved_usd: 0.0,
        guardrail_actions: if rng.below(50) == 0 {
            vec!["pii:redacted:email".into()]
        } else {
            Vec::new()
        },
        client_disconnected: status == 499,
        downgraded_from: None,
        trace: TraceContext::fresh(),
        request_body: None,
        response_body: None,
    }
}

/// CPU time of the whole process (every thread: SQLite's work runs on sqlx's worker thread).
fn cpu_us() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let db = Database::connect(&args.url)
        .await
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = switchyard_core::request::unix_ms();
    let (span_ms, step) = match args.rate {
        Some(rate) => {
            let step = 1000.0 / rate.max(0.001);
            ((step * args.count as f64) as i64, step)
        }
        None => {
            let span_ms = args.days * 86_400_000;
            (span_ms, span_ms as f64 / args.count.max(1) as f64)
        }
    };
    let (mut generate_us, mut write_us) = (0u64, 0u64);
    let wall = Instant::now();
    let mut written = 0;
    while written < args.count {
        let n = args.batch.min(args.count - written);
        let before = cpu_us();
        let batch: Vec<RequestRecord> = (written..written + n)
            .map(|i| record(&mut rng, &args, now - span_ms + (i as f64 * step) as i64))
            .collect();
        let generated = cpu_us();
        db.write_batch(std::sync::Arc::new(batch))
            .await
            .map_err(|e| e.to_string())?;
        write_us += cpu_us() - generated;
        generate_us += generated - before;
        written += n;
    }
    let per_record = write_us as f64 / written.max(1) as f64;
    println!(
        "{{\"records\": {written}, \"engine\": \"{}\", \"writer_cpu_us_per_record\": {per_record:.2}, \"wall_s\": {:.2}, \"generate_cpu_us_per_record\": {:.2}}}",
        db.kind(),
        wall.elapsed().as_secs_f64(),
        generate_us as f64 / written.max(1) as f64
    );
    Ok(())
}
