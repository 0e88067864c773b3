//! Fuzz target: the SSE parser of `switchyard-wire` on arbitrary bytes cut into arbitrary reads.
//!
//! Input layout: byte 0 picks the per-event cap, byte 1 seeds the cut points, the rest is the
//! stream. The stream is parsed as the upstream reader does (push a read, drain events, stop at
//! the first error, `finish` at the end) once whole and once in the chosen reads; when both
//! succeed they must yield the same events, since where TCP cuts a stream must not matter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_wire::sse::{Event, Parser, SseError};

/// Parses `reads` in order, as `provider::http` does.
fn parse(cap: usize, reads: &[&[u8]]) -> Result<Vec<Event>, SseError> {
    let mut parser = Parser::new(cap);
    let mut events = Vec::new();
    for read in reads {
        parser.push(read);
        while let Some(event) = parser.next_event()? {
            events.push(event);
        }
    }
    if let Some(event) = parser.finish()? {
        events.push(event);
    }
    for event in &events {
        // Reframing is what a same-dialect client receives: it must not panic either.
        let _ = event.to_frame();
    }
    Ok(events)
}

/// Cut points from a small xorshift generator: reads of 1 to 32 bytes.
fn cut(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut reads = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 32 + 1).min(rest.len());
        let (read, tail) = rest.split_at(n);
        reads.push(read);
        rest = tail;
    }
    reads
}

fuzz_target!(|data: &[u8]| {
    let [cap_byte, seed, stream @ ..] = data else {
        return;
    };
    let cap = match cap_byte % 4 {
        0 => 1 << 20,
        1 => 256,
        2 => 16,
        _ => usize::from(*cap_byte),
    };
    let whole = parse(cap, &[stream]);
    let pieces = parse(cap, &cut(stream, *seed));
    if let (Ok(whole), Ok(pieces)) = (&whole, &pieces) {
        assert_eq!(
            whole, pieces,
            "the same stream cut differently parsed differently"
        );
    }
});
