//! lighttpd's request modules: each file is one module's request-time behaviour, called by
//! the pipeline in its phase. A module's keys are rows in `config/table.rs`, and its checked
//! settings live in `ReqConf`.

#[cfg(feature = "access")]
pub mod access;
#[cfg(feature = "accesslog")]
pub mod accesslog;
#[cfg(feature = "alias")]
pub mod alias;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod errors;
#[cfg(feature = "expire")]
pub mod expire;
#[cfg(feature = "extforward")]
pub mod extforward;
#[cfg(feature = "redirect")]
pub mod redirect;
#[cfg(feature = "rewrite")]
pub mod rewrite;
#[cfg(feature = "setenv")]
pub mod setenv;
#[cfg(feature = "userdir")]
pub mod userdir;
#[cfg(feature = "vhost")]
pub mod vhost;
