//! Plain HTTP to the operator's own endpoints (`/livez`, `/readyz`, `/metrics`) on 127.0.0.1.

use std::time::Duration;

use super::TestResult;

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `GET path` over HTTP/1.0: the status code and the body (5 s to connect, 5 s to answer).
pub async fn http_get(addr: &str, path: &str) -> TestResult<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr}: timed out"))??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| format!("GET {path}: no complete answer within 5 s"))??;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: not an HTTP answer: {head}"))?;
    Ok((code, body.to_string()))
}
