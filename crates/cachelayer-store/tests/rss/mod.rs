//! Helpers for the memory tests: the process's resident memory, responses whose header values
//! and bodies are slices of a connection's read buffer (as hyper parses them), and a small
//! random number generator.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use bytes::{BufMut, Bytes, BytesMut};
use cachelayer_store::{StalePolicy, StoredRequest, StoredResponse};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use std::time::{Duration, SystemTime};

/// The process's resident set size in bytes: `VmRSS` of `/proc/self/status` (the resident page
/// count of `/proc/self/statm`, in bytes, whatever the page size).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`, log-uniform: as many bodies of 100 to 1,000 bytes as of 1 to 10 KB.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let (lo_f, hi_f) = ((lo as f64).ln(), (hi as f64).ln());
        ((lo_f + unit * (hi_f - lo_f)).exp() as usize).clamp(lo, hi)
    }
}

/// A client connection's read buffer, as hyper keeps one: responses are read into it, and their
/// header values and body handed out as [`Bytes`] slices of it (`split_to(..).freeze()`). When
/// it has no room left for the next response, a new buffer of `buffer_size` is allocated: the
/// old one is freed only once every slice of it is dropped.
pub struct Connection {
    buffer: BytesMut,
    buffer_size: usize,
}

impl Connection {
    pub fn new(buffer_size: usize) -> Self {
        Connection {
            buffer: BytesMut::new(),
            buffer_size,
        }
    }

    /// "Reads" a response with a body of `body_len` bytes: its header fields (values are slices
    /// of the buffer; names are copied, as hyper does) and its body (a slice of the buffer).
    pub fn read_response(&mut self, n: u64, body_len: usize) -> (HeaderMap, Bytes) {
        let head = format!(
            "HTTP/1.1 200 OK\r\n\
             content-type: application/json; charset=utf-8\r\n\
             content-length: {body_len}\r\n\
             date: Tue, 10 Jun 2025 12:00:00 GMT\r\n\
             last-modified: Mon, 09 Jun 2025 08:30:00 GMT\r\n\
             etag: \"{n:016x}\"\r\n\
             cache-control: public, max-age=3600\r\n\
             vary: accept-encoding\r\n\
             server: origin/1.0\r\n\
             x-request-id: {:032x}\r\n\
             access-control-allow-origin: *\r\n\
             \r\n",
            u128::from(n) * 0x9e37_79b9_7f4a_7c15
        );
        let needed = head.len() + body_len;
        if self.buffer.capacity() < needed {
            self.buffer = BytesMut::with_capacity(self.buffer_size.max(needed));
        }
        self.buffer.put_slice(head.as_bytes());
        let head = self.buffer.split_to(head.len()).freeze();
        let mut headers = HeaderMap::new();
        let mut at = head.iter().position(|&b| b == b'\n').unwrap() + 1;
        while at < head.len() {
            let end = at + head[at..].iter().position(|&b| b == b'\n').unwrap();
            let line = &head[at..end - 1];
            if line.is_empty() {
                break;
            }
            let colon = line.iter().position(|&b| b == b':').unwrap();
            let name = HeaderName::from_bytes(&line[..colon]).unwrap();
            let value =
                HeaderValue::from_maybe_shared(head.slice(at + colon + 2..end - 1)).unwrap();
            headers.append(name, value);
            at = end + 1;
        }
        self.buffer.put_bytes(b'x', body_len);
        let body = self.buffer.split_to(body_len).freeze();
        (headers, body)
    }
}

/// A stored response for `url` with the header fields and body read from `connection`, as the
/// cache's write stage builds one (the request's `Accept-Encoding` kept for `Vary`).
pub fn entry(connection: &mut Connection, n: u64, url: String, body_len: usize) -> StoredResponse {
    let (headers, body) = connection.read_response(n, body_len);
    let mut request_headers = HeaderMap::new();
    request_headers.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
    let now = SystemTime::now();
    StoredResponse {
        request: StoredRequest {
            method: Method::GET,
            url,
            headers: request_headers,
        },
        status: StatusCode::OK,
        version: Version::HTTP_11,
        headers,
        body,
        request_time: now,
        created_at: now,
        initial_age: Duration::ZERO,
        expires: Some(now + Duration::from_secs(3600)),
        stale: StalePolicy::default(),
        retain_until: None,
    }
}

/// What the cache does with an entry it serves: a copy of its header fields (each value cloned)
/// and a clone of its body.
pub fn serve(entry: &StoredResponse) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::with_capacity(entry.headers.len() + 3);
    for (name, value) in &entry.headers {
        headers.append(name.clone(), value.clone());
    }
    (headers, entry.body.clone())
}
