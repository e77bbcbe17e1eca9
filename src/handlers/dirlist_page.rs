//! mod_dirlisting's page: lighttpd's directory listing HTML (and its `?json` form) rendered
//! from entries the caller has read, with every `dir-listing.*` option lighttpd 1.4 has.
//!
//! The caller reads the directory (skipping what [`ListingOpts::shows`] refuses, before any
//! stat), reads the header and readme files if configured (at most [`MAX_INCLUDE_BYTES`]),
//! and hands everything here; nothing in this file touches the filesystem or the clock.
//! The markup keeps lighttpd's structure and class names (`div.list`, `td.n/m/s/t`,
//! `tr.d`, `div.foot`, `pre.header/readme`) so stylesheets written for lighttpd's listings
//! (`dir-listing.external-css`) keep working.

use std::borrow::Cow;
use std::io::Write as _;

/// Listings stop here, so a huge directory cannot make one response (or the sort) unbounded;
/// the page says so when it cut entries off.
pub const MAX_ENTRIES: usize = 10_000;

/// The most of a header or readme file that is included; the caller need not read more.
pub const MAX_INCLUDE_BYTES: usize = 1 << 20;

pub use crate::config::dirlisting::ListingOpts;

/// One directory entry as read by the caller (symlinks already resolved to their target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as the filesystem has it: any bytes but '/' and NUL, UTF-8 or not.
    pub name: Vec<u8>,
    pub is_dir: bool,
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

/// What the listing shows besides the options.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// The decoded request path of the directory, ending in '/'.
    pub url_path: &'a [u8],
    pub entries: &'a [Entry],
    /// The caller stopped reading the directory early (it had [`MAX_ENTRIES`] already).
    pub truncated: bool,
    /// Contents of the show-header file, if configured and readable.
    pub header: Option<&'a [u8]>,
    /// Contents of the show-readme file, if configured and readable.
    pub readme: Option<&'a [u8]>,
    /// server.tag, the footer when dir-listing.set-footer is unset; empty for none.
    pub server_tag: &'a str,
}

/// The lookups a listing needs from the server's configuration and the system.
pub trait ListingEnv {
    /// The content type for a file name (mimetype.assign); None for the default,
    /// application/octet-stream.
    fn content_type(&self, name: &[u8]) -> Option<&str>;
    /// Seconds east of UTC at Unix time `t`, since lighttpd shows times in local time
    /// ([`local_utc_offset`] gives the system's).
    fn utc_offset(&self, t: i64) -> i64;
}

/// Whether a directory request's query asks for the JSON listing (lighttpd: exactly
/// `?json`).
pub fn wants_json(query: &[u8]) -> bool {
    query == b"json"
}

/// Render the HTML listing into `out`; returns the Content-Type.
pub fn render<'o>(
    opts: &'o ListingOpts,
    page: &Listing,
    env: &dyn ListingEnv,
    out: &mut Vec<u8>,
) -> Cow<'o, str> {
    if opts.auto_layout {
        out.extend_from_slice(b"<!DOCTYPE html>\n<html>\n<head>\n");
        if let Some(cs) = opts.charset() {
            let _ = writeln!(out, "<meta charset=\"{}\">", cs);
        }
        out.extend_from_slice(b"<title>Index of ");
        escape_into(page.url_path, Escape::MinimalXml, out);
        out.extend_from_slice(b"</title>\n");
        match opts.external_css.as_deref() {
            Some(css) if !css.is_empty() => {
                out.extend_from_slice(
                    b"<meta name=\"viewport\" content=\"initial-scale=1\">\
                      <link rel=\"stylesheet\" type=\"text/css\" href=\"",
                );
                escape_into(css.as_bytes(), Escape::Html, out);
                out.extend_from_slice(b"\">\n");
            }
            _ => out.extend_from_slice(LISTING_CSS.as_bytes()),
        }
        out.extend_from_slice(b"</head>\n<body>\n");
    }
    if let Some(h) = page.header.filter(|_| opts.show_header.is_some()) {
        include(h, opts.encode_header, "header", out);
    }
    out.extend_from_slice(b"<h2>Index of ");
    escape_into(page.url_path, Escape::MinimalXml, out);
    out.extend_from_slice(
        b"</h2>\n<div class=\"list\">\n\
          <table summary=\"Directory Listing\" cellpadding=\"0\" cellspacing=\"0\">\n\
          <thead><tr><th class=\"n\">Name</th><th class=\"m\">Last Modified</th>\
          <th class=\"s\">Size</th><th class=\"t\">Type</th></tr></thead>\n<tbody>\n",
    );
    if page.url_path != b"/" {
        out.extend_from_slice(
            b"<tr class=\"d\"><td class=\"n\"><a href=\"../\">..</a>/</td>\
              <td class=\"m\" data-value=\"-1\">&nbsp;</td>\
              <td class=\"s\" data-value=\"-1\">- &nbsp;</td><td class=\"t\">Directory</td></tr>\n",
        );
    }
    let (order, cut) = listed(opts, page.entries);
    for e in order.iter().filter_map(|&i| page.entries.get(i)) {
        entry_row(e, env, out);
    }
    out.extend_from_slice(b"</tbody>\n</table>\n</div>\n");
    if cut || page.truncated {
        let _ = writeln!(
            out,
            "<p class=\"truncated\">Only the first {} entries are listed.</p>",
            MAX_ENTRIES
        );
    }
    if let Some(r) = page.readme.filter(|_| opts.show_readme.is_some()) {
        include(r, opts.encode_readme, "readme", out);
    }
    if opts.auto_layout {
        let footer = opts.set_footer.as_deref().filter(|f| !f.trim().is_empty());
        if let Some(f) = footer {
            // set-footer is the admin's HTML, inserted as lighttpd does.
            let _ = writeln!(out, "<div class=\"foot\">{}</div>", f);
        } else if !page.server_tag.is_empty() {
            out.extend_from_slice(b"<div class=\"foot\">");
            escape_into(page.server_tag.as_bytes(), Escape::Html, out);
            out.extend_from_slice(b"</div>\n");
        }
        match opts.external_js.as_deref() {
            Some(js) if !js.is_empty() => {
                out.extend_from_slice(b"<script type=\"text/javascript\" src=\"");
                escape_into(js.as_bytes(), Escape::Html, out);
                out.extend_from_slice(b"\"></script>\n");
            }
            _ => out.extend_from_slice(LISTING_SORT_JS.as_bytes()),
        }
        out.extend_from_slice(b"</body>\n</html>\n");
    }
    opts.content_type()
}

/// The `?json` listing: an array of `{"name","type","size","mtime"}` objects, unsorted and
/// without the parent entry, as lighttpd sends it. Names that are not UTF-8 are shown with
/// U+FFFD for their bad bytes, since JSON strings cannot hold raw bytes. Returns the
/// Content-Type.
pub fn render_json(opts: &ListingOpts, page: &Listing, out: &mut Vec<u8>) -> &'static str {
    out.push(b'[');
    let shown = page.entries.iter().filter(|e| opts.shows(&e.name));
    for (n, e) in shown.take(MAX_ENTRIES).enumerate() {
        if n != 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":\"");
        json_escape(&String::from_utf8_lossy(&e.name), out);
        let _ = write!(
            out,
            "\",\"type\":\"{}\",\"size\":{},\"mtime\":{}}}",
            if e.is_dir { "dir" } else { "file" },
            e.size,
            e.mtime
        );
    }
    out.push(b']');
    "application/json"
}

/// Indices of the entries to list, in display order, and whether any were cut off.
fn listed(opts: &ListingOpts, entries: &[Entry]) -> (Vec<usize>, bool) {
    let mut shown = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| opts.shows(&e.name))
        .map(|(i, _)| i);
    let order: Vec<usize> = shown.by_ref().take(MAX_ENTRIES).collect();
    let cut = shown.next().is_some();
    let mut order = order;
    if opts.sort {
        let key = |i: &usize| entries.get(*i).map(|e| (!e.is_dir, e.name.as_slice()));
        order.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    (order, cut)
}

fn entry_row(e: &Entry, env: &dyn ListingEnv, out: &mut Vec<u8>) {
    if e.is_dir {
        out.extend_from_slice(b"<tr class=\"d\"><td class=\"n\"><a href=\"");
    } else {
        out.extend_from_slice(b"<tr><td class=\"n\"><a href=\"");
    }
    href_encode(&e.name, out);
    out.extend_from_slice(if e.is_dir { b"/\">" } else { b"\">" });
    escape_into(&e.name, Escape::MinimalXml, out);
    out.extend_from_slice(if e.is_dir {
        b"</a>/</td><td class=\"m\">"
    } else {
        b"</a></td><td class=\"m\">"
    });
    let c = civil(e.mtime.saturating_add(env.utc_offset(e.mtime)));
    let mon = MONTHS
        .get(c.month.wrapping_sub(1) as usize)
        .unwrap_or(&"???");
    let _ = write!(
        out,
        "{}-{}-{:02} {:02}:{:02}:{:02}",
        c.year, mon, c.day, c.hour, c.min, c.sec
    );
    if e.is_dir {
        out.extend_from_slice(
            b"</td><td class=\"s\" data-value=\"-1\">- &nbsp;</td>\
              <td class=\"t\">Directory</td></tr>\n",
        );
        return;
    }
    let _ = write!(out, "</td><td class=\"s\" data-value=\"{}\">", e.size);
    size_human(e.size, out);
    out.extend_from_slice(b"</td><td class=\"t\">");
    let ctype = env
        .content_type(&e.name)
        .unwrap_or("application/octet-stream");
    escape_into(ctype.as_bytes(), Escape::Html, out);
    out.extend_from_slice(b"</td></tr>\n");
}

/// A header or readme file: escaped inside `<pre class="...">`, or as it is (the admin's
/// HTML) when encoding is off. Empty files add nothing, as in lighttpd.
fn include(body: &[u8], encode: bool, class: &str, out: &mut Vec<u8>) {
    let body = body.get(..MAX_INCLUDE_BYTES).unwrap_or(body);
    if body.is_empty() {
        return;
    }
    if encode {
        let _ = write!(out, "<pre class=\"{}\">", class);
        escape_into(body, Escape::MinimalXml, out);
        out.extend_from_slice(b"</pre>");
    } else {
        out.extend_from_slice(body);
    }
}

/// lighttpd's compact size: one decimal and a K/M/G/T/P/E suffix, "0.1K" at least for a
/// non-empty file. The "decimal" is the remainder's hundreds of bytes (capped at 9), not
/// tenths, and a value past 999 rolls into the next unit as "0.9": odd, but what lighttpd
/// users and scripts see.
pub fn size_human(size: u64, out: &mut Vec<u8>) {
    const UNITS: &[u8; 6] = b"KMGTPE";
    let mut size = size;
    if size > 0 && size < 100 {
        size += 99;
    }
    let mut unit = 0usize;
    let mut remain = size & 1023;
    size >>= 10;
    // At most five more steps for a u64: 2^64 >> 50 is below 1024.
    while size >= 1024 {
        remain = size & 1023;
        size >>= 10;
        unit += 1;
    }
    let mut tenth = (remain / 100).min(9);
    if size > 999 {
        size = 0;
        tenth = 9;
        unit += 1;
    }
    let suffix = UNITS.get(unit).copied().unwrap_or(b'E');
    let _ = write!(out, "{}.{}{}", size, tenth, char::from(suffix));
}

/// The seconds east of UTC the system's local time zone has at Unix time `t` (0 if the
/// C library cannot tell).
// time_t and long are 64-bit here but 32-bit on some of the ARM and MIPS targets lightd is
// built for, so the conversions are needed there.
#[allow(clippy::useless_conversion)]
pub fn local_utc_offset(t: i64) -> i64 {
    let Some(tt) = t.try_into().ok() else {
        return 0;
    };
    // SAFETY: libc::tm is plain data, for which all-zero is a valid value; localtime_r
    // writes only into the tm we pass and reads only `tt`.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&tt, &mut tm).is_null() {
            return 0;
        }
        i64::from(tm.tm_gmtoff)
    }
}

/// Which bytes `escape_into` turns into `&#xHH;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Markup characters, controls and DEL; other bytes (UTF-8 or a legacy charset named
    /// by dir-listing.encoding) pass as they are (lighttpd's ENCODING_MINIMAL_XML).
    MinimalXml,
    /// As MinimalXml, and every byte from 0x80 too, so the output is ASCII whatever the
    /// input was (lighttpd's ENCODING_HTML, used for client-sent text on the status page).
    Html,
}

/// Append `bytes` to `out` with the markup characters (& < > " ' and the backtick, which old
/// IE treated as a quote), controls and DEL written as `&#xHH;`, the way lighttpd escapes.
pub(crate) fn escape_into(bytes: &[u8], how: Escape, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let special = b < 0x20
            || b == 0x7f
            || matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'`')
            || (b >= 0x80 && how == Escape::Html);
        if special {
            out.extend_from_slice(b"&#x");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
            out.push(b';');
        } else {
            out.push(b);
        }
    }
}

/// Percent-encode a name for a relative href: everything but letters, digits and
/// `! ( ) * - . _ ~` (lighttpd's ENCODING_REL_URI_PART), so '/', '?', '#', '%', ':' and every
/// byte from 0x80 are encoded, and a name can never become another path or a scheme.
pub(crate) fn href_encode(name: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in name {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'!' | b'(' | b')' | b'*' | b'-' | b'.' | b'_' | b'~')
        {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
    }
}

/// A JSON string body: `"` `\` and controls escaped (controls as \uXXXX where JSON has no
/// short form).
fn json_escape(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down time (proleptic Gregorian, no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
}

/// Unix seconds (any sign) to a calendar date and time of day.
pub(crate) fn civil(secs: i64) -> Civil {
    // Clamp to about ±300 000 years so the day arithmetic below cannot overflow.
    let secs = secs.clamp(-(1i64 << 53), 1i64 << 53);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Count from 0000-03-01 so the leap day is the last day of a "year"; 400-year eras of
    // 146 097 days repeat exactly.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + i64::from(month <= 2);
    Civil {
        year,
        month: month as u32,
        day: day as u32,
        hour: (tod / 3600) as u32,
        min: (tod / 60 % 60) as u32,
        sec: (tod % 60) as u32,
    }
}

const LISTING_CSS: &str = "<style type=\"text/css\">\n\
body { background-color: #f5f5f5; }\n\
a, a:active { color: blue; text-decoration: none; }\n\
a:visited { color: #48468f; }\n\
a:hover, a:focus { color: red; text-decoration: underline; }\n\
h2 { margin-bottom: 12px; }\n\
table { margin-left: 12px; }\n\
th, td { font: 90% monospace; text-align: left; }\n\
th { font-weight: bold; padding-right: 14px; padding-bottom: 3px; }\n\
td { padding-right: 14px; }\n\
th.s, td.s { text-align: right; }\n\
div.list { background-color: white; border-top: 1px solid #646464; \
border-bottom: 1px solid #646464; padding-top: 10px; padding-bottom: 14px; }\n\
div.foot { font: 90% monospace; color: #787878; padding-top: 4px; }\n\
@media (prefers-color-scheme: dark) {\n\
 a, a:active { color: #9e9eff; }\n\
 a:visited { color: #d0adf0; }\n\
 body, div.list { background-color: transparent; }\n\
 div.foot { color: #878787; }\n\
}\n\
</style>\n\
<meta name=\"color-scheme\" content=\"light dark\">\n";

/// Client-side sorting: the column headers become links; a click sorts by that column
/// (again: the other way). The parent row stays on top, directories stay above files when
/// sorting by name or type, and ties fall back to the name. `?C=N|M|S|T|D&O=A|D` (the
/// Apache-style query lighttpd also honours) picks the initial order.
const LISTING_SORT_JS: &str = r#"
<script type="text/javascript">
// <!--
(function () {
 var table = document.querySelector && document.querySelector('div.list table');
 if (!table || !table.tHead || !table.tBodies.length) return;
 var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
 var months = 'JanFebMarAprMayJunJulAugSepOctNovDec', current = -1, descending = false;
 function key(row, col) {
  var cell = row.cells[col], v = cell.getAttribute('data-value');
  if (col == 1 && v === null) {
   var m = /(-?\d+)-(\w{3})-(\d\d) (\d\d):(\d\d):(\d\d)/.exec(cell.textContent);
   v = m ? Date.UTC(+m[1], months.indexOf(m[2]) / 3, +m[3], +m[4], +m[5], +m[6]) : 0;
   cell.setAttribute('data-value', v);
  }
  return (col == 1 || col == 2) ? +v : cell.textContent;
 }
 function compare(a, b, col) {
  var x = key(a, col), y = key(b, col), r;
  if (col == 1 || col == 2) r = x - y;
  else r = x.toUpperCase().localeCompare(y.toUpperCase()) || (x < y ? -1 : (x > y ? 1 : 0));
  return (r || col == 0) ? r : compare(a, b, 0);
 }
 function sort(col, down) {
  var rows = Array.prototype.slice.call(body.rows), top = null, i;
  if (rows.length && rows[0].cells[0].textContent == '../') top = rows.shift();
  rows.sort(function (a, b) {
   if (col == 0 || col == 3) {
    var ad = a.className == 'd', bd = b.className == 'd';
    if (ad != bd) return ad ? -1 : 1;
   }
   var r = compare(a, b, col);
   return down ? -r : r;
  });
  if (top) rows.unshift(top);
  for (i = 0; i < rows.length; i++) body.appendChild(rows[i]);
  for (i = 0; i < heads.length; i++) {
   var arrow = heads[i].getElementsByTagName('span')[0];
   if (arrow) arrow.innerHTML = i != col ? '' : (down ? '&uarr;' : '&darr;');
  }
  current = col;
  descending = down;
 }
 for (var i = 0; i < heads.length; i++) (function (col) {
  var th = heads[col], link = document.createElement('a'), arrow = document.createElement('span');
  link.href = '#';
  link.className = 'sortheader';
  link.appendChild(document.createTextNode(th.textContent));
  arrow.className = 'sortarrow';
  link.appendChild(arrow);
  link.onclick = function () { sort(col, current == col && !descending); return false; };
  th.innerHTML = '';
  th.appendChild(link);
 })(i);
 var c = /[?&;]C=([NMSTD])/.exec(location.search), o = /[?&;]O=([AD])/.exec(location.search);
 if (c) sort(Math.min('NMSTD'.indexOf(c[1]), 3), !!(o && o[1] == 'D'));
})();
// -->
</script>
"#;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small JSON validator: Ok if `s` is exactly one JSON value (RFC 8259), else where
    /// it went wrong. Enough to prove the renderers emit parseable JSON.
    pub(crate) fn json_check(s: &str) -> Result<(), String> {
        let b = s.as_bytes();
        let mut p = Parser { b, i: 0, depth: 0 };
        p.ws();
        p.value()?;
        p.ws();
        if p.i != b.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(())
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }
        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{} at byte {}", what, self.i))
        }
        fn ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                self.err(&format!("expected {:?}", char::from(c)))
            }
        }
        fn value(&mut self) -> Result<(), String> {
            self.depth += 1;
            if self.depth > 64 {
                return self.err("too deep");
            }
            let r = match self.peek() {
                Some(b'{') => self.object(),
                Some(b'[') => self.array(),
                Some(b'"') => self.string(),
                Some(b't') => self.word("true"),
                Some(b'f') => self.word("false"),
                Some(b'n') => self.word("null"),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => self.err("expected a value"),
            };
            self.depth -= 1;
            r
        }
        fn word(&mut self, w: &str) -> Result<(), String> {
            if self.b[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Ok(())
            } else {
                self.err("bad literal")
            }
        }
        fn digits(&mut self) -> usize {
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            self.i - start
        }
        fn number(&mut self) -> Result<(), String> {
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            let lead = self.peek();
            let n = self.digits();
            if n == 0 || (n > 1 && lead == Some(b'0')) {
                return self.err("bad integer part");
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return self.err("bad fraction");
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return self.err("bad exponent");
                }
            }
            Ok(())
        }
        fn string(&mut self) -> Result<(), String> {
            self.eat(b'"')?;
            loop {
                match self.peek() {
                    None => return self.err("unterminated string"),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(());
                    }
                    Some(b'\\') => {
                        self.i += 1;
                        match self.peek() {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                                self.i += 1
                            }
                            Some(b'u') => {
                                let hex = self.b.get(self.i + 1..self.i + 5);
                                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                    return self.err("bad \\u escape");
                                }
                                self.i += 5;
                            }
                            _ => return self.err("bad escape"),
                        }
                    }
                    Some(c) if c < 0x20 => return self.err("raw control in string"),
                    Some(_) => self.i += 1,
                }
            }
        }
        fn array(&mut self) -> Result<(), String> {
            self.eat(b'[')?;
            self.ws();
            if self.peek() == Some(b']') {
                self.i += 1;
                return Ok(());
            }
            loop {
                self.ws();
                self.value()?;
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        return Ok(());
                    }
                    _ => return self.err("expected , or ]"),
                }
            }
        }
        fn object(&mut self) -> Result<(), String> {
            self.eat(b'{')?;
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(());
            }
            loop {
                self.ws();
                self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                self.value()?;
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b'}') => {
                        self.i += 1;
                        return Ok(());
                    }
                    _ => return self.err("expected , or }"),
                }
            }
        }
    }

    #[test]
    fn json_checker_rejects_what_it_should() {
        for ok in [
            "[]",
            "{}",
            " [1, -2.5e3, \"a\\u00e9\\n\", true, false, null, {\"k\": []}] ",
        ] {
            assert!(json_check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "[",
            "[1,]",
            "{\"a\" 1}",
            "\"\\a\"",
            "\"\u{1}\"",
            "01",
            "[1] x",
            "{a:1}",
            "\"\\u12\"",
        ] {
            assert!(json_check(bad).is_err(), "{bad:?}");
        }
    }

    /// UTC, and content types from a tiny suffix table.
    struct Env;
    impl ListingEnv for Env {
        fn content_type(&self, name: &[u8]) -> Option<&str> {
            if name.ends_with(b".txt") {
                Some("text/plain;charset=utf-8")
            } else if name.ends_with(b".evil") {
                Some("x/<b>")
            } else {
                None
            }
        }
        fn utc_offset(&self, _t: i64) -> i64 {
            0
        }
    }

    fn file(name: &[u8], size: u64) -> Entry {
        Entry {
            name: name.to_vec(),
            is_dir: false,
            size,
            mtime: 1_700_000_000,
        }
    }

    fn dir(name: &[u8]) -> Entry {
        Entry {
            is_dir: true,
            ..file(name, 4096)
        }
    }

    fn page<'a>(entries: &'a [Entry]) -> Listing<'a> {
        Listing {
            url_path: b"/pub/",
            entries,
            truncated: false,
            header: None,
            readme: None,
            server_tag: "lightd/0.1",
        }
    }

    fn html(opts: &ListingOpts, listing: &Listing) -> (String, String) {
        let mut out = Vec::new();
        let ct = render(opts, listing, &Env, &mut out).into_owned();
        (String::from_utf8_lossy(&out).into_owned(), ct)
    }

    /// The names linked from the table, in order (the href text, still encoded).
    fn hrefs(page: &str) -> Vec<&str> {
        page.split("<td class=\"n\"><a href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect()
    }

    #[test]
    fn hostile_names_are_escaped_and_encoded() {
        let entries = [
            file(b"<script>alert(1)</script>", 1),
            file(b"a\"b'c&d`e", 2),
            file(b"ctl\x01\x1b\x7f\n", 3),
            file(b"bad\xff\xfeutf8", 4),
            dir(b"x\"><img src=x onerror=y>"),
            file(b"caf\xc3\xa9 #1?.txt", 5),
            file(b"javascript:alert(1)", 6),
        ];
        let mut out = Vec::new();
        render(&ListingOpts::default(), &page(&entries), &Env, &mut out);
        // No name's markup survives, whatever bytes it has.
        for raw in [
            &b"<script>"[..],
            b"<img",
            b"\"b'c",
            b"\x01",
            b"\x1b",
            b"\x7f",
            b"`e",
        ] {
            assert!(
                !out.windows(raw.len()).any(|w| w == raw),
                "{:?} leaked",
                String::from_utf8_lossy(raw)
            );
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(">&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;</a>"));
        assert!(text.contains(">a&#x22;b&#x27;c&#x26;d&#x60;e</a>"));
        assert!(text.contains(">ctl&#x01;&#x1B;&#x7F;&#x0A;</a>"));
        // Non-UTF-8 and UTF-8 bytes pass through in text (lighttpd's minimal XML
        // encoding), and are always percent-encoded in links.
        assert!(out.windows(6).any(|w| w == b"\xff\xfeutf8"));
        assert!(text.contains(">caf\u{e9} #1?.txt</a>"));
        let links = hrefs(&text);
        assert!(
            links.contains(&"%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
            "{links:?}"
        );
        assert!(links.contains(&"a%22b%27c%26d%60e"));
        assert!(links.contains(&"ctl%01%1B%7F%0A"));
        assert!(links.contains(&"bad%FF%FEutf8"));
        assert!(links.contains(&"x%22%3E%3Cimg%20src%3Dx%20onerror%3Dy%3E/"));
        assert!(links.contains(&"caf%C3%A9%20%231%3F.txt"));
        // ':' is encoded, so a name cannot become a scheme.
        assert!(links.contains(&"javascript%3Aalert(1)"));
        // A content type from the config is escaped too.
        let mut out = Vec::new();
        render(
            &ListingOpts::default(),
            &page(&[file(b"a.evil", 1)]),
            &Env,
            &mut out,
        );
        assert!(String::from_utf8_lossy(&out).contains("<td class=\"t\">x/&#x3C;b&#x3E;</td>"));
    }

    #[test]
    fn title_and_heading_escape_the_path() {
        let mut l = page(&[]);
        l.url_path = b"/a<b>&\"c/";
        let (p, _) = html(&ListingOpts::default(), &l);
        assert!(p.contains("<title>Index of /a&#x3C;b&#x3E;&#x26;&#x22;c/</title>"));
        assert!(p.contains("<h2>Index of /a&#x3C;b&#x3E;&#x26;&#x22;c/</h2>"));
        assert!(
            p.contains("<a href=\"../\">..</a>/"),
            "parent row below the root"
        );
        l.url_path = b"/";
        let (p, _) = html(&ListingOpts::default(), &l);
        assert!(!p.contains("href=\"../\""), "no parent row at the root");
    }

    #[test]
    fn dotfiles_hidden_by_default_and_shown_when_asked() {
        let entries = [
            file(b".hidden", 1),
            dir(b".git"),
            file(b".", 1),
            file(b"..", 1),
            file(b"shown", 1),
        ];
        let (p, _) = html(&ListingOpts::default(), &page(&entries));
        assert_eq!(hrefs(&p), ["../", "shown"]);
        let opts = ListingOpts {
            hide_dotfiles: false,
            ..ListingOpts::default()
        };
        let (p, _) = html(&opts, &page(&entries));
        // "." and ".." are never entries; the parent is its own row.
        assert_eq!(hrefs(&p), ["../", ".git/", ".hidden", "shown"]);
    }

    #[test]
    fn exclude_regexes_match_names() {
        let opts = ListingOpts {
            exclude: ListingOpts::compile_excludes(&["~$", "^secret", r"\.bak$"]).unwrap(),
            ..ListingOpts::default()
        };
        let entries = [
            file(b"notes.txt~", 1),
            file(b"secret.key", 1),
            dir(b"secrets"),
            file(b"db.bak", 1),
            file(b"db.bak.txt", 1),
            file(b"my secret", 1),
            file(b"\xffsecret", 1),
            file(b"secret\xff", 1),
        ];
        let (p, _) = html(&opts, &page(&entries));
        // Not UTF-8: hidden whenever excludes are set (lighttpd fails closed on them).
        assert_eq!(hrefs(&p), ["../", "db.bak.txt", "my%20secret"]);
        let (p, _) = html(&ListingOpts::default(), &page(&entries));
        assert!(
            hrefs(&p).contains(&"%FFsecret"),
            "listed when there are no excludes"
        );
        assert!(ListingOpts::compile_excludes(&["ok", "(unclosed"])
            .unwrap_err()
            .contains("(unclosed"));
        // JSON obeys the same filters.
        let mut out = Vec::new();
        render_json(&opts, &page(&entries), &mut out);
        let json = String::from_utf8(out).unwrap();
        assert!(!json.contains("secret.key") && json.contains("db.bak.txt"));
    }

    #[test]
    fn sorted_dirs_first_by_bytes_unless_sort_is_off() {
        let entries = [
            file(b"b", 1),
            dir(b"z"),
            file(b"B", 1),
            file(b"a", 1),
            dir(b"c"),
        ];
        let (p, _) = html(&ListingOpts::default(), &page(&entries));
        assert_eq!(hrefs(&p), ["../", "c/", "z/", "B", "a", "b"]);
        let opts = ListingOpts {
            sort: false,
            ..ListingOpts::default()
        };
        let (p, _) = html(&opts, &page(&entries));
        assert_eq!(hrefs(&p), ["../", "b", "z/", "B", "a", "c/"]);
    }

    #[test]
    fn rows_have_lighttpds_columns() {
        let entries = [file(b"r.txt", 1536), dir(b"sub")];
        let (p, ct) = html(&ListingOpts::default(), &page(&entries));
        assert_eq!(ct, "text/html");
        for th in ["Name", "Last Modified", "Size", "Type"] {
            assert!(p.contains(&format!(">{th}</th>")), "{th}");
        }
        // 1 700 000 000 = 2023-11-14 22:13:20 UTC.
        assert!(p.contains(
            "<tr><td class=\"n\"><a href=\"r.txt\">r.txt</a></td>\
             <td class=\"m\">2023-Nov-14 22:13:20</td>\
             <td class=\"s\" data-value=\"1536\">1.5K</td>\
             <td class=\"t\">text/plain;charset=utf-8</td></tr>"
        ));
        assert!(p.contains(
            "<tr class=\"d\"><td class=\"n\"><a href=\"sub/\">sub</a>/</td>\
             <td class=\"m\">2023-Nov-14 22:13:20</td>\
             <td class=\"s\" data-value=\"-1\">- &nbsp;</td><td class=\"t\">Directory</td></tr>"
        ));
        // A file with no known type.
        let (p, _) = html(&ListingOpts::default(), &page(&[file(b"blob", 0)]));
        assert!(p.contains("<td class=\"t\">application/octet-stream</td>"));
    }

    #[test]
    fn size_format_matches_lighttpd() {
        #[rustfmt::skip]
        let cases: &[(u64, &str)] = &[
            (0, "0.0K"), (1, "0.1K"), (99, "0.1K"), (100, "0.1K"), (199, "0.1K"),
            (200, "0.2K"), (1023, "0.9K"),
            (1024, "1.0K"), (1536, "1.5K"), (10 * 1024 + 1000, "10.9K"),
            (999 * 1024, "999.0K"), (1000 * 1024, "0.9M"), (1024 * 1024, "1.0M"),
            (5 * (1 << 30), "5.0G"), (u64::MAX, "15.9E"),
        ];
        for &(n, want) in cases {
            let mut out = Vec::new();
            size_human(n, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{n}");
        }
    }

    #[test]
    fn dates_in_local_time_with_month_names() {
        struct Plus2;
        impl ListingEnv for Plus2 {
            fn content_type(&self, _: &[u8]) -> Option<&str> {
                None
            }
            fn utc_offset(&self, _: i64) -> i64 {
                7200
            }
        }
        let mut e = file(b"f", 1);
        e.mtime = 951_868_799; // 2000-02-29 23:59:59 UTC
        let mut out = Vec::new();
        render(
            &ListingOpts::default(),
            &page(&[e.clone()]),
            &Plus2,
            &mut out,
        );
        assert!(String::from_utf8_lossy(&out).contains(">2000-Mar-01 01:59:59<"));
        e.mtime = -1;
        let mut out = Vec::new();
        render(&ListingOpts::default(), &page(&[e]), &Env, &mut out);
        assert!(String::from_utf8_lossy(&out).contains(">1969-Dec-31 23:59:59<"));
        for (t, want) in [
            (0, (1970, 1, 1, 0, 0, 0)),
            (1_709_164_800, (2024, 2, 29, 0, 0, 0)),
            (253_402_300_799, (9999, 12, 31, 23, 59, 59)),
            (-62_135_596_800, (1, 1, 1, 0, 0, 0)),
        ] {
            let c = civil(t);
            assert_eq!((c.year, c.month, c.day, c.hour, c.min, c.sec), want, "{t}");
        }
        // Extremes clamp rather than overflow.
        let _ = civil(i64::MAX);
        let _ = civil(i64::MIN);
    }

    #[test]
    fn header_and_readme_encoded_by_default() {
        let opts = ListingOpts {
            show_header: ListingOpts::include_setting("enable", "HEADER.txt"),
            show_readme: ListingOpts::include_setting("enable", "README.txt"),
            ..ListingOpts::default()
        };
        let entries = [file(b"HEADER.txt", 1), file(b"README.txt", 1)];
        let mut l = page(&entries);
        l.header = Some(b"<b>Header</b> & \x01");
        l.readme = Some(b"Read <me>\n");
        let (p, _) = html(&opts, &l);
        let head =
            p.find("<pre class=\"header\">&#x3C;b&#x3E;Header&#x3C;/b&#x3E; &#x26; &#x01;</pre>");
        let h2 = p.find("<h2>Index of");
        let table_end = p.find("</table>");
        let readme = p.find("<pre class=\"readme\">Read &#x3C;me&#x3E;&#x0A;</pre>");
        let foot = p.find("<div class=\"foot\">");
        assert!(head < h2 && head.is_some(), "header before the heading");
        assert!(
            table_end < readme && readme < foot && readme.is_some(),
            "readme after the table"
        );
        // Not hidden unless asked.
        assert_eq!(hrefs(&p), ["../", "HEADER.txt", "README.txt"]);
    }

    #[test]
    fn header_and_readme_raw_and_hidden_when_configured() {
        let opts = ListingOpts {
            show_header: ListingOpts::include_setting("TOP.html", "HEADER.txt"),
            hide_header_file: true,
            encode_header: false,
            show_readme: ListingOpts::include_setting("enable", "README.txt"),
            hide_readme_file: true,
            encode_readme: false,
            ..ListingOpts::default()
        };
        let entries = [file(b"TOP.html", 1), file(b"README.txt", 1), file(b"x", 1)];
        let mut l = page(&entries);
        l.header = Some(b"<div id=top>hi</div>");
        l.readme = Some(b"<p>bye</p>");
        let (p, _) = html(&opts, &l);
        assert!(p.contains("<body>\n<div id=top>hi</div><h2>"));
        assert!(p.contains("</div>\n<p>bye</p>"));
        assert!(!p.contains("<pre class="));
        assert_eq!(hrefs(&p), ["../", "x"]);
        // Contents given without the option set are not shown; empty files add nothing.
        let mut l = page(&[]);
        l.header = Some(b"stray");
        let (p, _) = html(&ListingOpts::default(), &l);
        assert!(!p.contains("stray"));
        let mut l = page(&[]);
        l.readme = Some(b"");
        let (p, _) = html(&opts, &l);
        assert!(!p.contains("<pre"));
    }

    #[test]
    fn include_settings() {
        assert_eq!(
            ListingOpts::include_setting("enable", "README.txt").as_deref(),
            Some("README.txt")
        );
        assert_eq!(ListingOpts::include_setting("disable", "README.txt"), None);
        assert_eq!(ListingOpts::include_setting("", "README.txt"), None);
        assert_eq!(
            ListingOpts::include_setting("/etc/motd", "x").as_deref(),
            Some("/etc/motd")
        );
    }

    #[test]
    fn auto_layout_off_is_just_the_table() {
        let opts = ListingOpts {
            auto_layout: false,
            set_footer: Some("FOOT".into()),
            ..ListingOpts::default()
        };
        let (p, _) = html(&opts, &page(&[file(b"a", 1)]));
        assert!(p.starts_with("<h2>Index of /pub/</h2>"), "{p}");
        assert!(p.ends_with("</table>\n</div>\n"));
        assert!(!p.contains("<script") && !p.contains("<html") && !p.contains("FOOT"));
    }

    #[test]
    fn encoding_css_js_and_footer() {
        let opts = ListingOpts {
            encoding: Some("iso-8859-1".into()),
            external_css: Some("/s.css?a=1&b=\"2\"".into()),
            external_js: Some("/sort.js".into()),
            set_footer: Some("<em>mine</em>".into()),
            ..ListingOpts::default()
        };
        let (p, ct) = html(&opts, &page(&[]));
        assert_eq!(ct, "text/html;charset=iso-8859-1");
        assert!(p.contains("<meta charset=\"iso-8859-1\">"));
        assert!(p.contains("href=\"/s.css?a=1&#x26;b=&#x22;2&#x22;\""));
        assert!(
            !p.contains("<style"),
            "external css replaces the built-in style"
        );
        assert!(p.contains("<script type=\"text/javascript\" src=\"/sort.js\"></script>"));
        assert!(
            !p.contains("function"),
            "external js replaces the built-in script"
        );
        assert!(p.contains("<div class=\"foot\"><em>mine</em></div>"));
        assert_eq!(
            opts.preload_links(),
            [
                "</s.css?a=1&b=\"2\">; rel=\"preload\"; as=\"style\"",
                "</sort.js>; rel=\"preload\"; as=\"script\""
            ]
        );
        // Defaults: no charset, built-in style and script, server.tag (escaped) as footer.
        let mut l = page(&[]);
        l.server_tag = "tag<1>";
        let (p, ct) = html(&ListingOpts::default(), &l);
        assert_eq!(ct, "text/html");
        assert!(!p.contains("<meta charset"));
        assert!(
            p.contains("<style type=\"text/css\">")
                && p.contains("<script type=\"text/javascript\">\n")
        );
        assert!(p.contains("<div class=\"foot\">tag&#x3C;1&#x3E;</div>"));
        assert!(ListingOpts::default().preload_links().is_empty());
        // An encoding that could split a header is not used anywhere.
        let bad = ListingOpts {
            encoding: Some("utf-8\r\nX-Evil: 1".into()),
            ..ListingOpts::default()
        };
        let (p, ct) = html(&bad, &page(&[]));
        assert_eq!(ct, "text/html");
        assert!(!p.contains("Evil"));
    }

    #[test]
    fn entries_are_capped() {
        let entries: Vec<Entry> = (0..MAX_ENTRIES + 5)
            .map(|i| file(format!("f{i:05}").as_bytes(), 1))
            .collect();
        let (p, _) = html(&ListingOpts::default(), &page(&entries));
        assert_eq!(hrefs(&p).len(), MAX_ENTRIES + 1);
        assert!(p.contains("Only the first 10000 entries"));
        let mut l = page(&entries[..3]);
        let (p, _) = html(&ListingOpts::default(), &l);
        assert!(!p.contains("Only the first"));
        l.truncated = true;
        let (p, _) = html(&ListingOpts::default(), &l);
        assert!(p.contains("Only the first"));
    }

    #[test]
    fn json_listing_is_valid() {
        let entries = [
            file(b"plain", 10),
            dir(b"d\"q\\b"),
            file(b"ctl\x01\x07\x0b\n\t", 1),
            file(b"bad\xff", 2),
            file(b"caf\xc3\xa9", 3),
            file(b".hidden", 4),
        ];
        let mut out = Vec::new();
        assert_eq!(
            render_json(&ListingOpts::default(), &page(&entries), &mut out),
            "application/json"
        );
        let s = String::from_utf8(out).expect("JSON output is UTF-8");
        json_check(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
        assert!(s.starts_with(
            "[{\"name\":\"plain\",\"type\":\"file\",\"size\":10,\"mtime\":1700000000}"
        ));
        assert!(s.contains("\"d\\\"q\\\\b\",\"type\":\"dir\""));
        assert!(s.contains("ctl\\u0001\\u0007\\u000B\\n\\t"));
        assert!(s.contains("bad\u{fffd}") && s.contains("caf\u{e9}"));
        assert!(!s.contains("hidden"));
        let mut out = Vec::new();
        render_json(&ListingOpts::default(), &page(&[]), &mut out);
        assert_eq!(out, b"[]");
        assert!(wants_json(b"json") && !wants_json(b"jsonx") && !wants_json(b""));
    }

    #[test]
    fn local_offset_is_sane() {
        // Whatever the machine's zone, offsets are within a day.
        for t in [0, 1_700_000_000, -1_000_000] {
            assert!(local_utc_offset(t).abs() <= 86_400);
        }
    }
}
