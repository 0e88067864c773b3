//! Server-sent events: an incremental parser for upstream streams and the frame writer for
//! client streams.
//!
//! Written by hand (rather than with eventsource-stream) because the parser must stay linear on
//! multi-megabyte `data:` lines that arrive in many small reads (base64 images, long tool
//! arguments): it remembers how far it has scanned instead of re-scanning the whole buffered line
//! on every read, and it caps how much one event may buffer. It follows the WHATWG rules: `\n`,
//! `\r\n` and `\r` end lines, `:` starts a comment, multi-line `data:` joins with `\n`, a blank
//! line dispatches.

use bytes::{BufMut, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if the stream names its events (Anthropic does, OpenAI does not).
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// One event grew past the configured cap without a terminating blank line.
    EventTooLarge { limit: usize },
    /// The stream is not UTF-8.
    InvalidUtf8,
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => {
                write!(f, "a server-sent event exceeded {limit} bytes")
            }
            SseError::InvalidUtf8 => write!(f, "the event stream is not valid UTF-8"),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE parser: `push` bytes as they arrive, then drain events with `next_event`.
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous line ended with `\r`: a `\n` at the start of the next read belongs to it.
    skip_lf: bool,
    max_event_bytes: usize,
}

impl Parser {
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            buf: BytesMut::new(),
            scanned: 0,
            event: None,
            data: String::new(),
            has_data: false,
            skip_lf: false,
            max_event_bytes,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, SseError> {
        loop {
            if self.skip_lf && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    let _ = self.buf.split_to(1);
                }
                self.skip_lf = false;
            }
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() + self.data.len() > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                return Ok(None);
            };
            let end = self.scanned + offset;
            let terminator = self.buf[end];
            let line = self.buf.split_to(end + 1);
            self.scanned = 0;
            if terminator == b'\r' {
                self.skip_lf = true;
            }
            let line = std::str::from_utf8(&line[..end]).map_err(|_| SseError::InvalidUtf8)?;
            if let Some(event) = self.take_line(line)? {
                return Ok(Some(event));
            }
        }
    }

    /// Handles one line; returns an event when the line is blank and data was collected.
    fn take_line(&mut self, line: &str) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            if !self.has_data {
                self.event = None;
                return Ok(None);
            }
            self.has_data = false;
            return Ok(Some(Event {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {} // `id` and `retry` mean nothing to a proxy.
        }
        Ok(None)
    }

    /// At end of stream: an event that was not terminated by a blank line. The WHATWG rules
    /// discard it; upstreams that forget the final blank line exist, so it is returned.
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            let line = std::str::from_utf8(&rest).map_err(|_| SseError::InvalidUtf8)?;
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if let Some(ev) = self.take_line(&line)? {
                return Ok(Some(ev));
            }
        }
        self.scanned = 0;
        self.take_line("")
    }
}

/// `data: <payload>\n\n`.
pub fn data_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 8);
    out.put_slice(b"data: ");
    out.put_slice(payload);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// `event: <name>\ndata: <payload>\n\n`, the framing of the Anthropic dialect.
pub fn named_frame(event: &str, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + event.len() + 16);
    put_named(&mut out, event, |out| out.put_slice(payload));
    out.freeze()
}

/// Appends `event: <name>\ndata: <value as JSON>\n\n` to `out`, serializing in place (the
/// entrances' encoders write several events into one buffer).
pub fn put_named_json(out: &mut BytesMut, event: &str, value: &serde_json::Value) {
    // Serializing a Value into memory cannot fail.
    put_named(out, event, |out| {
        let _ = serde_json::to_writer(out.writer(), value);
    });
}

fn put_named(out: &mut BytesMut, event: &str, payload: impl FnOnce(&mut BytesMut)) {
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    payload(out);
    out.put_slice(b"\n\n");
}

impl Event {
    /// The event as a frame again (`event: NAME` when named, a `data:` line per line of data, a
    /// blank line): what a client of the upstream's own dialect receives when the gateway
    /// forwards the stream as it came.
    pub fn to_frame(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 48);
        if let Some(name) = &self.event {
            out.put_slice(b"event: ");
            out.put_slice(name.as_bytes());
            out.put_u8(b'\n');
        }
        for line in self.data.split('\n') {
            out.put_slice(b"data: ");
            out.put_slice(line.as_bytes());
            out.put_u8(b'\n');
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

/// The OpenAI end-of-stream sentinel.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reframed_parses_back_to_itself() {
        let event = Event {
            event: Some("content_block_delta".into()),
            data: "{\"a\":1}\n{\"b\":2}".into(),
        };
        let mut parser = Parser::new(1 << 16);
        parser.push(&event.to_frame());
        assert_eq!(parser.next_event().unwrap(), Some(event));
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            while let Some(ev) = p.next_event().unwrap() {
                out.push(ev);
            }
        }
        if let Some(ev) = p.finish().unwrap() {
            out.push(ev);
        }
        out
    }

    #[test]
    fn named_events_and_comments() {
        let evs = parse_all(&[b": keep-alive\nevent: ping\ndata: {\"type\":\"ping\"}\n\n"]);
        assert_eq!(
            evs,
            vec![Event {
                event: Some("ping".into()),
                data: "{\"type\":\"ping\"}".into()
            }]
        );
    }

    #[test]
    fn every_line_ending_and_split_points() {
        let stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: x\ndata: y\n\n";
        let whole = parse_all(&[stream]);
        let datas: Vec<_> = whole.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(datas, ["a", "b", "c", "x\ny"]);
        // The same stream cut at every byte position parses the same.
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(parse_all(&[a, b]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_long_line_in_small_reads_is_linear_and_capped() {
        let mut p = Parser::new(256);
        p.push(b"data: ");
        for _ in 0..20 {
            p.push(b"xxxx");
            assert_eq!(p.next_event(), Ok(None));
        }
        p.push(&[b'x'; 256]);
        assert_eq!(p.next_event(), Err(SseError::EventTooLarge { limit: 256 }));
    }

    #[test]
    fn unterminated_last_event_is_returned_at_finish() {
        let evs = parse_all(&[b"data: [DONE]"]);
        assert_eq!(evs[0].data, "[DONE]");
    }

    #[test]
    fn frames() {
        assert_eq!(&data_frame(b"{}")[..], b"data: {}\n\n");
        assert_eq!(
            &named_frame("ping", b"{}")[..],
            b"event: ping\ndata: {}\n\n"
        );
    }
}
