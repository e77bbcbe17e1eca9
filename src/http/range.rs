//! The Range request field (RFC 9110 §14): byte ranges only, coalesced and bounded.
//!
//! A field without the `bytes=` unit is ignored: RFC 9110 §14.2 lets a server ignore Range,
//! and a 200 with the whole file is always a correct answer. Inside a `bytes=` field, a
//! range-spec that is malformed or inverted is skipped and the others are honoured, as lighttpd
//! does; when none is left that selects a byte, the answer is 416. Ranges are sorted and
//! merged when they overlap or lie close together, so a client cannot make us send the same
//! bytes many times over, and a field with more than [`MAX_RANGES`] range-specs is ignored
//! outright for the same reason.

use super::request::trim_ows;

/// What to do with a Range field for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Not a byte range we honour (syntax error, unknown unit): serve the whole file with 200.
    Ignore,
    /// No range overlaps the file: 416.
    Unsatisfiable,
    /// `out` holds one or more inclusive ranges, sorted and coalesced.
    Ranges,
}

/// The most range-specs a field may hold before it is ignored (anti-amplification). Every
/// non-empty element counts, valid or not, so the work per field stays bounded either way.
pub const MAX_RANGES: usize = 64;

/// Ranges are merged when the second starts at most this many bytes after the first ends:
/// RFC 9110 §14.3 lets a server coalesce ranges separated by a gap smaller than the overhead
/// of another part, and lighttpd puts that overhead at 80 bytes (so gaps of up to 79 bytes
/// are sent rather than split into a new part). Same answer as lighttpd for the same field.
pub const COALESCE_WITHIN: u64 = 80;

/// One range-spec, before it is resolved against the length.
enum Spec {
    /// `first-last` (`last` is None for `first-`).
    Int(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// Parse `value` (for example "bytes=0-99,200-") for a file of `len` bytes into `out`.
pub fn parse(value: &[u8], len: u64, out: &mut Vec<(u64, u64)>) -> RangeOutcome {
    out.clear();
    let outcome = parse_into(value, len, out);
    if outcome != RangeOutcome::Ranges {
        out.clear();
    }
    outcome
}

fn parse_into(value: &[u8], len: u64, out: &mut Vec<(u64, u64)>) -> RangeOutcome {
    // RFC 9110 has no whitespace around '=', so there is none here either; a field with some
    // is ignored, which costs the client only a full response.
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return RangeOutcome::Ignore;
    };
    if !value[..eq].eq_ignore_ascii_case(b"bytes") {
        return RangeOutcome::Ignore;
    }
    let mut specs = 0;
    // Bounded by the number of commas in the field, and by MAX_RANGES non-empty elements.
    for element in value[eq + 1..].split(|&b| b == b',') {
        let element = trim_ows(element);
        // The list rule (RFC 9110 §5.6.1) requires accepting empty elements.
        if element.is_empty() {
            continue;
        }
        specs += 1;
        if specs > MAX_RANGES {
            return RangeOutcome::Ignore;
        }
        // RFC 9110 §14.1.1 would make the whole field invalid here; skipping just this
        // element, as lighttpd does, still serves the good ranges beside a bad one.
        if let Some(range) = parse_spec(element).and_then(|spec| resolve(spec, len)) {
            out.push(range);
        }
    }
    // Including "bytes=" with no element at all: nothing selected, nothing to send.
    if out.is_empty() {
        return RangeOutcome::Unsatisfiable;
    }
    coalesce(out);
    RangeOutcome::Ranges
}

/// Parse one non-empty range-spec; None on a syntax error or `last < first`.
fn parse_spec(s: &[u8]) -> Option<Spec> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, last) = (&s[..dash], &s[dash + 1..]);
    if first.is_empty() {
        return Some(Spec::Suffix(parse_u64(last)?));
    }
    let first = parse_u64(first)?;
    if last.is_empty() {
        return Some(Spec::Int(first, None));
    }
    let last_text = last;
    let last = parse_u64(last)?;
    // RFC 9110 §14.1.1: such a range-spec is invalid (and is skipped). Compared on the digits, not the values: two numbers too big for u64 both saturate and
    // would look equal.
    if digits_less(last_text, &s[..dash]) {
        return None;
    }
    Some(Spec::Int(first, Some(last)))
}

/// The inclusive byte range a spec selects in `len` bytes; None when it is unsatisfiable.
fn resolve(spec: Spec, len: u64) -> Option<(u64, u64)> {
    // An empty representation has no byte to point at, so nothing is satisfiable; RFC 9110
    // would allow a non-empty suffix here, but there is no 206 to send for zero bytes.
    if len == 0 {
        return None;
    }
    match spec {
        Spec::Int(first, last) if first < len => {
            let last = last.map_or(len - 1, |l| l.min(len - 1));
            Some((first, last))
        }
        Spec::Int(..) => None,
        Spec::Suffix(0) => None,
        Spec::Suffix(n) => Some((len.saturating_sub(n), len - 1)),
    }
}

/// Sort, then merge ranges that overlap or start within [`COALESCE_WITHIN`] bytes of the end
/// of the one before, in place.
fn coalesce(ranges: &mut Vec<(u64, u64)>) {
    ranges.sort_unstable();
    let mut kept = 0;
    for i in 1..ranges.len() {
        let (first, last) = ranges[i];
        let cur = &mut ranges[kept];
        // Saturating: cur.1 < len, but len may be close to u64::MAX.
        if first <= cur.1.saturating_add(COALESCE_WITHIN) {
            cur.1 = cur.1.max(last);
        } else {
            kept += 1;
            ranges[kept] = (first, last);
        }
    }
    ranges.truncate(kept + 1);
}

/// 1*DIGIT. Values beyond u64 saturate: a first-pos that large is past any file and a
/// last-pos or suffix-length that large is clamped anyway, so saturation gives the same answer.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(n)
}

/// Whether the decimal number `a` is less than `b`, exactly, at any length.
fn digits_less(a: &[u8], b: &[u8]) -> bool {
    fn strip(s: &[u8]) -> &[u8] {
        let zeros = s.iter().take_while(|&&c| c == b'0').count();
        &s[zeros..]
    }
    let (a, b) = (strip(a), strip(b));
    (a.len(), a) < (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::{Ignore, Ranges, Unsatisfiable};

    /// (field value, representation length, outcome, ranges).
    type Case = (&'static str, u64, RangeOutcome, &'static [(u64, u64)]);

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // Single ranges.
            ("bytes=0-0", 100, Ranges, &[(0, 0)]),
            ("bytes=0-99", 100, Ranges, &[(0, 99)]),
            ("bytes=0-199", 100, Ranges, &[(0, 99)]),
            ("bytes=10-19", 100, Ranges, &[(10, 19)]),
            ("bytes=99-99", 100, Ranges, &[(99, 99)]),
            ("bytes=5-", 100, Ranges, &[(5, 99)]),
            ("bytes=0-", 100, Ranges, &[(0, 99)]),
            ("bytes=-1", 100, Ranges, &[(99, 99)]),
            ("bytes=-10", 100, Ranges, &[(90, 99)]),
            ("bytes=-100", 100, Ranges, &[(0, 99)]),
            ("bytes=-500", 100, Ranges, &[(0, 99)]),
            ("bytes=0-18446744073709551615", 10, Ranges, &[(0, 9)]),
            ("bytes=0-99999999999999999999999", 10, Ranges, &[(0, 9)]),
            ("bytes=-99999999999999999999999", 10, Ranges, &[(0, 9)]),
            // Unit and whitespace.
            ("BYTES=0-1", 100, Ranges, &[(0, 1)]),
            ("Bytes=0-1", 100, Ranges, &[(0, 1)]),
            ("bytes=0-1 , 500-600", 1000, Ranges, &[(0, 1), (500, 600)]),
            ("bytes=\t0-1,\t500-600\t", 1000, Ranges, &[(0, 1), (500, 600)]),
            ("bytes= 0-1", 100, Ranges, &[(0, 1)]),
            // Empty list elements are tolerated.
            ("bytes=,0-1", 100, Ranges, &[(0, 1)]),
            ("bytes=0-1,,500-600,", 1000, Ranges, &[(0, 1), (500, 600)]),
            ("bytes= , ,0-1", 100, Ranges, &[(0, 1)]),
            // Multiple ranges: sorted, and merged when they overlap or the gap between them
            // is under 80 bytes.
            ("bytes=0-1,500-600", 1000, Ranges, &[(0, 1), (500, 600)]),
            ("bytes=500-599,0-9", 1000, Ranges, &[(0, 9), (500, 599)]),
            ("bytes=0-10,5-20", 100, Ranges, &[(0, 20)]),
            ("bytes=5-20,0-10", 100, Ranges, &[(0, 20)]),
            ("bytes=0-4,5-9", 100, Ranges, &[(0, 9)]),
            ("bytes=0-4,6-9", 100, Ranges, &[(0, 9)]),
            ("bytes=0-50,10-20", 100, Ranges, &[(0, 50)]),
            ("bytes=0-0,0-0,0-0", 100, Ranges, &[(0, 0)]),
            ("bytes=0-,-10", 100, Ranges, &[(0, 99)]),
            ("bytes=-10,80-89", 100, Ranges, &[(80, 99)]),
            ("bytes=0-1,2000-3000,500-600", 1000, Ranges, &[(0, 1), (500, 600)]),
            ("bytes=1-1,3-3,2-2", 100, Ranges, &[(1, 3)]),
            ("bytes=0-9,89-99", 1000, Ranges, &[(0, 99)]),
            ("bytes=0-9,90-99", 1000, Ranges, &[(0, 9), (90, 99)]),
            ("bytes=90-99,0-9", 1000, Ranges, &[(0, 9), (90, 99)]),
            ("bytes=0-9,89-99,179-200", 1000, Ranges, &[(0, 200)]),
            ("bytes=0-9,-1", 18446744073709551615, Ranges, &[(0, 9), (18446744073709551614, 18446744073709551614)]),
            ("bytes=-100,-1", 18446744073709551615, Ranges, &[(18446744073709551515, 18446744073709551614)]),
            // lighttpd's request.t: a 6-byte file and a 100-byte one.
            ("bytes=0-1,3-4", 6, Ranges, &[(0, 4)]),
            ("bytes=0-1,97-98", 100, Ranges, &[(0, 1), (97, 98)]),
            // Unsatisfiable.
            ("bytes=100-", 100, Unsatisfiable, &[]),
            ("bytes=100-200", 100, Unsatisfiable, &[]),
            ("bytes=1000-2000", 100, Unsatisfiable, &[]),
            ("bytes=-0", 100, Unsatisfiable, &[]),
            ("bytes=100-,200-300,-0", 100, Unsatisfiable, &[]),
            ("bytes=99999999999999999999999-", 100, Unsatisfiable, &[]),
            // Empty representation.
            ("bytes=0-0", 0, Unsatisfiable, &[]),
            ("bytes=0-", 0, Unsatisfiable, &[]),
            ("bytes=-5", 0, Unsatisfiable, &[]),
            ("bytes=9-5", 0, Unsatisfiable, &[]),
            // Malformed or inverted range-specs are skipped; with nothing left, 416.
            ("bytes=9-5", 100, Unsatisfiable, &[]),
            ("bytes=0-1,9-5", 100, Ranges, &[(0, 1)]),
            ("bytes=9-5,abc,50-", 100, Ranges, &[(50, 99)]),
            ("bytes=0-3, 0", 6, Ranges, &[(0, 3)]),
            ("bytes=0--", 6, Unsatisfiable, &[]),
            ("bytes=-2-3", 6, Unsatisfiable, &[]),
            // Both beyond u64: still inverted, so still invalid (they saturate to the same).
            ("bytes=99999999999999999999-99999999999999999998", 100, Unsatisfiable, &[]),
            ("bytes=00099999999999999999999-99999999999999999999999", 100, Unsatisfiable, &[]),
            ("bytes=", 100, Unsatisfiable, &[]),
            ("bytes=,", 100, Unsatisfiable, &[]),
            ("bytes=-", 100, Unsatisfiable, &[]),
            ("bytes=a-b", 100, Unsatisfiable, &[]),
            ("bytes=abc", 100, Unsatisfiable, &[]),
            ("bytes=1", 100, Unsatisfiable, &[]),
            ("bytes=1-2-3", 100, Unsatisfiable, &[]),
            ("bytes=--1", 100, Unsatisfiable, &[]),
            ("bytes=+1-2", 100, Unsatisfiable, &[]),
            ("bytes=0x10-20", 100, Unsatisfiable, &[]),
            ("bytes=0 -1", 100, Unsatisfiable, &[]),
            ("bytes=0-1;x", 100, Unsatisfiable, &[]),
            // Ignored: no "bytes=" unit.
            ("items=0-1", 100, Ignore, &[]),
            ("bytes", 100, Ignore, &[]),
            ("bytes =0-1", 100, Ignore, &[]),
            (" bytes=0-1", 100, Ignore, &[]),
            ("bytesx=0-1", 100, Ignore, &[]),
            ("=0-1", 100, Ignore, &[]),
            ("", 100, Ignore, &[]),
            ("0", 6, Ignore, &[]),
            ("0, bytes=0-3", 6, Ignore, &[]),
        ];
        let mut out = vec![(7, 7)];
        for (value, len, outcome, ranges) in cases {
            let got = parse(value.as_bytes(), *len, &mut out);
            assert_eq!(
                (got, out.as_slice()),
                (*outcome, *ranges),
                "{value:?} len {len}"
            );
        }
    }

    /// `n` one-byte ranges 100 bytes apart, too far apart to be merged.
    fn many(n: usize) -> String {
        let list: Vec<String> = (0..n).map(|i| format!("{}-{}", i * 100, i * 100)).collect();
        format!("bytes={}", list.join(","))
    }

    #[test]
    fn range_count_bound() {
        let mut out = Vec::new();
        assert_eq!(parse(many(64).as_bytes(), 10_000, &mut out), Ranges);
        assert_eq!(out.len(), 64);
        assert_eq!(parse(many(65).as_bytes(), 10_000, &mut out), Ignore);
        assert!(out.is_empty());
        // Coalescing does not buy room: 65 copies of one range are still too many.
        let same = format!("bytes={}", vec!["0-0"; 65].join(","));
        assert_eq!(parse(same.as_bytes(), 10, &mut out), Ignore);
        // Nor does being invalid: skipped elements count too.
        let junk = format!("bytes=0-0,{}", vec!["x"; 64].join(","));
        assert_eq!(parse(junk.as_bytes(), 10, &mut out), Ignore);
        let junk = format!("bytes=0-0,{}", vec!["x"; 63].join(","));
        assert_eq!(parse(junk.as_bytes(), 10, &mut out), Ranges);
        // Empty elements are not ranges and do not count.
        let sparse = format!("bytes={}0-0", ",".repeat(1000));
        assert_eq!(parse(sparse.as_bytes(), 10, &mut out), Ranges);
    }
}
