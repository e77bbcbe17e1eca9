//! mod_deflate against the real binary: what is compressed and what is not (lighttpd's rules),
//! the codings, Vary and ETag, conditional and ranged requests, the cache directory,
//! precompressed sidecar files, large files streamed a slice at a time (a 100 MB one, with
//! lightd's memory watched), and backend responses compressed as they arrive.
//!
//! Every compressed body is checked by decompressing it with tools independent of lightd:
//! GNU gzip for gzip, and perl's Compress::Zlib for the zlib format of "deflate".

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const MIME: &str = "mimetype.assign = ( \".html\" => \"text/html\", \".txt\" => \"text/plain\", \
                    \".js\" => \"text/javascript\", \".png\" => \"image/png\", \
                    \".sh\" => \"text/plain\" )\n";

const DEFLATE: &str = "server.modules = ( \"mod_deflate\", \"mod_cgi\" )\n\
                       deflate.mimetypes = ( \"text/\" )\n\
                       deflate.allowed-encodings = ( \"gzip\", \"deflate\", \"br\" )\n";

/// Compressible text of `len` bytes: numbered lines of words, not a short repeat.
fn text(len: usize) -> Vec<u8> {
    let words = [
        "lighttpd", "server", "request", "response", "header", "deflate", "gzip", "chunk",
        "socket", "reload", "module", "config", "static", "file", "stream", "buffer",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut x: u32 = 12345;
    let mut line = 0u64;
    while out.len() < len {
        line += 1;
        let _ = write!(out, "{line}:");
        for _ in 0..8 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = write!(out, " {}", words[(x >> 16) as usize % words.len()]);
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// Run `cmd` with `input` on its stdin; its stdout, or a panic with its stderr.
fn filter(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    // Fed from a thread: a large output would otherwise block the child while we write.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    filter(Command::new("gzip").arg("-dc"), data)
}

/// The zlib format (RFC 1950), as "deflate" is sent.
fn zlib_inflate(data: &[u8]) -> Vec<u8> {
    filter(
        Command::new("perl").args([
            "-MCompress::Zlib",
            "-e",
            "binmode STDIN; binmode STDOUT; local $/; my $d = uncompress(<STDIN>); \
             defined $d or die 'not zlib'; print $d",
        ]),
        data,
    )
}

fn site() -> Builder {
    builder().config(MIME).config(DEFLATE)
}

/// The response is encoded with `coding`.
fn expect_coding(r: &Response, coding: &str) {
    assert_eq!(
        r.header("Content-Encoding"),
        Some(coding),
        "{}",
        r.describe()
    );
}

fn gz_req(path: &str, extra: &[&str]) -> Vec<u8> {
    let mut h = vec!["Accept-Encoding: gzip"];
    h.extend_from_slice(extra);
    req("GET", path, &h)
}

#[test]
fn a_static_file_is_gzipped_with_a_length_and_decompresses_exactly() {
    let body = text(20_000);
    let s = site().file("page.html", &body).start();
    let r = s.request(&gz_req("/page.html", &[]));
    assert_eq!(r.status, 200, "{}", r.describe());
    expect_coding(&r, "gzip");
    assert_eq!(
        r.header("Vary"),
        Some("Accept-Encoding"),
        "{}",
        r.describe()
    );
    let len: usize = r
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length: {}", r.describe()));
    assert_eq!(len, r.body.len());
    assert!(len < body.len() / 2, "{len} bytes for {}", body.len());
    let etag = r.header("ETag").expect("ETag");
    assert!(etag.ends_with("-gzip\""), "{etag}");
    assert!(r.body.starts_with(&[0x1f, 0x8b]), "not gzip");
    assert!(
        gunzip(&r.body) == body,
        "gzip body does not decompress to the file"
    );

    // The same file to a client that asks for nothing is the file itself, with its own tag.
    let plain = s.get("/page.html");
    assert_eq!(plain.status, 200);
    assert!(plain.body == body);
    assert_eq!(plain.header("Content-Encoding"), None);
    let plain_tag = plain.header("ETag").expect("ETag");
    assert_eq!(
        format!("{}-gzip\"", &plain_tag[..plain_tag.len() - 1]),
        etag
    );
}

#[test]
fn deflate_is_the_zlib_format_and_the_first_allowed_coding_wins() {
    let body = text(9_000);
    let s = site().file("a.txt", &body).start();
    let r = s.request(&req("GET", "/a.txt", &["Accept-Encoding: deflate"]));
    expect_coding(&r, "deflate");
    assert!(zlib_inflate(&r.body) == body);
    // The client's order does not matter: the config's does (gzip is listed first).
    let r = s.request(&req(
        "GET",
        "/a.txt",
        &["Accept-Encoding: bzip2, deflate, gzip"],
    ));
    expect_coding(&r, "gzip");
    assert!(gunzip(&r.body) == body);
    // x-gzip is answered as x-gzip.
    let r = s.request(&req("GET", "/a.txt", &["Accept-Encoding: x-gzip"]));
    expect_coding(&r, "x-gzip");
    assert!(gunzip(&r.body) == body);
}

#[test]
fn what_is_not_compressed() {
    let s = site()
        .file("small.txt", "short enough to send as it is")
        .file("img.png", text(5000))
        .file("a.txt", text(5000))
        .config("dir-listing.activate = \"enable\"\nserver.modules += ( \"mod_dirlisting\" )");
    for i in 0..1000 {
        let name = format!("many/entry-with-a-long-name-{i:04}.png");
        std::fs::create_dir_all(s.docroot().join("many")).unwrap();
        std::fs::write(s.docroot().join(name), b"x").unwrap();
    }
    let s = s.start();
    // Under deflate.min-compress-size (256 bytes by default).
    let r = s.request(&gz_req("/small.txt", &[]));
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.describe());
    // A type deflate.mimetypes does not list: no Vary either, as in lighttpd.
    let r = s.request(&gz_req("/img.png", &[]));
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.describe());
    assert_eq!(r.header("Vary"), None, "{}", r.describe());
    // A coding not allowed or unknown.
    let r = s.request(&req(
        "GET",
        "/a.txt",
        &["Accept-Encoding: compress, identity"],
    ));
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.describe());
    assert!(r.body == text(5000));
    // HEAD is answered as it is (lighttpd's mod_deflate leaves HEAD alone).
    let mut c = s.connect();
    c.send(&req("HEAD", "/a.txt", &["Accept-Encoding: gzip"]));
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.describe());
    assert_eq!(r.header("Content-Length"), Some("5000"), "{}", r.describe());
    // A body built in memory larger than what is compressed at once (a long directory
    // listing) is sent as it is, never labelled with a coding it does not have.
    let r = s.request(&gz_req("/many/", &[]));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.body.len() > 64 * 1024,
        "listing of {} bytes",
        r.body.len()
    );
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.head);
    assert!(String::from_utf8_lossy(&r.body).contains("entry-with-a-long-name-0999"));
    // Error pages are too small to bother.
    let r = s.request(&gz_req("/missing.txt", &[]));
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Content-Encoding"), None, "{}", r.describe());
}

#[test]
fn conditional_and_ranged_requests() {
    let body = text(8000);
    let s = site().file("a.txt", &body).start();
    let first = s.request(&gz_req("/a.txt", &[]));
    let etag = first.header("ETag").expect("ETag").to_string();
    // The compressed entity's own tag is not modified.
    let inm = format!("If-None-Match: {etag}");
    let r = s.request(&gz_req("/a.txt", &[&inm]));
    assert_eq!(r.status, 304, "{}", r.describe());
    assert_eq!(r.header("ETag"), Some(etag.as_str()), "{}", r.describe());
    assert_eq!(
        r.header("Vary"),
        Some("Accept-Encoding"),
        "{}",
        r.describe()
    );
    assert!(r.body.is_empty());
    // Another tag: the full compressed response.
    let r = s.request(&gz_req("/a.txt", &["If-None-Match: \"other\""]));
    assert_eq!(r.status, 200);
    assert!(gunzip(&r.body) == body);
    // A range of a response that is compressed is ignored: the whole compressed entity
    // (lighttpd applies Range only to unencoded content).
    let r = s.request(&gz_req("/a.txt", &["Range: bytes=0-99"]));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert!(gunzip(&r.body) == body);
    // Without Accept-Encoding the range is served.
    let r = s.request(&req("GET", "/a.txt", &["Range: bytes=0-99"]));
    assert_eq!(r.status, 206, "{}", r.describe());
    assert!(r.body == body[..100]);
}

#[test]
fn the_cache_directory_keeps_the_compressed_file_and_serves_it() {
    let body = text(30_000);
    let b = site().file("doc/page.html", &body);
    let cache = b.dir().join("cache");
    let s = b
        .config(&format!("deflate.cache-dir = \"{}/\"", cache.display()))
        .start();
    let r = s.request(&gz_req("/doc/page.html", &[]));
    expect_coding(&r, "gzip");
    assert!(gunzip(&r.body) == body);
    // lighttpd's layout: the file's path under the cache directory, then "-" and the tag.
    let tag = r.header("ETag").expect("ETag");
    let inner = tag.trim_matches('"').replace('/', "~");
    let file = s.docroot().join("doc/page.html");
    let cached =
        Path::new(&format!("{}{}-{}", cache.display(), file.display(), inner)).to_path_buf();
    let on_disk = std::fs::read(&cached)
        .unwrap_or_else(|e| panic!("no cache file {}: {e}", cached.display()));
    assert!(on_disk == r.body, "the cache file is not the body sent");
    // No temporary file is left beside it.
    let dir = cached.parent().expect("parent");
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // The next response comes from the cache: replace its content to prove it.
    let other = text(1000);
    let mut z = Command::new("gzip");
    std::fs::write(&cached, filter(z.arg("-c"), &other)).expect("rewrite cache file");
    let r = s.request(&gz_req("/doc/page.html", &[]));
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert!(
        gunzip(&r.body) == other,
        "the second response did not come from the cache"
    );
}

#[test]
fn precompressed_sidecar_files_when_fresh() {
    let body = text(6000);
    let pre = filter(Command::new("gzip").args(["-9", "-c", "-n"]), &body);
    let b = site()
        .file("app.js", &body)
        .file("app.js.gz", &pre)
        .file("app.js.br", b"not really brotli, but the file to send")
        .file("old.js", &body)
        .file("old.js.gz", b"stale");
    backdate(&b.docroot().join("old.js.gz"), 3600);
    let s = b.start();
    let r = s.request(&gz_req("/app.js", &[]));
    expect_coding(&r, "gzip");
    assert!(
        r.body == pre,
        "the sidecar's bytes were not sent as they are"
    );
    assert_eq!(
        r.header("Content-Length"),
        Some(pre.len().to_string().as_str())
    );
    // br only from a sidecar: lightd does not compress with brotli itself.
    let r = s.request(&req("GET", "/app.js", &["Accept-Encoding: gzip, br"]));
    expect_coding(&r, "br");
    assert!(r.body == b"not really brotli, but the file to send");
    assert!(r.header("ETag").is_some_and(|t| t.ends_with("-br\"")));
    // An older sidecar is stale: the file is compressed instead.
    let r = s.request(&gz_req("/old.js", &[]));
    expect_coding(&r, "gzip");
    assert!(gunzip(&r.body) == body);
}

/// A file too large to compress at once goes out a slice at a time: chunked to HTTP/1.1,
/// to the close for HTTP/1.0.
#[test]
fn a_large_file_is_streamed_compressed() {
    let body = text(3 << 20);
    let s = site().file("big.txt", &body).start();
    let r = s.request(&gz_req("/big.txt", &[]));
    assert_eq!(r.status, 200);
    assert!(r.chunked, "{}", r.describe());
    assert_eq!(r.header("Content-Length"), None);
    assert!(gunzip(&r.body) == body);
    let mut c = s.connect();
    c.send(b"GET /big.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = c.read_response();
    assert!(!r.chunked && r.header("Content-Length").is_none());
    assert!(gunzip(&r.body) == body);
}

#[test]
fn a_100_mb_file_is_streamed_not_held() {
    let dir = TempDir::new("deflate-big");
    let big = dir.path().join("big.txt");
    // 100 MiB of text, written in pieces.
    let piece = text(1 << 20);
    {
        let mut f = std::fs::File::create(&big).expect("create");
        for _ in 0..100 {
            f.write_all(&piece).expect("write");
        }
    }
    let s = site()
        .config(&format!(
            "alias.url = ( \"/big/\" => \"{}/\" )\nserver.modules += ( \"mod_alias\" )",
            dir.path().display()
        ))
        .start();
    let mut c = s.connect();
    c.set_read_timeout(Duration::from_secs(60));
    c.send(&gz_req("/big/big.txt", &["Connection: close"]));
    // Read the compressed body while watching lightd's memory.
    let pid = s.pid();
    let mut peak = 0;
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "download took too long"
        );
        match c.read_some(1 << 20) {
            Ok(d) if d.is_empty() => break,
            Ok(d) => got.extend_from_slice(&d),
            Err(e) => panic!("read: {e} after {} bytes", got.len()),
        }
        peak = peak.max(rss_kib(pid));
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let body = dechunk(&got[head_end..]);
    // Decompressed by gzip and compared with the file by cmp, without holding 100 MB here.
    let gz = dir.path().join("body.gz");
    std::fs::write(&gz, &body).expect("write body");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc < '{}' | cmp - '{}'",
            gz.display(),
            big.display()
        ))
        .status()
        .expect("sh");
    assert!(st.success(), "the decompressed body differs from the file");
    assert!(
        peak < 40 * 1024,
        "RSS peaked at {peak} KiB compressing 100 MiB"
    );
}

/// Decode a chunked body (the test's own decoder; trailers ignored).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&data[..eol]).expect("utf8");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex size");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        assert_eq!(&data[size..size + 2], b"\r\n");
        data = &data[size + 2..];
    }
}

/// Prints `n` KiB of numbered text lines.
const TEXT_SH: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
i=0; n=${QUERY_STRING:-4}\n\
while [ $i -lt $((n * 16)) ]; do\n\
  printf 'line %059d of the script output\\n' $i\n\
  i=$((i + 1))\n\
done\n";

fn script_text(kib: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..kib * 16 {
        let _ = writeln!(out, "line {i:059} of the script output");
    }
    out
}

#[test]
fn a_cgi_response_is_compressed_whole_or_streamed() {
    let s = site()
        .file("t.sh", TEXT_SH)
        .file("text.txt", script_text(8))
        .file(
            "len.sh",
            "printf 'Content-Type: text/plain\\r\\nContent-Length: 8192\\r\\n\\r\\n'\n\
             cat text.txt\n",
        )
        .config("cgi.assign = ( \".sh\" => \"/bin/sh\" )")
        .start();
    // Short: collected (server.stream-response-body = 0), compressed whole, with a length.
    let r = s.request(&gz_req("/t.sh?4", &[]));
    assert_eq!(r.status, 200, "{}", r.describe());
    expect_coding(&r, "gzip");
    assert!(r.header("Content-Length").is_some(), "{}", r.describe());
    assert!(gunzip(&r.body) == script_text(4));
    // Longer than what is collected: streamed, chunked.
    let r = s.request(&gz_req("/t.sh?2048", &[]));
    expect_coding(&r, "gzip");
    assert!(r.chunked, "{}", r.describe());
    assert!(gunzip(&r.body) == script_text(2048));
    // A script that gives its length: the length is dropped, the body compressed.
    let r = s.request(&gz_req("/len.sh", &[]));
    expect_coding(&r, "gzip");
    assert!(gunzip(&r.body) == script_text(8));
    // deflate too, and HTTP/1.0 (to the close).
    let mut c = s.connect();
    c.send(b"GET /t.sh?300 HTTP/1.0\r\nAccept-Encoding: deflate\r\n\r\n");
    let r = c.read_response();
    expect_coding(&r, "deflate");
    assert!(zlib_inflate(&r.body) == script_text(300));
}

#[test]
fn a_streamed_cgi_response_is_flushed_as_it_comes() {
    // server.stream-response-body = 1: each piece is flushed, so the client can decode the
    // first line while the script still runs.
    let s = site()
        .file(
            "slow.sh",
            "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
             i=0; while [ $i -lt 40 ]; do echo \"first part of the output, line $i\"; \
             i=$((i+1)); done\nread x\necho end\n",
        )
        .config(
            "cgi.assign = ( \".sh\" => \"/bin/sh\" )\nserver.stream-response-body = 1\n\
             server.stream-request-body = 1",
        )
        .start();
    let mut c = s.connect();
    // The script waits on stdin for a body that never comes until we close: its first part
    // must arrive, compressed and decodable, before the end.
    c.send(
        b"POST /slow.sh HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let decoded_first = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no compressed output in time"
        );
        let d = c.read_some(65536).expect("read");
        assert!(!d.is_empty(), "closed early");
        got.extend_from_slice(&d);
        let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..h]).to_string();
        assert!(head.contains("Content-Encoding: gzip"), "{head}");
        // What arrived so far, de-chunked as far as complete chunks go, through gzip which
        // reports the truncated stream but prints what it could decode.
        let partial = dechunk_partial(&got[h + 4..]);
        let out = Command::new("sh")
            .arg("-c")
            .arg("gzip -dc 2>/dev/null; true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                ch.stdin.take().expect("stdin").write_all(&partial)?;
                ch.wait_with_output()
            })
            .expect("gzip");
        if String::from_utf8_lossy(&out.stdout).contains("line 39") {
            break true;
        }
    };
    assert!(decoded_first);
    c.send(b"0\r\n\r\n");
}

/// The complete chunks at the start of a chunked body.
fn dechunk_partial(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(&String::from_utf8_lossy(&data[..eol]), 16) else {
            break;
        };
        if size == 0 || data.len() < eol + 2 + size + 2 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}
