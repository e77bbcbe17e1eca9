//! The environment a CGI script, a FastCGI or an SCGI backend gets for one request: RFC 3875's
//! meta-variables plus what lighttpd adds in `http_cgi_headers()` (http_cgi.c), with its
//! mangling of request field names and its exclusions. It is built into an [`EnvBuf`]: one
//! buffer that serves exec (NUL-terminated `name=value`) and the FastCGI and SCGI encoders
//! (name and value slices) alike, without an allocation per variable.

use std::ffi::CStr;
use std::net::SocketAddr;

/// Name=value pairs, stored back to back as `name=value\0` in one buffer, with an index of
/// where each starts and how long its name is. The stored form is already what `execve` wants,
/// so handing the environment to a CGI script costs a vector of pointers and nothing more.
#[derive(Clone, Debug, Default)]
pub struct EnvBuf {
    data: Vec<u8>,
    /// Per pair: its start in `data` and the length of its name. Offsets are u32 (an
    /// environment past 4 GiB is refused pair by pair), which halves the index.
    index: Vec<(u32, u32)>,
}

impl EnvBuf {
    pub fn new() -> EnvBuf {
        EnvBuf::default()
    }

    /// Forget every pair, keeping the buffers for the next request.
    pub fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The bytes of every pair in its `name=value\0` form (what an exec'd environment or a
    /// FastCGI params record costs, roughly).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Add a pair, after any with the same name (no replacement: lighttpd does not dedupe
    /// either). False if the buffer would pass 4 GiB; nothing is added then.
    pub fn push(&mut self, name: &[u8], value: &[u8]) -> bool {
        self.push_with(
            |d| d.extend_from_slice(name),
            |d| d.extend_from_slice(value),
        )
    }

    /// Add a pair whose name and value the closures write into the buffer, so that mangled
    /// names and joined values need no scratch buffer of their own.
    fn push_with(
        &mut self,
        name: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let start = self.data.len();
        name(&mut self.data);
        let name_len = self.data.len() - start;
        self.data.push(b'=');
        value(&mut self.data);
        self.data.push(0);
        match (u32::try_from(start), u32::try_from(name_len)) {
            (Ok(s), Ok(n)) if u32::try_from(self.data.len()).is_ok() => {
                self.index.push((s, n));
                true
            }
            _ => {
                self.data.truncate(start);
                false
            }
        }
    }

    /// Give the first pair, when it is named `name`, a new value (CONTENT_LENGTH, which
    /// comes first, once a spooled body's length is known). False if it is not there.
    pub fn replace_first(&mut self, name: &[u8], value: &[u8]) -> bool {
        if self.pair(0).0 != name || self.index.is_empty() {
            return false;
        }
        let old_end = self.entry(0).len();
        let mut entry = Vec::with_capacity(name.len() + value.len() + 2);
        entry.extend_from_slice(name);
        entry.push(b'=');
        entry.extend_from_slice(value);
        entry.push(0);
        let Ok(new_len) = u32::try_from(entry.len()) else {
            return false;
        };
        let Ok(old_len) = u32::try_from(old_end) else {
            return false;
        };
        self.data.splice(..old_end, entry);
        for (start, _) in self.index.iter_mut().skip(1) {
            *start = *start - old_len + new_len;
        }
        true
    }

    /// The pairs in the order they were added, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.index.len()).map(move |k| self.pair(k))
    }

    /// The first value stored under `name` (what getenv would find).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The k-th pair's whole `name=value\0` entry.
    fn entry(&self, k: usize) -> &[u8] {
        let Some(&(start, _)) = self.index.get(k) else {
            return &[];
        };
        let end = match self.index.get(k + 1) {
            Some(&(next, _)) => next as usize,
            None => self.data.len(),
        };
        self.data.get(start as usize..end).unwrap_or(&[])
    }

    fn pair(&self, k: usize) -> (&[u8], &[u8]) {
        let name_len = self.index.get(k).map_or(0, |&(_, n)| n as usize);
        let e = self.entry(k);
        let name = e.get(..name_len).unwrap_or(&[]);
        // Past the '=' and before the NUL.
        let value = e
            .get(name_len + 1..e.len().saturating_sub(1))
            .unwrap_or(&[]);
        (name, value)
    }

    /// The NUL-terminated `name=value` strings for exec. A pair that exec cannot carry is left
    /// out: an empty name, a name with '=' (it would read as another name), or a NUL inside
    /// (it would cut the string short). Request fields cannot hold a NUL; configured values
    /// could.
    pub fn exec_entries(&self) -> impl Iterator<Item = &CStr> + '_ {
        (0..self.index.len()).filter_map(move |k| {
            let (name, _) = self.pair(k);
            if name.is_empty() || name.contains(&b'=') {
                return None;
            }
            CStr::from_bytes_with_nul(self.entry(k)).ok()
        })
    }
}

/// What the environment of one request is made of. Plain borrowed values, so that the request
/// path can fill it from whatever it holds.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// "GET", "POST", ...
    pub method: &'a str,
    /// "HTTP/1.0" or "HTTP/1.1".
    pub protocol: &'a str,
    /// The request target as the client sent it (REQUEST_URI).
    pub request_uri: &'a [u8],
    /// The target after internal rewrites and redirects; REDIRECT_URI when it differs from
    /// `request_uri`.
    pub target: &'a [u8],
    /// The query string without its '?', empty when there is none.
    pub query: &'a [u8],
    /// The decoded path that names the script (SCRIPT_NAME).
    pub script_name: &'a [u8],
    /// What follows the script in the path (PATH_INFO), empty when nothing does.
    pub path_info: &'a [u8],
    /// The file the path maps to (SCRIPT_FILENAME).
    pub physical_path: &'a [u8],
    /// The document root it was mapped under (DOCUMENT_ROOT).
    pub basedir: &'a [u8],
    /// A gateway host's `docroot`: DOCUMENT_ROOT, and the base of SCRIPT_FILENAME and
    /// PATH_TRANSLATED, for a backend that sees the files under another root.
    pub docroot: Option<&'a [u8]>,
    /// A gateway host's `strip-request-uri`: a prefix taken off REQUEST_URI.
    pub strip_request_uri: Option<&'a [u8]>,
    /// A gateway host's `broken-scriptfilename`: SCRIPT_FILENAME with PATH_INFO appended, as
    /// PHP's cgi.fix_pathinfo=1 expects.
    pub break_scriptfilename: bool,
    /// FastCGI's authorizer role: no CONTENT_LENGTH, SCRIPT_NAME, PATH_INFO nor
    /// PATH_TRANSLATED.
    pub authorizer: bool,
    /// The request body's length as the backend will get it.
    pub content_length: u64,
    /// "http" or "https" (after mod_extforward).
    pub scheme: &'a str,
    /// `server.tag` (SERVER_SOFTWARE), empty when unset.
    pub server_software: &'a [u8],
    /// `server.name`, or the request's authority; its port is dropped. Empty: SERVER_ADDR.
    pub server_name: &'a [u8],
    /// The connection's local address (SERVER_ADDR, SERVER_PORT).
    pub local: SocketAddr,
    /// The client's address (REMOTE_ADDR, REMOTE_PORT), after mod_extforward.
    pub remote: SocketAddr,
    /// Set by mod_auth once the request is authenticated.
    pub remote_user: Option<&'a [u8]>,
    pub auth_type: Option<&'a [u8]>,
    /// The status an error handler runs for (server.error-handler): REDIRECT_STATUS is then
    /// that status, otherwise "200" (for PHP built with --enable-force-cgi-redirect).
    pub redirect_status: Option<u16>,
    /// The request's fields in the order received (and as mod_setenv left them), repeats
    /// included: they are joined here. A `Transfer-Encoding` field is left out, as lighttpd
    /// never keeps one.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The request's environment (setenv.add-environment and set-environment), names as
    /// configured: they are mangled as field names are, without the HTTP_ prefix.
    pub env: &'a [(&'a [u8], &'a [u8])],
}

/// The request fields lighttpd knows by name (http_header.c). A field outside this list whose
/// mangled name could be read as one of these, or as another field of the request, is a
/// clash (see [`build`]).
const KNOWN_FIELDS: &[&str] = &[
    "te",
    "age",
    "dnt",
    "p3p",
    "host",
    "date",
    "etag",
    "vary",
    "link",
    "allow",
    "range",
    "cookie",
    "accept",
    "status",
    "server",
    "expect",
    "pragma",
    "upgrade",
    "referer",
    "expires",
    "alt-svc",
    "location",
    "priority",
    "if-match",
    "if-range",
    "alt-used",
    "forwarded",
    "connection",
    "set-cookie",
    "user-agent",
    "incremental",
    "content-type",
    "last-modified",
    "authorization",
    "if-none-match",
    "cache-control",
    "accept-ranges",
    "content-range",
    "content-length",
    "http2-settings",
    "onion-location",
    "accept-encoding",
    "accept-language",
    "referrer-policy",
    "x-forwarded-for",
    "x-frame-options",
    "www-authenticate",
    "content-encoding",
    "content-location",
    "x-xss-protection",
    "if-modified-since",
    "transfer-encoding",
    "x-forwarded-proto",
    "if-unmodified-since",
    "x-content-type-options",
    "content-security-policy",
    "strict-transport-security",
    "upgrade-insecure-requests",
    "access-control-allow-origin",
];

/// lighttpd's variable name mangling: letters upper-cased, digits kept, anything else '_'.
fn mangle(out: &mut Vec<u8>, name: &[u8]) {
    out.extend(name.iter().map(|&c| {
        if c.is_ascii_alphabetic() {
            c.to_ascii_uppercase()
        } else if c.is_ascii_digit() {
            c
        } else {
            b'_'
        }
    }));
}

/// Whether `field` is what `mangled` (an upper-case name with '_') reads as with '-' for '_'.
fn reads_as(field: &[u8], mangled: &[u8]) -> bool {
    field.len() == mangled.len()
        && field.iter().zip(mangled).all(|(&f, &m)| {
            let m = if m == b'_' { b'-' } else { m };
            f.eq_ignore_ascii_case(&m)
        })
}

/// `v` written into `buf` (a number or an address: 48 bytes hold any).
fn decimal<'b>(buf: &'b mut [u8; 48], v: &dyn std::fmt::Display) -> &'b [u8] {
    use std::io::Write;
    let room = buf.len();
    let mut w = &mut buf[..];
    let _ = write!(w, "{}", v);
    let n = room - w.len();
    buf.get(..n).unwrap_or(&[])
}

/// Join `a` and `b` as lighttpd joins paths: exactly one '/' between them.
fn push_path(out: &mut Vec<u8>, a: &[u8], b: &[u8]) {
    out.extend_from_slice(a);
    match (a.last() == Some(&b'/'), b.first() == Some(&b'/')) {
        (true, true) => out.extend_from_slice(b.get(1..).unwrap_or(&[])),
        (false, false) => {
            out.push(b'/');
            out.extend_from_slice(b);
        }
        _ => out.extend_from_slice(b),
    }
}

/// SERVER_NAME from a host name: without its port ("[::1]:81" gives "[::1]").
fn strip_port(name: &[u8]) -> &[u8] {
    let cut = if name.first() == Some(&b'[') {
        name.windows(2).position(|w| w == b"]:").map(|i| i + 1)
    } else {
        name.iter().position(|&c| c == b':')
    };
    match cut {
        Some(i) => name.get(..i).unwrap_or(name),
        None => name,
    }
}

/// Append the environment of `input` to `out`, in lighttpd's order (CONTENT_LENGTH first, as
/// SCGI requires). Returns true if a request field's mangled name clashes with another field
/// (say `X_Forwarded_For` beside, or instead of, `X-Forwarded-For`): it is passed all the same,
/// and lighttpd's FastCGI and SCGI answer such a request 400 while its CGI runs it.
pub fn build(input: &Input<'_>, out: &mut EnvBuf) -> bool {
    let mut clash = false;
    // Numbers and addresses are formatted into these, so that none of them allocates.
    let mut num = [0u8; 48];
    let mut addr = [0u8; 48];
    if !input.authorizer {
        out.push(b"CONTENT_LENGTH", decimal(&mut num, &input.content_length));
    }
    out.push(b"QUERY_STRING", input.query);

    let mut uri = input.request_uri;
    if let Some(prefix) = input.strip_request_uri {
        // The prefix is taken off only up to a '/' ("/app1" from "/app1/x", not "/app10").
        let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
        if !prefix.is_empty() && uri.starts_with(prefix) && uri.get(prefix.len()) == Some(&b'/') {
            uri = uri.get(prefix.len()..).unwrap_or(uri);
        }
    }
    out.push(b"REQUEST_URI", uri);
    if input.target != input.request_uri {
        out.push(b"REDIRECT_URI", input.target);
    }
    if input.redirect_status.is_none() {
        out.push(b"REDIRECT_STATUS", b"200");
    }

    let base = input.docroot.unwrap_or(input.basedir);
    if !input.authorizer {
        out.push(b"SCRIPT_NAME", input.script_name);
        if !input.path_info.is_empty() {
            out.push(b"PATH_INFO", input.path_info);
            out.push_with(
                |d| d.extend_from_slice(b"PATH_TRANSLATED"),
                |d| push_path(d, base, input.path_info),
            );
        }
    }
    match input.docroot {
        Some(root) => {
            out.push_with(
                |d| d.extend_from_slice(b"SCRIPT_FILENAME"),
                |d| push_path(d, root, input.script_name),
            );
            out.push(b"DOCUMENT_ROOT", root);
        }
        None => {
            if input.break_scriptfilename {
                out.push_with(
                    |d| d.extend_from_slice(b"SCRIPT_FILENAME"),
                    |d| push_path(d, input.physical_path, input.path_info),
                );
            } else {
                out.push(b"SCRIPT_FILENAME", input.physical_path);
            }
            out.push(b"DOCUMENT_ROOT", input.basedir);
        }
    }

    out.push(b"REQUEST_METHOD", input.method.as_bytes());
    out.push(b"SERVER_PROTOCOL", input.protocol.as_bytes());
    out.push(b"SERVER_SOFTWARE", input.server_software);
    out.push(b"GATEWAY_INTERFACE", b"CGI/1.1");
    out.push(b"REQUEST_SCHEME", input.scheme.as_bytes());
    if input.scheme.eq_ignore_ascii_case("https") {
        out.push(b"HTTPS", b"on");
    }
    out.push(b"SERVER_PORT", decimal(&mut num, &input.local.port()));
    // Without brackets for IPv6, as inet_ntop writes it.
    let server_addr = decimal(&mut addr, &input.local.ip());
    out.push(b"SERVER_ADDR", server_addr);
    let name = strip_port(input.server_name);
    out.push(
        b"SERVER_NAME",
        if name.is_empty() { server_addr } else { name },
    );
    out.push(b"REMOTE_ADDR", decimal(&mut num, &input.remote.ip()));
    out.push(b"REMOTE_PORT", decimal(&mut num, &input.remote.port()));

    clash |= push_fields(input.headers, out);

    // What lighttpd keeps in the request's environment: the error handler's status, mod_auth's
    // user, then mod_setenv's variables.
    if let Some(s) = input.redirect_status {
        out.push(b"REDIRECT_STATUS", decimal(&mut num, &s));
    }
    if let Some(u) = input.remote_user {
        out.push(b"REMOTE_USER", u);
    }
    if let Some(t) = input.auth_type {
        out.push(b"AUTH_TYPE", t);
    }
    for (k, v) in input.env {
        out.push_with(|d| mangle(d, k), |d| d.extend_from_slice(v));
    }
    clash
}

/// The request fields as HTTP_* variables (Content-Type as CONTENT_TYPE), repeats joined with
/// ", " (Cookie with "; ") under the first one's position. Returns whether a name clashes.
fn push_fields(headers: &[(&[u8], &[u8])], out: &mut EnvBuf) -> bool {
    let mut clash = false;
    for (i, &(name, _)) in headers.iter().enumerate() {
        // Hop-by-hop, and consumed by the request parser: lighttpd never keeps it.
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            continue;
        }
        // A repeat was joined into the first of its name.
        let earlier = headers.get(..i).unwrap_or(&[]);
        if earlier.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let same = || {
            headers
                .iter()
                .skip(i)
                .filter(move |(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
        };
        // lighttpd does not keep a field whose value is empty.
        if same().next().is_none() {
            continue;
        }
        let is_cookie = name.eq_ignore_ascii_case(b"cookie");
        let sep: &[u8] = if is_cookie { b"; " } else { b", " };
        let value = |d: &mut Vec<u8>| {
            for (k, (_, v)) in same().enumerate() {
                if k > 0 {
                    d.extend_from_slice(sep);
                }
                d.extend_from_slice(v);
            }
        };
        if name.eq_ignore_ascii_case(b"content-type") {
            out.push_with(|d| d.extend_from_slice(b"CONTENT_TYPE"), value);
            continue;
        }
        let known = KNOWN_FIELDS
            .iter()
            .any(|k| k.as_bytes().eq_ignore_ascii_case(name));
        // Security (lighttpd, and https://httpoxy.org/): HTTP_PROXY would set the proxy of
        // whatever the script runs.
        if !known && name.eq_ignore_ascii_case(b"proxy") {
            continue;
        }
        let start = out.data.len();
        out.push_with(
            |d| {
                d.extend_from_slice(b"HTTP_");
                mangle(d, name);
            },
            value,
        );
        if known {
            continue;
        }
        // Security: a field whose name had characters other than letters, digits and '-'
        // (an '_', say) mangles to the same variable as a field spelt with '-'. Flag it when
        // that other field is one lighttpd knows, or is in this request too.
        let mangled = out
            .data
            .get(start + 5..start + 5 + name.len())
            .unwrap_or(&[]);
        if mangled.contains(&b'_') && !reads_as(name, mangled) {
            let other_known = KNOWN_FIELDS.iter().any(|k| reads_as(k.as_bytes(), mangled));
            let other_here = headers.iter().any(|(n, _)| reads_as(n, mangled));
            clash |= other_known || other_here;
        }
    }
    clash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(headers: &'a [(&'a [u8], &'a [u8])]) -> Input<'a> {
        Input {
            method: "POST",
            protocol: "HTTP/1.1",
            request_uri: b"/app/index.php/extra?a=1",
            target: b"/app/index.php/extra?a=1",
            query: b"a=1",
            script_name: b"/app/index.php",
            path_info: b"/extra",
            physical_path: b"/srv/www/app/index.php",
            basedir: b"/srv/www",
            docroot: None,
            strip_request_uri: None,
            break_scriptfilename: false,
            authorizer: false,
            content_length: 12,
            scheme: "http",
            server_software: b"lightd",
            server_name: b"example.org:8080",
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "192.0.2.7:54321".parse().unwrap(),
            remote_user: None,
            auth_type: None,
            redirect_status: None,
            headers,
            env: &[],
        }
    }

    fn built(i: &Input<'_>) -> (EnvBuf, bool) {
        let mut e = EnvBuf::new();
        let clash = build(i, &mut e);
        (e, clash)
    }

    fn get<'a>(e: &'a EnvBuf, name: &str) -> Option<&'a str> {
        e.get(name.as_bytes())
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn envbuf_stores_pairs_in_exec_form() {
        let mut e = EnvBuf::new();
        assert!(e.push(b"A", b"1"));
        assert!(e.push(b"EMPTY", b""));
        assert!(e.push(b"B", b"x=y"));
        let pairs: Vec<_> = e.iter().collect();
        assert_eq!(
            pairs,
            vec![
                (&b"A"[..], &b"1"[..]),
                (&b"EMPTY"[..], &b""[..]),
                (&b"B"[..], &b"x=y"[..])
            ]
        );
        let exec: Vec<_> = e.exec_entries().map(|c| c.to_bytes().to_vec()).collect();
        assert_eq!(
            exec,
            vec![b"A=1".to_vec(), b"EMPTY=".to_vec(), b"B=x=y".to_vec()]
        );
        assert_eq!(e.byte_len(), "A=1\0EMPTY=\0B=x=y\0".len());
        e.clear();
        assert!(e.is_empty());
        assert_eq!(e.iter().count(), 0);
    }

    #[test]
    fn exec_form_leaves_out_what_exec_cannot_carry() {
        let mut e = EnvBuf::new();
        e.push(b"OK", b"v");
        e.push(b"NUL", b"a\0b");
        e.push(b"A=B", b"v");
        e.push(b"", b"v");
        // All are kept for FastCGI/SCGI, where any bytes are fine.
        assert_eq!(e.len(), 4);
        assert_eq!(e.get(b"NUL"), Some(&b"a\0b"[..]));
        let exec: Vec<_> = e.exec_entries().map(|c| c.to_bytes().to_vec()).collect();
        assert_eq!(exec, vec![b"OK=v".to_vec()]);
    }

    #[test]
    fn the_variables_of_a_plain_request() {
        let hs: &[(&[u8], &[u8])] = &[
            (b"Host", b"example.org:8080"),
            (b"Content-Type", b"text/plain"),
            (b"User-Agent", b"t/1"),
        ];
        let (e, clash) = built(&input(hs));
        assert!(!clash);
        // SCGI needs CONTENT_LENGTH first.
        assert_eq!(e.iter().next(), Some((&b"CONTENT_LENGTH"[..], &b"12"[..])));
        let want = [
            ("CONTENT_LENGTH", "12"),
            ("QUERY_STRING", "a=1"),
            ("REQUEST_URI", "/app/index.php/extra?a=1"),
            ("REDIRECT_STATUS", "200"),
            ("SCRIPT_NAME", "/app/index.php"),
            ("PATH_INFO", "/extra"),
            ("PATH_TRANSLATED", "/srv/www/extra"),
            ("SCRIPT_FILENAME", "/srv/www/app/index.php"),
            ("DOCUMENT_ROOT", "/srv/www"),
            ("REQUEST_METHOD", "POST"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_SOFTWARE", "lightd"),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("SERVER_PORT", "8080"),
            ("SERVER_ADDR", "127.0.0.1"),
            ("SERVER_NAME", "example.org"),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("REMOTE_PORT", "54321"),
            ("HTTP_HOST", "example.org:8080"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_USER_AGENT", "t/1"),
        ];
        let got: Vec<(String, String)> = e
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        // Neither HTTPS nor REDIRECT_URI for a plain, unrewritten request.
        assert_eq!(get(&e, "HTTPS"), None);
        assert_eq!(get(&e, "REDIRECT_URI"), None);
    }

    #[test]
    fn field_names_are_mangled_and_repeats_joined() {
        let hs: &[(&[u8], &[u8])] = &[
            (b"Accept", b"text/html"),
            (b"x-custom.thing", b"1"),
            (b"Cookie", b"a=1"),
            (b"ACCEPT", b"*/*"),
            (b"cookie", b"b=2"),
            (b"X-Empty", b""),
            (b"Via", b""),
            (b"via", b"proxy1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"X-1a", b"d"),
        ];
        let (e, clash) = built(&input(hs));
        assert!(!clash);
        assert_eq!(get(&e, "HTTP_ACCEPT"), Some("text/html, */*"));
        assert_eq!(get(&e, "HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(get(&e, "HTTP_X_CUSTOM_THING"), Some("1"));
        assert_eq!(get(&e, "HTTP_X_1A"), Some("d"));
        // An empty value is no field at all; an empty repeat adds nothing to the join.
        assert_eq!(get(&e, "HTTP_X_EMPTY"), None);
        assert_eq!(get(&e, "HTTP_VIA"), Some("proxy1"));
        assert_eq!(get(&e, "HTTP_TRANSFER_ENCODING"), None);
        // Each name once, at its first field's place.
        let names: Vec<&[u8]> = e.iter().map(|(n, _)| n).collect();
        let http: Vec<&[u8]> = names
            .into_iter()
            .filter(|n| n.starts_with(b"HTTP_"))
            .collect();
        assert_eq!(
            http,
            vec![
                &b"HTTP_ACCEPT"[..],
                b"HTTP_X_CUSTOM_THING",
                b"HTTP_COOKIE",
                b"HTTP_VIA",
                b"HTTP_X_1A"
            ]
        );
    }

    #[test]
    fn proxy_is_never_passed_and_authorization_is() {
        let hs: &[(&[u8], &[u8])] = &[
            (b"Proxy", b"http://evil.example/"),
            (b"Authorization", b"Basic Zm9vOmJhcg=="),
        ];
        let (e, _) = built(&input(hs));
        assert_eq!(get(&e, "HTTP_PROXY"), None);
        // lighttpd's CGI, FastCGI and SCGI all pass it (only SSI hides it).
        assert_eq!(get(&e, "HTTP_AUTHORIZATION"), Some("Basic Zm9vOmJhcg=="));
    }

    #[test]
    fn clashing_field_names_are_flagged() {
        // (fields, clash?)
        #[allow(clippy::type_complexity)]
        let cases: &[(&[(&[u8], &[u8])], bool)] = &[
            // Reads as a field lighttpd knows.
            (&[(b"X_Forwarded_For", b"1.2.3.4")], true),
            (&[(b"Content_Length", b"5")], true),
            // Reads as another field of this request.
            (&[(b"X-My-Thing", b"a"), (b"X_My_Thing", b"b")], true),
            (&[(b"X_My_Thing", b"b"), (b"x-my-thing", b"a")], true),
            (&[(b"X.My.Thing", b"b"), (b"x-my-thing", b"a")], true),
            // No other field to be mistaken for.
            (&[(b"X_My_Thing", b"b")], false),
            (&[(b"X-My-Thing", b"a")], false),
            (&[(b"X-Forwarded-For", b"1.2.3.4")], false),
        ];
        for (hs, want) in cases {
            let (e, clash) = built(&input(hs));
            assert_eq!(clash, *want, "{:?}", hs);
            // Passed either way: only FastCGI and SCGI refuse the request.
            assert!(e.iter().any(|(n, _)| n.starts_with(b"HTTP_X_MY_THING")
                || n == b"HTTP_X_FORWARDED_FOR"
                || n == b"HTTP_CONTENT_LENGTH"));
        }
    }

    #[test]
    fn request_uri_redirect_and_strip() {
        let mut i = input(&[]);
        i.target = b"/rewritten.php?a=1";
        i.strip_request_uri = Some(b"/app/");
        let (e, _) = built(&i);
        assert_eq!(get(&e, "REQUEST_URI"), Some("/index.php/extra?a=1"));
        assert_eq!(get(&e, "REDIRECT_URI"), Some("/rewritten.php?a=1"));
        // Only up to a '/': "/ap" does not cut "/app/...".
        for (prefix, want) in [
            (&b"/ap"[..], "/app/index.php/extra?a=1"),
            (b"/app/index.php/extra?a=1", "/app/index.php/extra?a=1"),
            (b"/", "/app/index.php/extra?a=1"),
            (b"/app/index.php", "/extra?a=1"),
        ] {
            i.strip_request_uri = Some(prefix);
            let (e, _) = built(&i);
            assert_eq!(get(&e, "REQUEST_URI"), Some(want), "{:?}", prefix);
        }
    }

    #[test]
    fn docroot_and_broken_scriptfilename() {
        let mut i = input(&[]);
        i.docroot = Some(b"/var/app/");
        let (e, _) = built(&i);
        assert_eq!(get(&e, "SCRIPT_FILENAME"), Some("/var/app/app/index.php"));
        assert_eq!(get(&e, "DOCUMENT_ROOT"), Some("/var/app/"));
        assert_eq!(get(&e, "PATH_TRANSLATED"), Some("/var/app/extra"));

        let mut i = input(&[]);
        i.break_scriptfilename = true;
        let (e, _) = built(&i);
        assert_eq!(
            get(&e, "SCRIPT_FILENAME"),
            Some("/srv/www/app/index.php/extra")
        );
        // No PATH_INFO: no PATH_TRANSLATED either.
        i.path_info = b"";
        let (e, _) = built(&i);
        assert_eq!(get(&e, "PATH_INFO"), None);
        assert_eq!(get(&e, "PATH_TRANSLATED"), None);
        assert_eq!(get(&e, "SCRIPT_FILENAME"), Some("/srv/www/app/index.php/"));
    }

    #[test]
    fn authorizer_gets_no_length_nor_script() {
        let mut i = input(&[]);
        i.authorizer = true;
        let (e, _) = built(&i);
        for name in [
            "CONTENT_LENGTH",
            "SCRIPT_NAME",
            "PATH_INFO",
            "PATH_TRANSLATED",
        ] {
            assert_eq!(get(&e, name), None, "{}", name);
        }
        assert_eq!(get(&e, "SCRIPT_FILENAME"), Some("/srv/www/app/index.php"));
        assert_eq!(e.iter().next().map(|(n, _)| n), Some(&b"QUERY_STRING"[..]));
    }

    #[test]
    fn server_name_addresses_and_https() {
        let mut i = input(&[]);
        i.scheme = "https";
        i.local = "[::1]:8443".parse().unwrap();
        i.remote = "[2001:db8::5]:40000".parse().unwrap();
        for (name, want) in [
            (&b"[::1]:8443"[..], "[::1]"),
            (b"[::1]", "[::1]"),
            (b"host.example", "host.example"),
            (b"host.example:1", "host.example"),
            // None given: the server's address.
            (b"", "::1"),
        ] {
            i.server_name = name;
            let (e, _) = built(&i);
            assert_eq!(get(&e, "SERVER_NAME"), Some(want));
            assert_eq!(get(&e, "SERVER_ADDR"), Some("::1"));
            assert_eq!(get(&e, "SERVER_PORT"), Some("8443"));
            assert_eq!(get(&e, "REMOTE_ADDR"), Some("2001:db8::5"));
            assert_eq!(get(&e, "REMOTE_PORT"), Some("40000"));
            assert_eq!(get(&e, "HTTPS"), Some("on"));
            assert_eq!(get(&e, "REQUEST_SCHEME"), Some("https"));
        }
    }

    #[test]
    fn auth_error_status_and_setenv() {
        let env: &[(&[u8], &[u8])] = &[(b"my-var.x", b"1"), (b"LANG", b"C")];
        let mut i = input(&[]);
        i.remote_user = Some(b"alice");
        i.auth_type = Some(b"Basic");
        i.redirect_status = Some(404);
        i.env = env;
        i.content_length = 0;
        let (e, _) = built(&i);
        assert_eq!(get(&e, "REMOTE_USER"), Some("alice"));
        assert_eq!(get(&e, "AUTH_TYPE"), Some("Basic"));
        assert_eq!(get(&e, "REDIRECT_STATUS"), Some("404"));
        assert_eq!(
            e.iter().filter(|(n, _)| *n == b"REDIRECT_STATUS").count(),
            1
        );
        assert_eq!(get(&e, "MY_VAR_X"), Some("1"));
        assert_eq!(get(&e, "LANG"), Some("C"));
        assert_eq!(get(&e, "CONTENT_LENGTH"), Some("0"));
        // The environment comes last, in its order.
        let tail: Vec<&[u8]> = e.iter().map(|(n, _)| n).skip(e.len() - 5).collect();
        assert_eq!(
            tail,
            vec![
                &b"REDIRECT_STATUS"[..],
                b"REMOTE_USER",
                b"AUTH_TYPE",
                b"MY_VAR_X",
                b"LANG"
            ]
        );
    }

    #[test]
    fn building_twice_appends_and_clear_reuses() {
        let i = input(&[]);
        let mut e = EnvBuf::new();
        build(&i, &mut e);
        let n = e.len();
        let bytes = e.byte_len();
        e.clear();
        build(&i, &mut e);
        assert_eq!((e.len(), e.byte_len()), (n, bytes));
        build(&i, &mut e);
        assert_eq!(e.len(), 2 * n);
    }

    #[test]
    fn path_join_has_one_slash() {
        for (a, b, want) in [
            (&b"/a"[..], &b"/b"[..], &b"/a/b"[..]),
            (b"/a/", b"/b", b"/a/b"),
            (b"/a/", b"b", b"/a/b"),
            (b"/a", b"b", b"/a/b"),
            (b"", b"b", b"/b"),
            (b"/a", b"", b"/a/"),
        ] {
            let mut out = Vec::new();
            push_path(&mut out, a, b);
            assert_eq!(out, want);
        }
    }
}
