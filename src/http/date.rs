//! HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.
//!
//! Calendar arithmetic is proleptic Gregorian on whole days since 1970-01-01; leap seconds do
//! not exist in Unix time, so a day is always 86 400 seconds. Dates before 1970 cannot be
//! represented as u64 seconds and are refused; years stop at 9999 because IMF-fixdate has a
//! four-digit year.

const SECS_PER_DAY: u64 = 86_400;

/// 9999-12-31 23:59:59 GMT, the last instant with a four-digit year.
pub const MAX_SECS: u64 = 253_402_300_799;

/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const DAYS_TO_EPOCH: u64 = 719_468;
/// Days in 400, 100 and 4 Gregorian years.
const DAYS_400Y: u64 = 146_097;
const DAYS_100Y: u64 = 36_524;
const DAYS_4Y: u64 = 1_461;

/// Month lengths for a year that starts on March 1: the leap day then falls last, so it
/// never shifts the months before it.
const MARCH_MONTH_DAYS: [u64; 12] = [31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 29];

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const DAY_NAMES_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A calendar date and time of day, all fields in their usual ranges (month and day from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    min: u64,
    sec: u64,
}

/// Format seconds since the Unix epoch as "Sun, 06 Nov 1994 08:49:37 GMT" (always 29 bytes).
///
/// Instants after [`MAX_SECS`] are written as `MAX_SECS`: a five-digit year would not fit,
/// and a file time that far ahead is wrong anyway.
pub fn format(secs: u64, out: &mut [u8; 29]) {
    let secs = secs.min(MAX_SECS);
    let days = secs / SECS_PER_DAY;
    let rem = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = ((days + 4) % 7) as usize;

    out[..3].copy_from_slice(DAY_NAMES[weekday]);
    out[3..5].copy_from_slice(b", ");
    put_digits(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    out[11] = b' ';
    put_digits(&mut out[12..16], year);
    out[16] = b' ';
    put_digits(&mut out[17..19], rem / 3600);
    out[19] = b':';
    put_digits(&mut out[20..22], rem / 60 % 60);
    out[22] = b':';
    put_digits(&mut out[23..25], rem % 60);
    out[25..29].copy_from_slice(b" GMT");
}

/// Parse an HTTP date into seconds since the Unix epoch; None when it is not a valid date.
///
/// The clock is read only to place an RFC 850 two-digit year; callers that already know the
/// time (the event loop caches it) should use [`parse_at`], which is pure.
pub fn parse(value: &[u8]) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    parse_at(value, now)
}

/// [`parse`] with the current time given, for placing the century of an RFC 850 date.
pub fn parse_at(value: &[u8], now: u64) -> Option<u64> {
    // The three formats differ in length and in the byte after the day name, so at most
    // one of them can match.
    let civil = match value.get(3) {
        Some(b',') => parse_imf_fixdate(value)?,
        Some(b' ') => parse_asctime(value)?,
        _ => parse_rfc850(value, now)?,
    };
    to_secs(civil)
}

/// "Sun, 06 Nov 1994 08:49:37 GMT"
fn parse_imf_fixdate(v: &[u8]) -> Option<Civil> {
    let v: &[u8; 29] = v.try_into().ok()?;
    day_name(&v[..3])?;
    literal(&v[3..5], b", ")?;
    let day = digits(&v[5..7])?;
    literal(&v[7..8], b" ")?;
    let month = month(&v[8..11])?;
    literal(&v[11..12], b" ")?;
    let year = digits(&v[12..16])?;
    literal(&v[16..17], b" ")?;
    let (hour, min, sec) = time_of_day(&v[17..25])?;
    literal(&v[25..29], b" GMT")?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        min,
        sec,
    })
}

/// "Sunday, 06-Nov-94 08:49:37 GMT"
fn parse_rfc850(v: &[u8], now: u64) -> Option<Civil> {
    let comma = v.iter().position(|&b| b == b',')?;
    if !DAY_NAMES_LONG.contains(&&v[..comma]) {
        return None;
    }
    let v: &[u8; 24] = v[comma..].try_into().ok()?;
    literal(&v[..2], b", ")?;
    let day = digits(&v[2..4])?;
    literal(&v[4..5], b"-")?;
    let month = month(&v[5..8])?;
    literal(&v[8..9], b"-")?;
    let yy = digits(&v[9..11])?;
    literal(&v[11..12], b" ")?;
    let (hour, min, sec) = time_of_day(&v[12..20])?;
    literal(&v[20..24], b" GMT")?;
    Some(Civil {
        year: full_year(yy, now),
        month,
        day,
        hour,
        min,
        sec,
    })
}

/// "Sun Nov  6 08:49:37 1994" (the day may also be written "06").
fn parse_asctime(v: &[u8]) -> Option<Civil> {
    let v: &[u8; 24] = v.try_into().ok()?;
    day_name(&v[..3])?;
    literal(&v[3..4], b" ")?;
    let month = month(&v[4..7])?;
    literal(&v[7..8], b" ")?;
    let day = match v[8] {
        b' ' => digits(&v[9..10])?,
        _ => digits(&v[8..10])?,
    };
    literal(&v[10..11], b" ")?;
    let (hour, min, sec) = time_of_day(&v[11..19])?;
    literal(&v[19..20], b" ")?;
    let year = digits(&v[20..24])?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        min,
        sec,
    })
}

/// RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past
/// century. The year is chosen in the window (now - 50, now + 50], judged by year alone.
fn full_year(yy: u64, now: u64) -> u64 {
    let (this_year, _, _) = civil_from_days(now.min(MAX_SECS) / SECS_PER_DAY);
    let candidate = this_year / 100 * 100 + yy;
    if candidate > this_year + 50 {
        candidate - 100
    } else if candidate + 50 <= this_year {
        candidate + 100
    } else {
        candidate
    }
}

/// Validate every field and convert to seconds since the epoch.
fn to_secs(c: Civil) -> Option<u64> {
    if !(1970..=9999).contains(&c.year) || !(1..=12).contains(&c.month) {
        return None;
    }
    if c.day < 1 || c.day > days_in_month(c.year, c.month) {
        return None;
    }
    // Second 60 is a leap second (RFC 5322 allows it); Unix time has none, so it is counted
    // as the first second of the next minute.
    if c.hour > 23 || c.min > 59 || c.sec > 60 {
        return None;
    }
    let days = days_from_civil(c.year, c.month, c.day);
    let secs = days * SECS_PER_DAY + c.hour * 3600 + c.min * 60 + c.sec;
    Some(secs.min(MAX_SECS))
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01.
///
/// The count is moved to start on 0000-03-01 so that leap days come last in each year, then
/// peeled into 400-, 100-, 4- and 1-year blocks. The last block of each kind may be one day
/// longer (it ends in a leap day), hence the caps at 3.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let d = days + DAYS_TO_EPOCH;
    let eras = d / DAYS_400Y;
    let mut rem = d % DAYS_400Y;
    let centuries = (rem / DAYS_100Y).min(3);
    rem -= centuries * DAYS_100Y;
    let quads = rem / DAYS_4Y;
    rem %= DAYS_4Y;
    let years = (rem / 365).min(3);
    rem -= years * 365;
    let mut year = eras * 400 + centuries * 100 + quads * 4 + years;

    // rem is now the day of a March-based year, 0..=365; twelve steps at most.
    let mut month = 0;
    while month < 11 && rem >= MARCH_MONTH_DAYS[month] {
        rem -= MARCH_MONTH_DAYS[month];
        month += 1;
    }
    // Index 0 is March; indexes 10 and 11 (January, February) belong to the next civil year.
    let civil_month = if month < 10 { month + 3 } else { month - 9 } as u64;
    if civil_month <= 2 {
        year += 1;
    }
    (year, civil_month, rem + 1)
}

/// Days from 1970-01-01 to a valid date in or after 1970 (the inverse of `civil_from_days`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Count in March-based years, as above, so the leap day is the last day of a year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let before_month: u64 = MARCH_MONTH_DAYS[..m as usize].iter().sum();
    let leap_days = y / 4 - y / 100 + y / 400;
    y * 365 + leap_days + before_month + day - 1 - DAYS_TO_EPOCH
}

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Write `n` as exactly `out.len()` decimal digits, zero-padded.
fn put_digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// A fixed-width run of ASCII digits (at most four here, so no overflow).
fn digits(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// "HH:MM:SS"; ranges are checked later, with the date.
fn time_of_day(s: &[u8]) -> Option<(u64, u64, u64)> {
    literal(&s[2..3], b":")?;
    literal(&s[5..6], b":")?;
    Some((digits(&s[..2])?, digits(&s[3..5])?, digits(&s[6..8])?))
}

fn literal(s: &[u8], want: &[u8]) -> Option<()> {
    (s == want).then_some(())
}

/// The day name is checked for spelling only: RFC 9110 does not make a date whose day name
/// disagrees with it invalid, and the instant is what conditional requests compare.
fn day_name(s: &[u8]) -> Option<()> {
    DAY_NAMES.iter().any(|n| n[..] == *s).then_some(())
}

/// Month names are case-sensitive, as HTTP-date is (RFC 9110 §5.6.7).
fn month(s: &[u8]) -> Option<u64> {
    MONTH_NAMES
        .iter()
        .position(|n| n[..] == *s)
        .map(|i| i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: u64) -> String {
        let mut out = [0u8; 29];
        format(secs, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// 2026-01-01 00:00:00 GMT, a fixed "now" for the RFC 850 century rule.
    const NOW: u64 = 1_767_225_600;

    #[test]
    fn format_known() {
        #[rustfmt::skip]
        let cases: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (59, "Thu, 01 Jan 1970 00:00:59 GMT"),
            (86_399, "Thu, 01 Jan 1970 23:59:59 GMT"),
            (86_400, "Fri, 02 Jan 1970 00:00:00 GMT"),
            (68_169_600, "Tue, 29 Feb 1972 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
            (946_684_800, "Sat, 01 Jan 2000 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (4_294_967_295, "Sun, 07 Feb 2106 06:28:15 GMT"),
            (MAX_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (MAX_SECS + 1, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, want) in cases {
            assert_eq!(fmt(secs), want, "{secs}");
        }
    }

    #[test]
    fn parse_table() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<u64>)] = &[
            // The three formats of the same instant.
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            ("Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            ("Sun Nov 06 08:49:37 1994", Some(784_111_777)),
            // Edges of the range.
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_SECS)),
            ("Wed, 31 Dec 1969 23:59:59 GMT", None),
            ("Sat, 01 Jan 0000 00:00:00 GMT", None),
            // Leap days.
            ("Tue, 29 Feb 2000 00:00:00 GMT", Some(951_782_400)),
            ("Tue Feb 29 00:00:00 2000", Some(951_782_400)),
            ("Tuesday, 29-Feb-00 00:00:00 GMT", Some(951_782_400)),
            ("Tue, 29 Feb 1972 00:00:00 GMT", Some(68_169_600)),
            ("Mon, 29 Feb 2100 00:00:00 GMT", None),
            ("Thu, 29 Feb 2001 00:00:00 GMT", None),
            ("Tue, 29 Feb 2400 00:00:00 GMT", Some(13_574_563_200)),
            // 2038 and beyond.
            ("Tue, 19 Jan 2038 03:14:08 GMT", Some(2_147_483_648)),
            ("Sun, 07 Feb 2106 06:28:15 GMT", Some(4_294_967_295)),
            // RFC 850 century: within 50 years of 2026 either way.
            ("Wednesday, 01-Jan-70 00:00:00 GMT", Some(3_155_760_000)),
            ("Wednesday, 01-Jan-76 00:00:00 GMT", Some(3_345_062_400)),
            ("Saturday, 01-Jan-77 00:00:00 GMT", Some(220_924_800)),
            ("Saturday, 01-Jan-00 00:00:00 GMT", Some(946_684_800)),
            // Day names are checked for spelling, not agreement with the date.
            ("Mon, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            // Leap second.
            ("Sun, 06 Nov 1994 08:49:60 GMT", Some(784_111_800)),
            // Field ranges.
            ("Sun, 00 Nov 1994 08:49:37 GMT", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 32 Dec 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Nov 1994 08:60:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:61 GMT", None),
            ("Sunday, 31-Apr-94 08:49:37 GMT", None),
            ("Sun Apr 31 08:49:37 1994", None),
            // Bad shapes.
            ("", None),
            ("Sun", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 06 Nov 1994 08:49:37 gmt", None),
            ("Sun, 06 nov 1994 08:49:37 GMT", None),
            ("sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 GMT ", None),
            (" Sun, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 94 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 8:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08.49.37 GMT", None),
            ("Sun, 06-Nov-1994 08:49:37 GMT", None),
            ("Sun, +6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 08:49:37 GMT\0", None),
            ("Sun, 06-Nov-94 08:49:37 GMT", None),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", None),
            ("Sunday, 06-Nov-94 08:49:37", None),
            ("Funday, 06-Nov-94 08:49:37 GMT", None),
            ("Sunday, 06-Nov-9x 08:49:37 GMT", None),
            ("Sun Nov  6 08:49:37 94", None),
            ("Sun Nov 6 08:49:37 1994", None),
            ("Sun Nov  6 08:49:37 1994 GMT", None),
            ("Sun Nov _6 08:49:37 1994", None),
            ("1994-11-06T08:49:37Z", None),
            ("784111777", None),
        ];
        for &(value, want) in cases {
            assert_eq!(parse_at(value.as_bytes(), NOW), want, "{value:?}");
        }
    }

    #[test]
    fn parse_reads_the_clock_for_rfc850_only() {
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT").is_some());
    }

    #[test]
    fn rfc850_century_window() {
        let year = |y: u64| days_from_civil(y, 6, 1) * SECS_PER_DAY;
        #[rustfmt::skip]
        let cases: &[(u64, u64, u64)] = &[
            // (now year, two-digit year, expected year)
            (2026, 76, 2076),
            (2026, 77, 1977),
            (2026, 26, 2026),
            (2026, 0, 2000),
            (2090, 40, 2140),
            (2090, 41, 2041),
            (2090, 95, 2095),
            (1990, 40, 2040),
            (1990, 41, 1941),
        ];
        for &(now, yy, want) in cases {
            assert_eq!(full_year(yy, year(now)), want, "now {now} yy {yy}");
        }
    }

    #[test]
    fn calendar_is_consecutive() {
        // Walk every day up to 9999-12-31 and check that each follows the one before: an
        // independent check of civil_from_days, and of days_from_civil as its inverse.
        let last_day = MAX_SECS / SECS_PER_DAY;
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for d in 1..=last_day {
            let cur = civil_from_days(d);
            let (y, m, day) = prev;
            let want = if day < days_in_month(y, m) {
                (y, m, day + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(cur, want, "day {d}");
            assert_eq!(days_from_civil(cur.0, cur.1, cur.2), d);
            prev = cur;
        }
        assert_eq!(prev, (9999, 12, 31));
    }

    #[test]
    fn round_trips() {
        // Every hour boundary around some leap days, plus many pseudo-random instants.
        let mut values: Vec<u64> = vec![0, 1, 951_782_400, 2_147_483_647, MAX_SECS];
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % (MAX_SECS + 1));
            // Bias half the values into 1970-2200, where real file times live.
            values.push(x % 7_258_118_400);
        }
        values.extend((951_696_000..951_955_200).step_by(3600));
        for secs in values {
            let text = fmt(secs);
            assert_eq!(parse(text.as_bytes()), Some(secs), "{text}");
            // The asctime form of the same instant parses to the same value.
            let b = text.as_bytes();
            let day = if b[5] == b'0' { b' ' } else { b[5] };
            let asctime = format!(
                "{} {} {}{} {} {}",
                &text[..3],
                &text[8..11],
                day as char,
                &text[6..7],
                &text[17..25],
                &text[12..16]
            );
            assert_eq!(parse(asctime.as_bytes()), Some(secs), "{asctime}");
        }
    }
}
