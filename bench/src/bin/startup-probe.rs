//! `startup-probe`: measures a server's start-up time and idle memory. It owns
//! the spawn-and-poll loop: it starts the command given after `--`, polls the
//! server's address every half millisecond with a real request (a small chat
//! completion by default, or `GET --ready-path`) until one answers 2xx, and
//! records the wall time from spawn to that first served request. It then
//! lets the process idle for `--idle-ms`, reads its `VmRSS`, stops it, and
//! repeats `--runs` times, printing per-run figures and medians as JSON.
//! It speaks plain blocking HTTP/1.1 over `std::net` so that no runtime or
//! timer granularity sits between the server and the measurement.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use switchyard_bench::proc_status_kb;

#[derive(Parser, Debug)]
#[command(about = "Spawn a server, time it to its first served request, read its idle RSS")]
struct Args {
    /// Address the spawned server listens on.
    #[arg(long)]
    addr: SocketAddr,
    /// Poll with `GET` on this path instead of a chat completion.
    #[arg(long)]
    ready_path: Option<String>,
    /// Model for the probing chat completion.
    #[arg(long, default_value = "bench-model")]
    model: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// How many times to start the server.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// How long the server idles after its first request before RSS is read.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
    /// Give up on one start after this long.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Append the server's stderr to this file (default: discard).
    #[arg(long)]
    log: Option<std::path::PathBuf>,
    /// Free-form label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
    /// The server command line.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() {
    let args = Args::parse();
    if args.runs == 0 || args.runs > 100 {
        eprintln!("startup-probe: --runs must be in [1, 100]");
        std::process::exit(2);
    }
    let request = build_request(&args);
    let mut runs = Vec::with_capacity(args.runs);
    let mut startup_ms = Vec::new();
    let mut idle_rss_kb = Vec::new();
    for _ in 0..args.runs {
        let run = one_run(&args, &request);
        if let Some(ms) = run["startup_ms"].as_f64() {
            startup_ms.push(ms);
        }
        if let Some(kb) = run["idle_rss_kb"].as_u64() {
            idle_rss_kb.push(kb as f64);
        }
        runs.push(run);
    }
    let output = json!({
        "label": args.label,
        "command": args.command,
        "addr": args.addr.to_string(),
        "runs": runs,
        "ok_runs": startup_ms.len(),
        "startup_ms": stats(&mut startup_ms),
        "idle_rss_kb": stats(&mut idle_rss_kb),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string())
    );
    if startup_ms.is_empty() {
        eprintln!("startup-probe: the server never answered");
        std::process::exit(1);
    }
}

/// The raw HTTP/1.1 request used to probe, with `Connection: close`.
fn build_request(args: &Args) -> Vec<u8> {
    let mut extra = String::new();
    for raw in &args.headers {
        let Some((name, value)) = raw.split_once(':') else {
            eprintln!("startup-probe: --header must look like 'Name: value'");
            std::process::exit(2);
        };
        extra.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
    }
    let host = args.addr;
    match &args.ready_path {
        Some(path) => {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
                .into_bytes()
        }
        None => {
            let body = json!({
                "model": args.model,
                "messages": [{ "role": "user", "content": "ping" }],
                "max_tokens": 1,
            })
            .to_string();
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    }
}

/// Starts the server once, waits for its first 2xx, idles, reads RSS, stops it.
fn one_run(args: &Args, request: &[u8]) -> Value {
    if TcpStream::connect_timeout(&args.addr, Duration::from_millis(100)).is_ok() {
        return json!({ "error": format!("{} is already accepting connections", args.addr) });
    }
    let stderr = match &args.log {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => Stdio::from(file),
            Err(_) => Stdio::null(),
        },
        None => Stdio::null(),
    };
    let started = Instant::now();
    let mut child = match Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return json!({ "error": format!("cannot spawn {}: {err}", args.command[0]) }),
    };
    let deadline = started + Duration::from_millis(args.timeout_ms);
    let mut attempts: u64 = 0;
    let mut last_status = None;
    let result = loop {
        attempts += 1;
        match probe(args.addr, request) {
            Some(status) if (200..300).contains(&status) => break Ok(started.elapsed()),
            other => last_status = other.or(last_status),
        }
        if let Ok(Some(exit)) = child.try_wait() {
            break Err(format!("server exited before serving: {exit}"));
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "no 2xx within {} ms (last status {last_status:?})",
                args.timeout_ms
            ));
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let run = match result {
        Ok(elapsed) => {
            std::thread::sleep(Duration::from_millis(args.idle_ms));
            json!({
                "startup_ms": (elapsed.as_secs_f64() * 1e5).round() / 100.0,
                "attempts": attempts,
                "idle_rss_kb": proc_status_kb(child.id(), "VmRSS"),
            })
        }
        Err(error) => json!({ "error": error, "attempts": attempts }),
    };
    stop(&mut child);
    run
}

/// One probe request; the response's status code, or `None` when the server
/// is not accepting connections yet or answered garbage.
fn probe(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(request).ok()?;
    let mut response = Vec::with_capacity(1024);
    // Connection: close, so the server ends the response by closing; cap what
    // we keep so a misbehaving server cannot grow this without bound.
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if response.len() < 64 * 1024 => response.extend_from_slice(&buf[..n]),
            Ok(_) => {}
            Err(_) if !response.is_empty() => break,
            Err(_) => return None,
        }
    }
    let line = response.split(|&b| b == b'\n').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split_ascii_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// SIGTERM, up to two seconds' grace, then SIGKILL; always reaps the child.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Median, min and max of `values` (sorted in place); null when empty.
fn stats(values: &mut [f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    json!({ "median": median, "min": values[0], "max": values[n - 1] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(stats(&mut [3.0, 1.0, 2.0])["median"], 2.0);
        assert_eq!(stats(&mut [4.0, 1.0, 2.0, 3.0])["median"], 2.5);
        assert!(stats(&mut []).is_null());
    }
}
