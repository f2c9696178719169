//! A minimal OTLP/HTTP receiver on loopback: it answers every export with
//! success and counts what arrived (requests, bytes, spans, span events),
//! walking the protobuf encoding without decoding it into messages. It
//! stands in for the collector, in the driver's process, on the client's
//! core: the server pays for building, serialising and sending its spans,
//! as it would in production, and not for receiving them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An export request larger than this is refused (the SDK's batches of 512
/// spans are far smaller).
const MAX_BODY: usize = 64 << 20;

/// What the sink has received so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) requests: u64,
    pub(crate) bytes: u64,
    pub(crate) spans: u64,
    pub(crate) events: u64,
}

impl std::ops::Sub for Received {
    type Output = Received;
    fn sub(self, earlier: Received) -> Received {
        Received {
            requests: self.requests - earlier.requests,
            bytes: self.bytes - earlier.bytes,
            spans: self.spans - earlier.spans,
            events: self.events - earlier.events,
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    spans: AtomicU64,
    events: AtomicU64,
    malformed: AtomicU64,
}

/// A running sink; its threads end with the process.
pub(crate) struct Sink {
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl Sink {
    /// Listens on a loopback port, on a thread of its own (and one per
    /// connection: the SDK's exporter keeps one open).
    pub(crate) fn start() -> io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let accepting = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("otlp-sink".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let counters = Arc::clone(&accepting);
                    let _ = std::thread::Builder::new()
                        .name("otlp-sink-conn".into())
                        .spawn(move || serve(stream, &counters));
                }
            })?;
        Ok(Sink { addr, counters })
    }

    /// The URL to give an OTLP/HTTP trace exporter.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub(crate) fn received(&self) -> Received {
        let c = &self.counters;
        Received {
            requests: c.requests.load(Ordering::SeqCst),
            bytes: c.bytes.load(Ordering::SeqCst),
            spans: c.spans.load(Ordering::SeqCst),
            events: c.events.load(Ordering::SeqCst),
        }
    }

    /// Export requests whose body was not the protobuf expected.
    pub(crate) fn malformed(&self) -> u64 {
        self.counters.malformed.load(Ordering::SeqCst)
    }
}

/// Serves one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, counters: &Counters) {
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    loop {
        let Ok(Some(length)) = read_head(&mut reader) else {
            return;
        };
        if length > MAX_BODY {
            let _ = writer.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return;
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        match count(&body) {
            Some((spans, events)) => {
                counters.spans.fetch_add(spans, Ordering::SeqCst);
                counters.events.fetch_add(events, Ordering::SeqCst);
            }
            None => {
                counters.malformed.fetch_add(1, Ordering::SeqCst);
            }
        }
        counters.bytes.fetch_add(length as u64, Ordering::SeqCst);
        // Counted before the response, so that a flush that has returned
        // has been counted.
        counters.requests.fetch_add(1, Ordering::SeqCst);
        // An empty body is an empty ExportTraceServiceResponse: all accepted.
        let response =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(response).is_err() {
            return;
        }
    }
}

/// Reads a request head; `Ok(None)` at a clean end of the connection, an
/// error for a head without `Content-Length` (the exporter always sends it).
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<usize>> {
    let mut line = String::new();
    let mut length = None;
    let mut first = true;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return if first {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        first = false;
        let line = line.trim_end();
        if line.is_empty() {
            return length
                .map(Some)
                .ok_or_else(|| io::Error::other("no content-length"));
        }
        match line.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                length = value.trim().parse().ok();
            }
            _ => {}
        }
    }
}

/// One protobuf field: its number and, for length-delimited fields, the
/// bytes it holds.
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of one message, or `None` if it is not valid protobuf.
fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let bytes = match wire_type {
            0 => {
                varint(&mut buf)?;
                None
            }
            1 | 5 => {
                let size = if wire_type == 1 { 8 } else { 4 };
                buf = buf.get(size..)?;
                None
            }
            2 => {
                let length = usize::try_from(varint(&mut buf)?).ok()?;
                let (bytes, rest) = (buf.get(..length)?, buf.get(length..)?);
                buf = rest;
                Some(bytes)
            }
            _ => return None,
        };
        fields.push(Field { number, bytes });
    }
    Some(fields)
}

/// The embedded messages of field `number`.
fn messages(buf: &[u8], number: u64) -> Option<Vec<&[u8]>> {
    Some(
        fields(buf)?
            .into_iter()
            .filter(|field| field.number == number)
            .filter_map(|field| field.bytes)
            .collect(),
    )
}

/// Spans and span events in an `ExportTraceServiceRequest`:
/// `resource_spans` (1) → `scope_spans` (2) → `spans` (2) → `events` (11).
fn count(request: &[u8]) -> Option<(u64, u64)> {
    let (mut spans, mut events) = (0, 0);
    for resource in messages(request, 1)? {
        for scope in messages(resource, 2)? {
            for span in messages(scope, 2)? {
                spans += 1;
                events += messages(span, 11)?.len() as u64;
            }
        }
    }
    Some((spans, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};
    use prost::Message;

    fn span(name: &str, events: usize) -> Span {
        Span {
            name: name.into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            events: (0..events)
                .map(|i| Event {
                    name: format!("event {i}"),
                    time_unix_nano: 3,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_spans_and_events_of_the_official_encoding() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![
                        ScopeSpans {
                            spans: vec![span("a", 0), span("b", 21)],
                            ..Default::default()
                        },
                        ScopeSpans {
                            spans: vec![span("c", 2)],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span("d", 1)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(count(&request.encode_to_vec()), Some((4, 24)));
        assert_eq!(count(&[]), Some((0, 0)));
        // Truncated: a length that runs past the end.
        let bytes = request.encode_to_vec();
        assert_eq!(count(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn answers_and_counts_over_http() {
        let sink = Sink::start().unwrap();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("a", 1), span("b", 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = request.encode_to_vec();
        let mut stream = TcpStream::connect(sink.addr).unwrap();
        let mut responses = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..2 {
            write!(
                stream,
                "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
            let mut status = String::new();
            responses.read_line(&mut status).unwrap();
            assert_eq!(status, "HTTP/1.1 200 OK\r\n");
            // The rest of the head; the body is empty.
            let mut line = String::new();
            while line != "\r\n" {
                line.clear();
                responses.read_line(&mut line).unwrap();
            }
        }
        let received = sink.received();
        assert_eq!(
            received,
            Received {
                requests: 2,
                bytes: 2 * body.len() as u64,
                spans: 4,
                events: 6
            }
        );
        assert_eq!(sink.malformed(), 0);
    }
}
