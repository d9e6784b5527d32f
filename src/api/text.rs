//! Text from elsewhere (a member's API errors, a kubeconfig's exec plugin, an object's own
//! fields) made fit for status and Events: bounded in length, one line, and with anything that
//! looks like a credential replaced. A compromised or careless member must not be able to fill
//! the hub's status with megabytes, or make it show a token to everyone who may read it.

/// Longest condition message written (Kubernetes allows 32,768 bytes).
pub const MAX_MESSAGE: usize = 1024;

/// What replaces a credential.
const REDACTED: &str = "[redacted]";

/// Keys whose value is replaced in `key=value` and `key: value`.
const SECRET_KEYS: [&str; 8] = [
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "x-amz-security-token",
    "client-key-data",
    "access_token",
];

/// `text` scrubbed (see the module) and cut to `max` bytes, with `…` where it was cut.
pub fn clean(text: &str, max: usize) -> String {
    bounded(&scrub(text), max)
}

/// `text` cut to at most `max` bytes on a character boundary, `…` marking the cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Control characters become spaces; bearer tokens, the values of secret-sounding keys and
/// words that look like a secret (see `looks_like_secret`) become `[redacted]`.
pub fn scrub(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut redact_next = false;
    for word in one_line.split(' ') {
        let lower = word.to_ascii_lowercase();
        let bare = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        // `Bearer <token>`, `Basic <credentials>`, also after `Authorization:`.
        if bare == "bearer" || bare == "basic" {
            redact_next = true;
            out.push(word.to_string());
            continue;
        }
        if redact_next && !word.is_empty() {
            redact_next = false;
            if looks_like_credential(word) {
                out.push(REDACTED.to_string());
                continue;
            }
        }
        if SECRET_KEYS.contains(&bare) && (lower.ends_with(':') || lower.ends_with('=')) {
            // `token: value`: the value is the next word.
            redact_next = true;
            out.push(word.to_string());
            continue;
        }
        out.push(redact_word(word));
    }
    out.join(" ")
}

/// One word: `key=value` with a secret key, a JWT, an AWS access key id.
fn redact_word(word: &str) -> String {
    for sep in ['=', ':'] {
        if let Some((key, value)) = word.split_once(sep) {
            // `token=…`, also inside a URL: `…?token=…`, `…&token=…`.
            let k = key
                .rsplit(['?', '&'])
                .next()
                .unwrap_or(key)
                .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_ascii_lowercase();
            if !value.is_empty()
                && SECRET_KEYS
                    .iter()
                    .any(|s| k == *s || k.ends_with(&format!("_{s}")))
            {
                return format!("{key}{sep}{REDACTED}");
            }
        }
    }
    let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if looks_like_secret(bare) {
        return word.replacen(bare, REDACTED, 1);
    }
    word.to_string()
}

/// Tokens (JWTs, Google `ya29.` access tokens, EKS `k8s-aws-v1.` tokens), key material (40–100 base64 characters with upper- and lowercase letters and digits mixed:
/// ARNs, ids and paths have ':' or '.' in them), and any unbroken word over 100 characters.
fn looks_like_secret(bare: &str) -> bool {
    bare.len() > 100
        || bare.starts_with("ya29.")
        || bare.starts_with("k8s-aws-v1.")
        || bare.starts_with("eyJ")
        || ((40..=100).contains(&bare.len()) && looks_like_key(bare))
}

fn looks_like_key(word: &str) -> bool {
    word.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
        && word.chars().any(|c| c.is_ascii_digit())
}

/// A word after `Bearer`, `Basic` or `token:`: redacted unless it reads like prose (short,
/// letters only: `invalid bearer token`, `token: expired`).
fn looks_like_credential(word: &str) -> bool {
    word.len() >= 12
        || word
            .chars()
            .any(|c| c.is_ascii_digit() || "+/=_-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";
        let cases = [
            (
                format!("Unauthorized: Bearer {jwt}"),
                "Unauthorized: Bearer [redacted]".to_string(),
            ),
            (
                format!("token {jwt} rejected"),
                "token [redacted] rejected".to_string(),
            ),
            (
                "invalid bearer token: token expired".into(),
                "invalid bearer token: token expired".into(),
            ),
            (
                "url?token=abc123&x=1".into(),
                "url?token=[redacted]".to_string(),
            ),
            (
                "password: hunter22 was wrong".into(),
                "password: [redacted] was wrong".into(),
            ),
            // An access key id names a key and is not one (AWS errors quote it).
            (
                "key AKIAIOSFODNN7EXAMPLE denied".into(),
                "key AKIAIOSFODNN7EXAMPLE denied".into(),
            ),
            (
                "Authorization: Basic dXNlcjpwYXNz".into(),
                "Authorization: Basic [redacted]".into(),
            ),
        ];
        for (input, want) in &cases {
            assert_eq!(&scrub(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_errors_are_kept() {
        let text = "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:bascule:member\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"";
        assert_eq!(scrub(text), text);
        let text = "error trying to connect: tcp connect error: Connection refused (os error 111)";
        assert_eq!(scrub(text), text);
    }

    #[test]
    fn one_line_and_bounded() {
        assert_eq!(scrub("a\nb\tc"), "a b c");
        let long = "é".repeat(2000);
        let cut = clean(&long, MAX_MESSAGE);
        assert!(cut.len() <= MAX_MESSAGE, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("ééé", 5), "é…");
        assert_eq!(bounded("abc", 10), "abc");
    }
}
