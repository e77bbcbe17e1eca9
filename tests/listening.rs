//! Where the listening sockets come from: bound afresh, never beside a socket another process
//! holds; or inherited the way systemd, and lighttpd's own test harness, pass them
//! (LISTEN_FDS on descriptor 3 onwards), with server.systemd-socket-activation deciding what
//! happens to the ones the config does not name.

mod common;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::*;

/// A port nothing listens on right now (bound on every address, then closed again).
fn free_port() -> u16 {
    let l = TcpListener::bind("0.0.0.0:0").expect("bind an ephemeral port");
    l.local_addr().expect("local_addr").port()
}

fn tag(r: &Response) -> String {
    r.header("Server").unwrap_or("").to_string()
}

/// lighttpd's test harness: one socket on fd 3, `server.systemd-socket-activation =
/// "enable"`, no server.bind. lightd serves the socket it was given and binds nothing else:
/// not the default `*:port`, which here names a port that must stay free.
#[test]
fn harness_style_activation_serves_the_inherited_socket_and_binds_nothing_else() {
    let inherited = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = inherited.local_addr().unwrap();
    let default_port = free_port();
    let b = builder().file("index.html", "hello").raw_config(&format!(
        "server.document-root = \"{{docroot}}\"\n\
         server.systemd-socket-activation = \"enable\"\n\
         server.port = {default_port}\n\
         server.tag = \"global\"\n"
    ));
    let mut server = b.spawn_activated(&[inherited.as_raw_fd()]);
    // The harness closes its own copy once the server runs.
    drop(inherited);
    server.wait_listening();
    assert_eq!(server.addrs(), &[addr], "{}", server.log_text());

    let mut c = Conn::connect(addr);
    let r = c.get("/index.html");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello");
    assert_eq!(tag(&r), "global");

    // The default address was not bound: the port is still free for anyone.
    TcpListener::bind(("0.0.0.0", default_port)).unwrap_or_else(|e| {
        panic!(
            "port {default_port} (server.port, with no server.bind) is taken: {e}\n{}",
            server.log_text()
        )
    });
}

/// Two inherited sockets: the one a `$SERVER["socket"]` block names gets that block's
/// settings; the one nothing names is kept (not closed) and served with the global settings.
#[test]
fn unnamed_inherited_sockets_are_served_with_the_global_settings() {
    let named = TcpListener::bind("127.0.0.1:0").unwrap();
    let unnamed = TcpListener::bind("127.0.0.1:0").unwrap();
    let (named_addr, unnamed_addr) = (named.local_addr().unwrap(), unnamed.local_addr().unwrap());
    let b = builder()
        .file("index.html", "hello")
        .listeners(2)
        .raw_config(&format!(
            "server.document-root = \"{{docroot}}\"\n\
             server.systemd-socket-activation = \"enable\"\n\
             server.tag = \"global\"\n\
             $SERVER[\"socket\"] == \"{named_addr}\" {{ server.tag = \"block\" }}\n"
        ));
    let mut server = b.spawn_activated(&[named.as_raw_fd(), unnamed.as_raw_fd()]);
    drop((named, unnamed));
    server.wait_listening();
    let mut got: Vec<SocketAddr> = server.addrs().to_vec();
    got.sort();
    let mut want = vec![named_addr, unnamed_addr];
    want.sort();
    assert_eq!(got, want, "{}", server.log_text());

    for (addr, want) in [(named_addr, "block"), (unnamed_addr, "global")] {
        let r = Conn::connect(addr).get("/index.html");
        assert_eq!(
            (r.status, tag(&r).as_str()),
            (200, want),
            "{addr}: {}",
            r.describe()
        );
    }
    assert!(
        server.log_text().contains(&format!(
            "serving inherited socket {unnamed_addr} with the global settings"
        )),
        "{}",
        server.log_text()
    );
}

/// Without the key, lightd keeps today's behaviour: an inherited socket the config does not
/// name is closed, and the configured address is bound.
#[test]
fn without_activation_unnamed_inherited_sockets_are_closed() {
    let inherited = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = inherited.local_addr().unwrap();
    // A fixed port: port 0 would match the inherited socket's address.
    let b = builder()
        .file("index.html", "hello")
        .config(&format!("server.port := {}", free_port()));
    let mut server = b.spawn_activated(&[inherited.as_raw_fd()]);
    drop(inherited);
    server.wait_listening();
    let bound = server.addr();
    assert_ne!(bound, addr);
    assert_eq!(Conn::connect(bound).get("/index.html").status, 200);
    assert!(
        server.log_text().contains(&format!(
            "closing inherited socket {addr}: no longer configured"
        )),
        "{}",
        server.log_text()
    );
    // Nobody holds the inherited socket any more.
    assert!(
        wait_refused(addr, IO_TIMEOUT),
        "{addr} still accepts connections\n{}",
        server.log_text()
    );
}

/// With the key but nothing inherited (started by hand), lightd binds the configured
/// address, default included, as lighttpd does.
#[test]
fn activation_without_inherited_sockets_binds_as_usual() {
    let server = builder()
        .file("index.html", "hello")
        .config("server.systemd-socket-activation = \"enable\"")
        .start();
    assert_eq!(server.get("/index.html").status, 200);
}

/// A socket bound the way another server binds (SO_REUSEPORT set, as lightd itself used to
/// do), for the "port already taken" tests. Returns the descriptor and its port.
fn reuseport_listener() -> (OwnedFd, u16) {
    // SAFETY: plain socket calls on a descriptor owned here; every pointer is to a local.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            let rc = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
        }
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            len,
        );
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        assert_eq!(libc::listen(fd.as_raw_fd(), 16), 0);
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut got as *mut libc::sockaddr_in).cast(),
            &mut glen,
        );
        (fd, u16::from_be(got.sin_port))
    }
}

/// Another process listens on the port with SO_REUSEPORT. lightd must fail with "address in
/// use", not bind a second socket beside it and let the kernel split the connections.
#[test]
fn a_port_held_with_so_reuseport_is_in_use() {
    let (_held, port) = reuseport_listener();
    let out = builder()
        .config(&format!("server.port := {port}"))
        .run(&["-D"]);
    assert!(
        !out.status.success(),
        "lightd started beside another listener: {}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && out.stderr.contains("in use"),
        "{}",
        out.describe()
    );
}

/// A second lightd on the same port, with no control socket to take the first one's sockets
/// over from (no pid file): it refuses to start, and the first keeps the port to itself.
#[test]
fn a_second_lightd_on_the_same_port_refuses_to_start() {
    let first = builder().file("index.html", "one").start();
    let port = first.port();
    let out = builder()
        .file("index.html", "two")
        .config(&format!("server.port := {port}"))
        .run(&["-D"]);
    assert!(
        !out.status.success(),
        "a second lightd started: {}",
        out.describe()
    );
    assert!(out.stderr.contains("in use"), "{}", out.describe());
    // Every connection reaches the first server.
    for _ in 0..20 {
        let r = Conn::connect(first.addr()).get("/index.html");
        assert_eq!(r.body, b"one", "{}", r.describe());
    }
}
