//! The operator's HTTP endpoints: `/metrics` (Prometheus text), `/livez` (the process answers),
//! `/readyz` (connected to the hub; a standby waiting for the leader Lease is ready too, so that a
//! rollout of the Deployment is not held up by it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
pub struct Endpoints {
    pub metrics: Metrics,
    pub ready: Arc<AtomicBool>,
}

/// Serves on `listener` until the future is dropped.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    endpoints: Endpoints,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /livez, /readyz");
    }
    axum::serve(listener, router(endpoints)).await
}

fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(endpoints)
}

async fn metrics(State(e): State<Endpoints>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        e.metrics.encode(),
    )
}

async fn readyz(State(e): State<Endpoints>) -> impl IntoResponse {
    if e.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the hub yet\n",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    async fn get_text(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let code = out[9..12].parse().unwrap();
        (code, out)
    }

    #[tokio::test]
    async fn endpoints_answer_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let e = Endpoints {
            metrics: Metrics::new(),
            ready: Arc::new(AtomicBool::new(false)),
        };
        e.metrics.reconciled("ok", 0.1);
        let server = tokio::spawn(axum::serve(listener, router(e.clone())).into_future());
        assert_eq!(get_text(addr, "/livez").await.0, 200);
        assert_eq!(get_text(addr, "/readyz").await.0, 503);
        e.ready.store(true, Ordering::Release);
        assert_eq!(get_text(addr, "/readyz").await.0, 200);
        let (code, body) = get_text(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(
            body.contains("bascule_reconciles_total{result=\"ok\"} 1"),
            "{body}"
        );
        server.abort();
    }
}
