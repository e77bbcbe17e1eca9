//! HTTP Basic authentication (RFC 7617) against the plain, htpasswd and htdigest backends.

use super::digest::{self, Algo};
use super::password::{ct_eq, verify_htpasswd};
use super::userfile::{self, HtdigestKey};
use super::{log_bad, BackendKind, Outcome, Request, Require, Settings};

/// The longest base64 credential lighttpd decodes (1023 bytes once decoded); a longer one is
/// answered with a fresh challenge, not a 400.
pub const MAX_CREDENTIALS: usize = 1363;

/// The challenge: `Basic realm="...", charset="UTF-8"`.
pub fn challenge(realm: &str) -> String {
    let mut q = String::with_capacity(realm.len() + 32);
    q.push_str("Basic realm=\"");
    for c in realm.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push_str("\", charset=\"UTF-8\"");
    q
}

/// Check a request against a `"method" => "basic"` entry.
pub(super) fn check(require: &Require, settings: &Settings, req: &Request<'_>) -> Outcome {
    let unauthorized = |bad_creds: bool| Outcome::Challenge {
        www_authenticate: vec![challenge(&require.realm)],
        bad_creds,
    };
    let Some(kind) = settings.backend else {
        log::error!(
            "auth.backend not configured for {}",
            req.path.escape_debug()
        );
        return Outcome::ServerError;
    };
    let Some(b64) = req
        .authorization
        .and_then(|h| super::strip_scheme(h, b"basic"))
    else {
        return unauthorized(false);
    };
    if b64.len() > MAX_CREDENTIALS {
        return unauthorized(false);
    }
    let creds = match super::base64::decode(b64, 1023) {
        Some(c) if !c.is_empty() => userfile::Secret::new(c),
        _ => {
            log::debug!("basic: undecodable credentials from {}", req.client);
            return Outcome::BadRequest;
        }
    };
    let Some(colon) = creds.bytes().iter().position(|&b| b == b':') else {
        log::debug!("basic: credentials without ':' from {}", req.client);
        return Outcome::BadRequest;
    };
    let (user, pw) = creds.bytes().split_at(colon);
    let pw = pw.get(1..).unwrap_or_default();

    if verify(kind, require, settings, req, user, pw) && require.rule.allows(user) {
        return Outcome::Allow {
            user: String::from_utf8_lossy(user).into_owned(),
            auth_type: Some("Basic"),
            authentication_info: None,
        };
    }
    // Unknown user, wrong password, an unusable file and a user the rule does not name all
    // look the same to the client, as in lighttpd.
    log_bad(req, user, "Basic");
    unauthorized(true)
}

/// Does `pw` match what the backend's file stores for `user`?
fn verify(
    kind: BackendKind,
    require: &Require,
    settings: &Settings,
    req: &Request<'_>,
    user: &[u8],
    pw: &[u8],
) -> bool {
    let Some(data) = super::load_userfile(kind, settings, req) else {
        return false;
    };
    let Some(path) = settings.files.path(kind) else {
        return false;
    };
    let mut bad = Vec::new();
    let ok = match kind {
        BackendKind::Plain => {
            userfile::find_password(data.bytes(), user, &mut bad).map(|stored| ct_eq(stored, pw))
        }
        BackendKind::Htpasswd => userfile::find_password(data.bytes(), user, &mut bad)
            .map(|stored| verify_htpasswd(stored, pw)),
        BackendKind::Htdigest => {
            // The file stores H(user:realm:password) for one algorithm per line; Basic has
            // the cleartext, so compute it for the configured realm and compare.
            let algo: Algo = require.algorithms.for_htdigest_basic();
            let realm = require.realm.as_bytes();
            userfile::find_htdigest(
                data.bytes(),
                HtdigestKey::User(user),
                realm,
                algo.output_len() * 2,
                &mut bad,
            )
            .map(|e| {
                let got = userfile::Secret::new(digest::ha1(algo, user, realm, pw));
                ct_eq(got.bytes(), &e.digest)
            })
        }
    };
    super::log_bad_lines(path, &bad);
    ok.unwrap_or(false)
}
