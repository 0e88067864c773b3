//! What the default guardrail chain costs: personal data (redacted, restored in the answer),
//! secrets (redacted) and prompt injection (blocked), as `bench/configs/full-guards.yaml`
//! defines them, on a 4 KB prompt, a 4 KB answer and the same answer streamed in 24-byte
//! chunks (clean, and with findings), and on the 1 KB prompt of the full bench scenario.
//! Prints microseconds per screening.
//!
//! `cargo run --release -p switchyard-bench --bin guard-cost [-- --iterations N]`

use std::time::Instant;

use clap::Parser;
use switchyard_core::guard::GuardSet;
use switchyard_core::guard::config::GuardrailsConfig;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Delta,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 3000)]
    iterations: u32,
}

const CHAIN: &str = "apply: [pii, secrets, injection]\n\
define:\n\
\x20 pii: { type: pii, action: redact, restore: true }\n\
\x20 secrets: { type: secrets, action: redact }\n\
\x20 injection: { type: injection, action: block, threshold: 0.5 }\n";

/// About 4 KB of the prose, code and numbers a support or coding prompt carries.
fn text(with_findings: bool) -> String {
    let paragraph = "Our order pipeline retries failed payments three times before it gives up; \
        version 2.14.3 changed the backoff to 250 ms, 1 s and 4 s. The job runs at 03:00 UTC on \
        2026-11-30 and logs to /var/log/orders/retry.log with order numbers like 4485-2231-9917. \
        fn retry(n: u32) -> Duration { Duration::from_millis(250 * 4u64.pow(n)) } \
        Please summarise what changed and what could go wrong under load. ";
    let mut out = String::with_capacity(4200);
    while out.len() < 4096 {
        out.push_str(paragraph);
    }
    if with_findings {
        out.push_str(
            "Customer: jane.doe@example.com, +44 20 7946 0958, card 4111 1111 1111 1111; \
             the service key sk-proj-Zq8vN3xT5wYb2KcR7mLp4HdS9fGj6AeU1oIi0nBv leaked. ",
        );
    }
    out
}

/// The prompt `loadgen` sends in the full scenario (bench/src/bin/loadgen/dialect.rs).
fn filler(size: usize) -> String {
    const FILLER: &str = "Summarise the following benchmark filler text in one sentence. ";
    FILLER
        .repeat((size - 200) / FILLER.len())
        .trim_end()
        .to_owned()
}

fn request(prompt: &str) -> ChatCompletionRequest {
    serde_json::from_value(serde_json::json!({
        "model": "bench-alias",
        "messages": [{"role": "system", "content": "You are a careful assistant."},
                     {"role": "user", "content": prompt}]
    }))
    .expect("a valid request")
}

fn answer(content: &str) -> ChatCompletionResponse {
    serde_json::from_value(serde_json::json!({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}]
    }))
    .expect("a valid answer")
}

/// Microseconds per run of `f`, less the cost of `setup` measured alone.
fn time<S, T>(iterations: u32, mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> T) -> f64 {
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(setup());
    }
    let setup_only = started.elapsed();
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(f(setup()));
    }
    let total = started.elapsed().saturating_sub(setup_only);
    total.as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() {
    let args = Args::parse();
    let config: GuardrailsConfig = serde_saphyr::from_str(CHAIN).expect("the chain parses");
    let set = GuardSet::build(&config).expect("the chain builds");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    println!("| text | request (input) | answer (output) | streamed answer |");
    println!("|---|---|---|---|");
    let cases = [
        ("4 KB, clean", text(false)),
        ("4 KB, with PII and a secret", text(true)),
        ("1 KB, the full scenario's prompt", filler(1024)),
    ];
    for (label, body) in cases {
        let req = request(&body);
        let input = time(
            args.iterations,
            || req.clone(),
            |mut r| {
                let mut screen = set.select(None, None, &[]);
                rt.block_on(screen.input(&mut r)).map(|_| screen)
            },
        );
        let ans = answer(&body);
        let output = time(
            args.iterations,
            || ans.clone(),
            |mut a| {
                let mut screen = set.select(None, None, &[]);
                rt.block_on(screen.output(&req, &mut a)).map(|_| a)
            },
        );
        let chunks: Vec<ChatCompletionChunk> = body
            .as_bytes()
            .chunks(24)
            .map(|c| {
                let delta = Delta {
                    content: Some(String::from_utf8_lossy(c).into_owned()),
                    ..Default::default()
                };
                ChatCompletionChunk::with_delta("c", 0, "m", delta)
            })
            .collect();
        let streamed = time(
            args.iterations,
            || chunks.clone(),
            |mut chunks| {
                let mut screen = set.select(None, None, &[]).into_stream();
                for c in &mut chunks {
                    let _ = screen.chunk(c);
                }
                screen.flush()
            },
        );
        println!(
            "| {label} | {input:.1} µs | {output:.1} µs | {streamed:.1} µs ({} chunks) |",
            chunks.len()
        );
    }
}
