//! TLS on the client socket (mod_openssl's role), with rustls: the handshake and the records
//! run inside the one loop, on the non-blocking socket, and never block it.
//!
//! `session` is the transport a connection reads and writes through; `certs` reads and checks
//! certificates and keys at start (and -tt), and builds rustls's server configs from them.

pub mod certs;
pub mod provider;
