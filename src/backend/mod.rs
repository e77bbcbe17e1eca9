//! Backends: what owns a descriptor other than the client socket. CGI children and their
//! pipes, sockets to FastCGI, SCGI and HTTP servers, spooled request bodies, and the
//! environment handed to them.

#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
pub mod connect;
pub mod env;
#[cfg(feature = "fastcgi")]
pub mod fcgi;
pub mod job;
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
pub mod pool;
pub mod reap;
pub mod spawn;
pub mod spool;
#[cfg(any(feature = "fastcgi", feature = "scgi", feature = "proxy"))]
pub mod upstream;
