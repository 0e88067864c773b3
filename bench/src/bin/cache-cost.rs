//! What the cache costs. Exact: a miss (key, lookup, and keeping the answer) on a full in-process
//! cache of `--exact-size` bytes, with the bench's 1 KB prompt and the mock's 326-byte answer.
//! Semantic: flat search over one scope of 10,000 and 100,000 random normalised 384-d vectors
//! (all-MiniLM-L6-v2's size), and the correctness guard per candidate (extracting a prompt's
//! signature, and comparing two signatures). Prints medians in µs.
//!
//! `cargo run --release -p switchyard-bench --bin cache-cost [-- --lookups N]`

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hyper::HeaderMap;
use switchyard_core::cache::config::CacheConfig;
use switchyard_core::cache::semantic::guard::Guard;
use switchyard_core::cache::semantic::index::{Lookup, SemanticIndex};
use switchyard_core::cache::{Asker, Cache, Lookup as Found, encode_answer};
use switchyard_core::provider::BodyKind;
use switchyard_wire::openai::{ChatCompletionRequest, Usage};

const DIMENSIONS: usize = 384;

#[derive(Parser)]
struct Args {
    /// Lookups timed per scope size.
    #[arg(long, default_value_t = 200)]
    lookups: usize,
    /// Scope sizes to fill and search.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// The exact cache's size in bytes (filled before timing).
    #[arg(long, default_value_t = 256 << 20)]
    exact_size: u64,
}

/// xorshift64*: reproducible vectors without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMENSIONS).map(|_| self.next_f32()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn search(size: usize, lookups: usize, guard: &Guard, rng: &mut Rng) {
    let index = SemanticIndex::new(size);
    let signature = guard.signature("How do I reset my password?");
    let expires = Instant::now() + Duration::from_secs(3600);
    let fill = Instant::now();
    for i in 0..size {
        index.insert(1, "team", rng.unit_vector(), signature.clone(), i, expires);
    }
    let fill = fill.elapsed();
    let queries: Vec<Vec<f32>> = (0..lookups).map(|_| rng.unit_vector()).collect();
    let mut samples = Vec::with_capacity(lookups);
    let mut hits = 0;
    for query in &queries {
        let start = Instant::now();
        let found = index.lookup(1, query, &signature, 0.85, guard);
        samples.push(start.elapsed());
        hits += usize::from(matches!(found, Lookup::Hit { .. }));
    }
    let per_lookup = median(samples);
    let bytes = (size * DIMENSIONS * 4) as f64;
    println!(
        "{size:>7} entries: {per_lookup:>9.1} µs per lookup (median of {lookups}), \
         {:.2} ns per vector, {:.1} GB/s; fill {:.0} ms; {hits} hits",
        per_lookup * 1e3 / size as f64,
        bytes / (per_lookup * 1e-6) / 1e9,
        fill.as_secs_f64() * 1e3,
    );
}

fn guard_cost(guard: &Guard) {
    const PROMPTS: [&str; 4] = [
        "Is the drug safe during pregnancy?",
        "Convert 1,000 USD to EUR at today's rate and show the fee if it's over 2%",
        "Write a SQL query that lists customers who spent at least $500 in March 2024, \
         excluding those whose account_status is 'closed', sorted in descending order",
        "My order #4481 hasn't arrived yet. I paid with PayPal on Monday and the tracking page \
         says 'in transit'. Can you tell me what to do, and whether I should request a refund \
         or wait a few more days? I don't want to be charged twice.",
    ];
    const ROUNDS: usize = 2000;
    for prompt in PROMPTS {
        let mut extract = Vec::with_capacity(ROUNDS);
        let mut compare = Vec::with_capacity(ROUNDS);
        let other = guard.signature(&prompt.replace("the", "a"));
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let signature = std::hint::black_box(guard.signature(prompt));
            extract.push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(guard.refuses_signatures(&signature, &other));
            compare.push(start.elapsed());
        }
        println!(
            "guard, {:>3}-byte prompt: signature {:>5.2} µs, compare per candidate {:>5.3} µs",
            prompt.len(),
            median(extract),
            median(compare)
        );
    }
}

/// A miss on a full exact cache: the key, the lookup, and the answer kept, per request.
async fn exact_miss_cost(max_size: u64) {
    let config = CacheConfig {
        enabled: true,
        max_size,
        ..Default::default()
    };
    let cache = Cache::in_memory(&config);
    let headers = HeaderMap::new();
    let asker = Asker {
        team: Some("bench-team"),
        key_id: Some("vk_bench"),
        headers: &headers,
        dialect: "openai",
    };
    let filler = "x".repeat(1000);
    let answer = vec![b'a'; 326];
    let entries = max_size / 500;
    let (mut key, mut rest) = (Vec::new(), Vec::new());
    for i in 0..entries + 100_000 {
        let body = format!(
            r#"{{"model":"bench-alias","messages":[{{"role":"user","content":"{i} {filler}"}}]}}"#
        );
        let request: ChatCompletionRequest = serde_json::from_str(&body).expect("request");
        let start = Instant::now();
        let Found::Miss(pending) = cache.lookup(&config, None, &request, &asker).await else {
            panic!("a unique prompt hit the cache");
        };
        let looked = start.elapsed();
        // As the pipeline keeps an upstream's answer: its body read into a buffer of its own.
        let body = Bytes::from(answer.clone());
        let usage = Usage::new(250, 40, None);
        let kind = BodyKind::ChatCompletion;
        cache.store(
            pending,
            encode_answer(kind, "gpt-4o-mini", Some(&usage), &body),
        );
        drop(body);
        if i >= entries {
            key.push(looked);
            rest.push(start.elapsed() - looked);
        }
    }
    println!(
        "exact cache, miss on a full {} MB cache: key and lookup {:.2} µs, keeping the answer \
         {:.2} µs (medians of 100,000)",
        max_size >> 20,
        median(key),
        median(rest)
    );
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(exact_miss_cost(args.exact_size));
    let guard = Guard::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for size in args.sizes {
        search(size, args.lookups, &guard, &mut rng);
    }
    guard_cost(&guard);
}
