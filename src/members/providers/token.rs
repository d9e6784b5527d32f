//! The bearer token of a member client, refreshed before it expires.
//!
//! kube's own refreshing tokens (exec plugins, token files, the `gcp` auth provider) are private
//! to kube, so a member client gets a [`BearerLayer`] in front of kube's stack: every request
//! asks the member's [`TokenCache`] for a header; the cache hands out the current token, or
//! fetches a new one from its [`TokenSource`] once the token has entered its refresh window.
//! The client itself (connection pool, TLS) is never rebuilt for a new token.

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, header::AUTHORIZATION};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::task::{Context, Poll, ready};
use tokio::sync::Mutex;

use tower::{BoxError, Layer, Service};

use super::{ProviderError, ProviderErrorKind};

/// A bearer token and its lifetime. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Token {
    value: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Token {
    pub fn new(value: String, issued_at: Timestamp, expires_at: Timestamp) -> Token {
        Token {
            value,
            issued_at,
            expires_at,
        }
    }

    /// The token itself, for an `Authorization` header (and tests).
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"[redacted]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where new tokens come from (EKS: signing; GKE: Google's token endpoints).
pub trait TokenSource: Send + Sync + 'static {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>>;
}

/// How long before expiry a token is replaced: a fifth of its lifetime, at least 10 s, at most
/// 5 min. An EKS token (14 min) is replaced after about 11 min; a Google token (1 h) after 55.
/// The margin covers clock skew, a slow refresh and a request in flight when the token expires.
pub fn refresh_at(issued_at: Timestamp, expires_at: Timestamp) -> Timestamp {
    let lifetime = expires_at.duration_since(issued_at);
    let margin = (lifetime / 5).clamp(SignedDuration::from_secs(10), SignedDuration::from_mins(5));
    expires_at - margin
}

/// After a failed refresh, the old token (while still valid) is used and the next attempt waits
/// this long, so a provider outage costs one call per interval rather than one per request.
pub const RETRY_AFTER_FAILURE: SignedDuration = SignedDuration::from_secs(5);

/// What to do with the cached token at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It is fresh: use it.
    Use,
    /// It is due (or there is none): fetch a new one.
    Refresh,
    /// It is due, a refresh just failed, and it is still valid: use it until the next attempt.
    UseWhileRetrying,
}

/// Pure: the cache's decision, from the token's times, the time of the next allowed attempt
/// after a failure, and `now`.
pub fn decide(
    token: Option<(Timestamp, Timestamp)>,
    retry_not_before: Option<Timestamp>,
    now: Timestamp,
) -> Decision {
    let Some((issued, expires)) = token else {
        return Decision::Refresh;
    };
    if now < refresh_at(issued, expires) {
        return Decision::Use;
    }
    match retry_not_before {
        Some(t) if now < t && now < expires => Decision::UseWhileRetrying,
        _ => Decision::Refresh,
    }
}

/// A member's current token and its source. Clones share the token.
#[derive(Clone)]
pub struct TokenCache {
    source: Arc<dyn TokenSource>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    retry_not_before: Option<Timestamp>,
}

impl TokenCache {
    /// A cache holding `first` (fetched when the connection was built, which proved the
    /// credentials work).
    pub fn new(source: Arc<dyn TokenSource>, first: Option<Token>) -> TokenCache {
        TokenCache {
            source,
            state: Arc::new(Mutex::new(State {
                token: first,
                retry_not_before: None,
            })),
        }
    }

    /// The current token, refreshed first if it is due. One refresh at a time: concurrent
    /// requests wait for it and share the result.
    pub async fn token(&self) -> Result<Token, ProviderError> {
        let mut state = self.state.lock().await;
        let now = Timestamp::now();
        let times = state.token.as_ref().map(|t| (t.issued_at, t.expires_at));
        match decide(times, state.retry_not_before, now) {
            Decision::Use | Decision::UseWhileRetrying => {
                Ok(state.token.clone().expect("decide refreshes when empty"))
            }
            Decision::Refresh => match self.source.fetch().await {
                Ok(token) => {
                    tracing::debug!(expires_at = %token.expires_at, "member token refreshed");
                    state.token = Some(token.clone());
                    state.retry_not_before = None;
                    Ok(token)
                }
                Err(e) => {
                    state.retry_not_before = Some(Timestamp::now() + RETRY_AFTER_FAILURE);
                    match &state.token {
                        Some(old) if now < old.expires_at => {
                            tracing::warn!(reason = e.reason(), expires_at = %old.expires_at, "member token refresh failed; the current token is still valid: {e}");
                            Ok(old.clone())
                        }
                        _ => Err(e),
                    }
                }
            },
        }
    }

    async fn header(&self) -> Result<HeaderValue, ProviderError> {
        let token = self.token().await?;
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::ProviderError,
                    "the provider returned a token that is not a valid HTTP header value",
                )
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Puts the member's current token on every request. Tower layer in front of kube's stack.
#[derive(Clone)]
pub struct BearerLayer {
    cache: TokenCache,
}

impl BearerLayer {
    pub fn new(cache: TokenCache) -> BearerLayer {
        BearerLayer { cache }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            cache: self.cache.clone(),
            pending: None,
            header: None,
        }
    }
}

/// A refresh (or a look at the cache) can be slow only when the provider is: it must never hold
/// the member's requests, probes included, for longer than this.
const REFRESH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The service [`BearerLayer`] makes. The token is obtained in `poll_ready` (kube drives its
/// stack through a buffer: `poll_ready` then `call`), so the inner service needs no `Clone` and
/// a refresh error fails the request with the provider's reason.
pub struct Bearer<S> {
    inner: S,
    cache: TokenCache,
    pending: Option<BoxFuture<'static, Result<HeaderValue, ProviderError>>>,
    header: Option<HeaderValue>,
}

impl<S, B> Service<Request<B>> for Bearer<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.header.is_none() {
            let cache = self.cache.clone();
            let pending = self.pending.get_or_insert_with(|| {
                Box::pin(async move {
                    tokio::time::timeout(REFRESH_DEADLINE, cache.header())
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProviderError::new(
                                ProviderErrorKind::ProviderUnavailable,
                                "the provider did not issue a token within 10 s",
                            ))
                        })
                })
            });
            let result = ready!(pending.as_mut().poll(cx));
            self.pending = None;
            self.header = Some(result?);
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let header = self
            .header
            .take()
            .expect("poll_ready returned Ready before call");
        request.headers_mut().insert(AUTHORIZATION, header);
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    #[test]
    fn refresh_windows() {
        // EKS: 14 minutes → replaced 2 min 48 s before expiry.
        assert_eq!(refresh_at(t(0), t(14 * 60)), t(14 * 60 - 168));
        // Google: 1 hour → 5 minutes before.
        assert_eq!(refresh_at(t(0), t(3600)), t(3300));
        // Very short tokens keep at least 10 s.
        assert_eq!(refresh_at(t(0), t(20)), t(10));
    }

    #[test]
    fn decisions() {
        let tok = Some((t(0), t(840)));
        assert_eq!(decide(None, None, t(0)), Decision::Refresh);
        assert_eq!(decide(tok, None, t(600)), Decision::Use);
        assert_eq!(decide(tok, None, t(700)), Decision::Refresh);
        // A failed refresh at 700: the old token serves until the next attempt…
        assert_eq!(
            decide(tok, Some(t(705)), t(702)),
            Decision::UseWhileRetrying
        );
        assert_eq!(decide(tok, Some(t(705)), t(705)), Decision::Refresh);
        // …but never once it has expired.
        assert_eq!(decide(tok, Some(t(900)), t(840)), Decision::Refresh);
    }

    struct Counting {
        calls: AtomicUsize,
        lifetime: i64,
        fail: bool,
    }

    impl TokenSource for Counting {
        fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if self.fail {
                    return Err(ProviderError::new(
                        ProviderErrorKind::CredentialsExpired,
                        "expired",
                    ));
                }
                let now = Timestamp::now();
                Ok(Token::new(
                    format!("token-{n}"),
                    now,
                    now + SignedDuration::from_secs(self.lifetime),
                ))
            })
        }
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused_and_a_due_one_replaced() {
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: 840,
            fail: false,
        });
        let cache = TokenCache::new(source.clone(), None);
        assert_eq!(cache.token().await.unwrap().expose(), "token-0");
        assert_eq!(cache.token().await.unwrap().expose(), "token-0");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        // A token already inside its refresh window is replaced on the next request.
        let now = Timestamp::now();
        let due = Token::new(
            "old".into(),
            now - SignedDuration::from_secs(800),
            now + SignedDuration::from_secs(40),
        );
        let cache = TokenCache::new(source.clone(), Some(due));
        assert_eq!(cache.token().await.unwrap().expose(), "token-1");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_a_valid_token_and_fails_without_one() {
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: 840,
            fail: true,
        });
        let now = Timestamp::now();
        let due = Token::new(
            "old".into(),
            now - SignedDuration::from_secs(800),
            now + SignedDuration::from_secs(40),
        );
        let cache = TokenCache::new(source.clone(), Some(due));
        assert_eq!(cache.token().await.unwrap().expose(), "old");
        assert_eq!(cache.token().await.unwrap().expose(), "old");
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            1,
            "no retry within 5 s"
        );
        let cache = TokenCache::new(source, None);
        let e = cache.token().await.unwrap_err();
        assert_eq!(e.reason(), "CredentialsExpired");
    }

    #[tokio::test]
    async fn the_layer_sets_a_sensitive_authorization_header() {
        use tower::ServiceExt;
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: 840,
            fail: false,
        });
        let echo = tower::service_fn(|r: Request<()>| async move {
            Ok::<_, BoxError>(r.headers().get(AUTHORIZATION).cloned())
        });
        let service = BearerLayer::new(TokenCache::new(source, None)).layer(echo);
        let header = service.oneshot(Request::new(())).await.unwrap().unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer token-0");
        assert!(header.is_sensitive());
    }

    #[tokio::test]
    async fn a_refresh_failure_fails_the_request_with_the_provider_reason() {
        use tower::ServiceExt;
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: 840,
            fail: true,
        });
        let echo = tower::service_fn(|_: Request<()>| async { Ok::<_, BoxError>(()) });
        let service = BearerLayer::new(TokenCache::new(source, None)).layer(echo);
        let e = service.oneshot(Request::new(())).await.unwrap_err();
        let p = e.downcast_ref::<ProviderError>().expect("a ProviderError");
        assert_eq!(p.reason(), "CredentialsExpired");
    }
}
