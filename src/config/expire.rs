//! mod_expire: the "access|now|modification [plus] N units ..." grammar and the `Expires` /
//! `Cache-Control: max-age` values it produces, as lighttpd 1.4.85's src/mod_expire.c does.
//!
//! What the response pipeline must do (lighttpd's handle_response_start hook):
//! - Only for status 200 or 206, methods GET, HEAD or QUERY, and only when the response has no
//!   `Cache-Control` yet.
//! - Pick the rule with [`lookup`]: `expire.url` by prefix of the decoded URL path, else
//!   `expire.mimetypes` by prefix of the response's Content-Type, else the mimetypes entry
//!   with the empty key.
//! - Call [`headers`]. lighttpd then sends only `Cache-Control` to HTTP/1.1 (and later)
//!   clients and only `Expires` to HTTP/1.0 ones, never both.

use crate::http::date;

/// What the offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// "access" or "now": the time of the response.
    Access,
    /// "modification": the file's mtime.
    Modification,
}

/// One parsed rule: `base` plus `offset` seconds (negative offsets are accepted, as by lighttpd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expire {
    pub base: Base,
    pub offset: i64,
}

/// Seconds per unit, longest name first so that "minute" is tried before "min"; lighttpd
/// counts a month as 30 days and a year as 365.
const UNITS: [(&str, i64); 9] = [
    ("year", 365 * 86_400),
    ("month", 30 * 86_400),
    ("week", 7 * 86_400),
    ("day", 86_400),
    ("hour", 3_600),
    ("minute", 60),
    ("min", 60),
    ("second", 1),
    ("sec", 1),
];

/// Parse a rule such as "access 2 hours" or "modification plus 1 seconds 2 minutes".
///
/// lighttpd's grammar, including its leniencies: the base word is case-sensitive and must be
/// followed by a space; "plus " is optional; each term is an optional signed decimal number
/// (missing means 0) and a unit ("year", "month", "week", "day", "hour", "minute"/"min",
/// "second"/"sec", each with an optional "s"); spaces between and after terms are optional.
/// Refused: an unknown base or unit, nothing after the base, and (unlike lighttpd, where the
/// arithmetic would overflow) totals beyond ±2^63 seconds.
pub fn parse(s: &str) -> Result<Expire, String> {
    let bad = |why: &str| format!("invalid expire rule \"{}\": {}", s, why);
    let (base, mut rest) = if let Some(r) = s.strip_prefix("access ") {
        (Base::Access, r)
    } else if let Some(r) = s.strip_prefix("now ") {
        (Base::Access, r)
    } else if let Some(r) = s.strip_prefix("modification ") {
        (Base::Modification, r)
    } else {
        return Err(bad("expected \"access \", \"now \" or \"modification \""));
    };
    if let Some(r) = rest.strip_prefix("plus ") {
        rest = r;
    }

    let mut offset: i64 = 0;
    // At least one term, as in lighttpd's do-while; each round consumes a unit name.
    loop {
        let (num, r) = leading_number(rest).ok_or_else(|| bad("number out of range"))?;
        rest = r.trim_start_matches(' ');
        let (name, mult) = UNITS
            .iter()
            .find(|(name, _)| rest.starts_with(name))
            .ok_or_else(|| {
                bad("expected a unit (years, months, weeks, days, hours, minutes, seconds)")
            })?;
        rest = rest.get(name.len()..).unwrap_or("");
        rest = rest.strip_prefix('s').unwrap_or(rest);
        rest = rest.trim_start_matches(' ');
        offset = num
            .checked_mul(*mult)
            .and_then(|v| offset.checked_add(v))
            .ok_or_else(|| bad("offset out of range"))?;
        if rest.is_empty() {
            return Ok(Expire { base, offset });
        }
    }
}

/// strtol(3) in base 10: leading white space, an optional sign, digits. No digits means 0 and
/// nothing consumed (white space included). None on overflow.
fn leading_number(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return Some((0, s));
    }
    let mut v: i64 = 0;
    for d in digits.bytes().take(len) {
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some((v, digits.get(len..).unwrap_or("")))
}

/// The `Expires` value (an IMF-fixdate) and the `Cache-Control` value ("max-age=N") for `e`,
/// at `now`, for a file last modified at `mtime`. Both buffers are cleared first.
///
/// Returns false, and produces nothing, for a "modification" rule when the mtime is unknown
/// (lighttpd cannot stat the file): no header is added then. A modification-based expiry in
/// the past is moved to `now` (max-age=0); an access-based one with a negative offset is not,
/// so it gives a negative max-age and an Expires in the past, exactly as lighttpd.
pub fn headers(
    e: &Expire,
    now: u64,
    mtime: Option<u64>,
    out_expires: &mut Vec<u8>,
    out_cache_control: &mut Vec<u8>,
) -> bool {
    out_expires.clear();
    out_cache_control.clear();
    let now_s = i64::try_from(now).unwrap_or(i64::MAX);
    let expires = match e.base {
        Base::Access => now_s.saturating_add(e.offset),
        Base::Modification => {
            let Some(m) = mtime else {
                return false;
            };
            let m = i64::try_from(m).unwrap_or(i64::MAX);
            m.saturating_add(e.offset).max(now_s)
        }
    };
    out_cache_control.extend_from_slice(b"max-age=");
    out_cache_control.extend_from_slice(expires.saturating_sub(now_s).to_string().as_bytes());
    // Dates before 1970 cannot be written by the formatter; an expiry that far in the past
    // means "already expired" just as well at the epoch.
    let mut d = [0u8; 29];
    date::format(u64::try_from(expires).unwrap_or(0), &mut d);
    out_expires.extend_from_slice(&d);
    true
}

/// Drop one trailing '*' from an `expire.mimetypes` key ("text/*" means prefix "text/"), as
/// lighttpd does when it loads the config.
pub fn mimetype_key(key: &str) -> &str {
    key.strip_suffix('*').unwrap_or(key)
}

/// lighttpd's compatibility rename at config load: when `expire.mimetypes` has neither a
/// "text/javascript" nor a "text/" key, an "application/javascript" entry is renamed to
/// "text/javascript" (the type lighttpd now serves .js as) and moved to the end, the last
/// entry taking its old place (lighttpd's array removal swaps; order matters to [`lookup`]).
/// Keys must already have gone through [`mimetype_key`].
pub fn fix_javascript<T>(mimetypes: &mut Vec<(String, T)>) {
    if mimetypes
        .iter()
        .any(|(k, _)| k == "text/javascript" || k == "text/")
    {
        return;
    }
    if let Some(i) = mimetypes
        .iter()
        .position(|(k, _)| k == "application/javascript")
    {
        let (_, v) = mimetypes.swap_remove(i);
        mimetypes.push(("text/javascript".to_string(), v));
    }
}

/// Which rule applies: the first `expire.url` key that is a prefix of the decoded URL path,
/// else the first `expire.mimetypes` key that is a prefix of the Content-Type, else the
/// mimetypes entry with the empty key (which is also what a response without Content-Type
/// gets). Config order decides between several prefixes, not their length.
pub fn lookup<'a>(
    urls: &'a [(String, Expire)],
    mimetypes: &'a [(String, Expire)],
    path: &str,
    content_type: Option<&str>,
) -> Option<&'a Expire> {
    let by_prefix = |list: &'a [(String, Expire)], s: &str| {
        list.iter()
            .find(|(k, _)| s.starts_with(k.as_str()))
            .map(|(_, e)| e)
    };
    if let Some(e) = by_prefix(urls, path) {
        return Some(e);
    }
    if let Some(e) = content_type.and_then(|ct| by_prefix(mimetypes, ct)) {
        return Some(e);
    }
    mimetypes.iter().find(|(k, _)| k.is_empty()).map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (Base, i64) {
        let e = parse(s).unwrap_or_else(|e| panic!("{}", e));
        (e.base, e.offset)
    }

    #[test]
    fn lighttpd_test_rules() {
        // tests/lighttpd.conf: expire.url.
        assert_eq!(ok("access 2 hours"), (Base::Access, 7200));
        assert_eq!(
            ok("modification plus 1 seconds 2 minutes"),
            (Base::Modification, 121)
        );
    }

    #[test]
    fn grammar() {
        let cases: &[(&str, Base, i64)] = &[
            ("now 1 year", Base::Access, 365 * 86_400),
            ("access plus 1 years", Base::Access, 365 * 86_400),
            ("access 1 month", Base::Access, 30 * 86_400),
            ("access 2 weeks 3 days", Base::Access, 17 * 86_400),
            ("access 1 hour 1 minute 1 second", Base::Access, 3661),
            ("access 5 mins 5 secs", Base::Access, 305),
            ("access 1 min", Base::Access, 60),
            ("access 3minutes", Base::Access, 180),
            ("access 1day2hours", Base::Access, 93_600),
            ("access   2 days  ", Base::Access, 172_800),
            ("access \t4 hours", Base::Access, 14_400),
            ("access +2 days", Base::Access, 172_800),
            ("access -1 hours", Base::Access, -3600),
            ("access 1 hours -30 minutes", Base::Access, 1800),
            // A missing number counts as 0, as with strtol.
            ("access hours", Base::Access, 0),
            ("modification 0 seconds", Base::Modification, 0),
            ("access 9223372036854775807 seconds", Base::Access, i64::MAX),
        ];
        for (s, base, off) in cases {
            assert_eq!(ok(s), (*base, *off), "{}", s);
        }
        for bad in [
            "",
            "access",
            "access ",
            "access plus ",
            "Access 1 hour",
            "later 1 hour",
            "access 1",
            "access 1 fortnight",
            "access 1 dayss",
            "access 1 hour x",
            "access 1 hours,",
            "modification plus",
            "access 99999999999999999999 seconds",
            "access 9223372036854775807 years",
            "access 9223372036854775807 seconds 1 second",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("\"{}\"", bad)), "{}", e);
        }
    }

    fn hdrs(e: &Expire, now: u64, mtime: Option<u64>) -> Option<(String, String)> {
        let mut x = b"stale".to_vec();
        let mut c = b"stale".to_vec();
        let made = headers(e, now, mtime, &mut x, &mut c);
        if !made {
            assert!(x.is_empty() && c.is_empty());
            return None;
        }
        Some((
            String::from_utf8(x).expect("ascii"),
            String::from_utf8(c).expect("ascii"),
        ))
    }

    // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date).
    const NOW: u64 = 784_111_777;

    #[test]
    fn access_based() {
        let e = parse("access 2 hours").unwrap();
        assert_eq!(
            hdrs(&e, NOW, None),
            Some((
                "Sun, 06 Nov 1994 10:49:37 GMT".to_string(),
                "max-age=7200".to_string()
            ))
        );
        // The mtime does not matter for access rules.
        assert_eq!(hdrs(&e, NOW, Some(5)), hdrs(&e, NOW, None));
        // A negative offset is passed on as lighttpd does: an expired date, negative max-age.
        let past = parse("access -1 days").unwrap();
        assert_eq!(
            hdrs(&past, NOW, None),
            Some((
                "Sat, 05 Nov 1994 08:49:37 GMT".to_string(),
                "max-age=-86400".to_string()
            ))
        );
    }

    #[test]
    fn modification_based() {
        let e = parse("modification plus 1 seconds 2 minutes").unwrap();
        assert_eq!(
            hdrs(&e, NOW, Some(NOW - 100)),
            Some((
                "Sun, 06 Nov 1994 08:49:58 GMT".to_string(),
                "max-age=21".to_string()
            ))
        );
        // Expired long ago: lighttpd moves the expiry up to now.
        assert_eq!(
            hdrs(&e, NOW, Some(1000)),
            Some((
                "Sun, 06 Nov 1994 08:49:37 GMT".to_string(),
                "max-age=0".to_string()
            ))
        );
        // No mtime (the file could not be stat()ed): no headers at all.
        assert_eq!(hdrs(&e, NOW, None), None);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let big = Expire {
            base: Base::Access,
            offset: i64::MAX,
        };
        let (x, c) = hdrs(&big, u64::MAX, None).unwrap();
        assert_eq!(x, "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(c, "max-age=0");
        let neg = Expire {
            base: Base::Access,
            offset: i64::MIN,
        };
        let (x, c) = hdrs(&neg, NOW, None).unwrap();
        assert_eq!(x, "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c, format!("max-age={}", i64::MIN));
    }

    #[test]
    fn selection() {
        let r = |s: &str| parse(s).unwrap();
        let urls = vec![
            ("/subdir/access".to_string(), r("access 2 hours")),
            ("/subdir/".to_string(), r("access 1 hours")),
            ("/subdir/access/deeper".to_string(), r("access 3 hours")),
        ];
        let mut mimes = vec![
            (mimetype_key("image/*").to_string(), r("access 1 days")),
            ("application/javascript".to_string(), r("access 2 days")),
        ];
        fix_javascript(&mut mimes);
        let off = |path: &str, ct: Option<&str>| lookup(&urls, &mimes, path, ct).map(|e| e.offset);
        assert_eq!(off("/subdir/access.txt", None), Some(7200));
        // Config order, not the longest prefix.
        assert_eq!(off("/subdir/access/deeper/x", None), Some(7200));
        assert_eq!(off("/subdir/other", Some("image/png")), Some(3600));
        assert_eq!(off("/img/a.png", Some("image/png")), Some(86_400));
        assert_eq!(off("/a.js", Some("text/javascript")), Some(2 * 86_400));
        assert_eq!(off("/a.html", Some("text/html")), None);
        assert_eq!(off("/a", None), None);
        // The empty key: the fallback without Content-Type, and a prefix of every type, so it
        // shadows the entries after it.
        mimes.insert(1, (String::new(), r("access 3 days")));
        let off = |path: &str, ct: Option<&str>| lookup(&urls, &mimes, path, ct).map(|e| e.offset);
        assert_eq!(off("/a", None), Some(3 * 86_400));
        assert_eq!(off("/a.html", Some("text/html")), Some(3 * 86_400));
        assert_eq!(off("/a.js", Some("text/javascript")), Some(3 * 86_400));
        assert_eq!(off("/img/a.png", Some("image/png")), Some(86_400));
        assert_eq!(lookup(&urls, &[], "/a", Some("text/html")), None);
        assert_eq!(mimetype_key("text/"), "text/");
    }

    #[test]
    fn javascript_rename_only_without_text_keys() {
        let e = parse("access 1 hours").unwrap();
        let mut with_text = vec![
            ("text/".to_string(), e),
            ("application/javascript".to_string(), e),
        ];
        fix_javascript(&mut with_text);
        assert_eq!(with_text[1].0, "application/javascript");
        let mut plain = vec![
            ("application/javascript".to_string(), e),
            ("image/".to_string(), e),
        ];
        fix_javascript(&mut plain);
        let keys: Vec<&str> = plain.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["image/", "text/javascript"]);
        let mut three = vec![
            ("application/javascript".to_string(), e),
            ("image/".to_string(), e),
            ("font/".to_string(), e),
        ];
        fix_javascript(&mut three);
        let keys: Vec<&str> = three.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["font/", "image/", "text/javascript"]);
    }
}
