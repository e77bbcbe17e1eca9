//! Proof that the steady-state static path does not allocate: the server runs in this process
//! on a thread of its own, under a global allocator that counts the allocations made by that
//! thread, while a client on another thread sends keep-alive requests over loopback.
//!
//! This file holds a single test on purpose: the server handles SIGTERM process-wide to stop,
//! and nothing else may run in this test binary.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Allocations (and reallocations) made by threads that asked to be counted.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // const-initialised: reading it never allocates, so the allocator may use it.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

// SAFETY: defers to the system allocator; the counting has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Send `n` requests for `path` on one keep-alive connection, reading each whole response
/// (its Content-Length is known to the caller as `body_len`).
fn requests(c: &mut TcpStream, path: &str, method: &str, n: usize, body_len: usize) {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = vec![0u8; 256 * 1024];
    for i in 0..n {
        c.write_all(req.as_bytes()).unwrap();
        // Read the head, then the body it announces.
        let mut got = 0;
        let head_end = loop {
            let k = c.read(&mut buf[got..]).unwrap();
            assert!(k > 0, "connection closed at request {i}");
            got += k;
            if let Some(p) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 200 "), "request {i}: {head}");
        let want = head_end + if method == "HEAD" { 0 } else { body_len };
        while got < want {
            let k = c.read(&mut buf[got..want]).unwrap();
            assert!(k > 0, "body cut at request {i}");
            got += k;
        }
        assert_eq!(got, want, "request {i}: more bytes than announced");
    }
}

#[test]
fn steady_state_static_requests_do_not_allocate() {
    let dir = std::env::temp_dir().join(format!("lightd-alloc-{}", std::process::id()));
    let docroot = dir.join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(docroot.join("1k.txt"), vec![b'a'; 1024]).unwrap();
    // Over the small-file limit: sent with sendfile, not cached.
    std::fs::write(docroot.join("64k.bin"), vec![b'b'; 64 * 1024]).unwrap();
    std::fs::write(docroot.join("index.html"), b"<p>index</p>\n").unwrap();
    // Written a minute ago, as far as the small-file cache can tell: it does not cache a file
    // written in the last two seconds, and the warm-up must fill it.
    for name in ["1k.txt", "64k.bin", "index.html"] {
        common::backdate(&docroot.join(name), 60);
    }
    let conf = dir.join("lightd.conf");
    std::fs::write(
        &conf,
        format!(
            "server.bind = \"127.0.0.1\"\nserver.port = 0\nserver.document-root = \"{}\"\n\
             server.max-keep-alive-requests = 60000\n{}",
            docroot.display(),
            // Logging each request allocates nothing either (lighttpd's default format, plus
            // header, time and response fields).
            if cfg!(feature = "accesslog") {
                format!(
                    "accesslog.filename = \"{}/access.log\"\n\
                     $HTTP[\"url\"] =^ \"/1k\" {{ accesslog.format = \"%h %V %u %t \\\"%r\\\" \
                     %>s %b %{{Content-Type}}o %D %{{msec}}t %U %q %X %k %I %O\" }}\n",
                    dir.display()
                )
            } else {
                String::new()
            }
        ),
    )
    .unwrap();

    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let server = std::thread::spawn(move || {
        let cfg = lightd::config::load(&conf).expect("config");
        let listener = lightd::listener::Listener::bind(cfg.listen[0].addr).expect("bind");
        let addr = listener.local;
        let reexec = lightd::server::Reexec {
            exe: std::env::current_exe().unwrap(),
            args: Vec::new(),
        };
        let mut s = lightd::server::Server::new(cfg, vec![listener], None, reexec).unwrap();
        tx.send(addr).unwrap();
        COUNTED.with(|c| c.set(true));
        let exit = s.run();
        COUNTED.with(|c| c.set(false));
        exit.map(|_| ())
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server start");

    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cases: [(&str, &str, usize); 4] = [
        ("/1k.txt", "GET", 1024),
        ("/64k.bin", "GET", 64 * 1024),
        ("/1k.txt", "HEAD", 1024),
        ("/", "GET", b"<p>index</p>\n".len()),
    ];
    // Warm up: buffers, the pool, the file cache, the slab.
    for (path, method, len) in cases {
        requests(&mut c, path, method, 200, len);
    }
    let mut report = Vec::new();
    for (path, method, len) in cases {
        let before = ALLOCS.load(Ordering::Relaxed);
        requests(&mut c, path, method, 1000, len);
        let during = ALLOCS.load(Ordering::Relaxed) - before;
        report.push(format!(
            "{method} {path}: {during} allocations in 1000 requests"
        ));
    }
    drop(c);

    // Stop the server (SIGTERM is handled in the loop, process-wide) and collect it.
    // SAFETY: signalling our own process.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    server.join().unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    eprintln!("{}", report.join("\n"));
    assert!(
        report.iter().all(|l| l.contains(": 0 allocations")),
        "the steady-state path allocated:\n{}",
        report.join("\n")
    );
}
