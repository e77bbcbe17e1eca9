//! lightd: a small, fast HTTP/1.1 server in the spirit of lighttpd.
pub mod config;
pub mod http;
