//! The configuration: lighttpd 1.4's language parsed, evaluated and type-checked into a [`Config`].
//!
//! Loading runs in two passes. `parser` reads the files (following `include` and
//! `include_shell`), evaluates every expression and records each block's assignments, warning
//! about keys lightd ignores. `validate` then gives implemented keys their types and builds the
//! plain-data [`Config`] the server shares read-only. Every error names file and line.
//!
//! At request time the server asks [`Config::matches`] which conditional branches apply and
//! [`Config::merged`] for the resulting settings (caching the latter per [`MatchSet`]).

#[cfg(feature = "accesslog")]
pub mod accesslog;
#[cfg(feature = "auth")]
pub mod auth;
mod check;
mod cond;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod dirlisting;
mod display;
pub mod expire;
#[cfg(feature = "extforward")]
pub mod extforward;
#[cfg(feature = "backend")]
pub mod gateway;
mod glob;
#[cfg(feature = "backend")]
mod gwparse;
mod keys;
mod lexer;
mod mime;
mod parser;
#[cfg(feature = "tls")]
pub mod ssl;
mod table;
pub mod types;
pub mod urlrules;
#[cfg(feature = "userdir")]
pub mod userdir;
mod validate;
mod value;
#[cfg(feature = "vhost")]
pub mod vhost;

#[cfg(test)]
mod tests;

pub use types::*;

use std::net::SocketAddr;
use std::path::Path;

/// Parse and type-check the config file (what `-t` checks).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let parsed = parser::parse_main(path)?;
    validate::build(parsed, path)
}

/// The `-tt` checks on top of [`load`]: document roots are directories, the user and group
/// exist, and log and pid files can be created in existing directories.
pub fn check_loadable(cfg: &Config) -> Result<(), ConfigError> {
    check::check(cfg)
}

/// The content type for a file name: the longest matching suffix in `mime` (which is sorted
/// longest first), then the same ignoring ASCII case, then the `""` fallback entry if any.
/// None means the caller should use application/octet-stream.
pub fn mime_lookup<'a>(mime: &'a [(String, String)], name: &str) -> Option<&'a str> {
    mime::lookup(mime, name)
}

fn taken(set: &MatchSet, id: usize) -> bool {
    set.0
        .get(id / 64)
        .is_some_and(|word| word & (1u64 << (id % 64)) != 0)
}

fn walk_matches(chains: &[CondChain], input: &dyn CondInput, set: &mut MatchSet) {
    for chain in chains {
        let mut hit = None;
        for b in &chain.branches {
            match &b.cond {
                // Undecided: this branch and the rest of its chain do not apply.
                Some(c) if !input.decided(&c.field) => break,
                Some(c) if !cond::eval(c, input) => {}
                _ => {
                    hit = Some(b);
                    break;
                }
            }
        }
        if let Some(b) = hit {
            set.set(b.id);
            walk_matches(&b.children, input, set);
        }
    }
}

fn walk_merge(chains: &[CondChain], set: &MatchSet, conf: &mut ReqConf) {
    for b in chains.iter().flat_map(|c| &c.branches) {
        if taken(set, b.id) {
            // Settings that keep their block's captures (%1 in url.redirect) read this.
            conf.branch = Some(b.id);
            for s in &b.settings {
                s.apply(conf);
            }
            walk_merge(&b.children, set, conf);
        }
    }
}

fn retarget_socket_conds(chains: &mut [CondChain], spec: &ListenSpec, actual: SocketAddr) {
    for b in chains.iter_mut().flat_map(|c| c.branches.iter_mut()) {
        if let Some(c) = b.cond.as_mut() {
            if c.socket == Some(spec.addr) && c.loc == spec.loc {
                c.socket = Some(actual);
            }
        }
        retarget_socket_conds(&mut b.children, spec, actual);
    }
}

impl Config {
    /// Which conditional branches this request takes: in each chain the first branch whose
    /// condition holds (or the plain `else`), then the same inside that branch.
    pub fn matches(&self, input: &dyn CondInput) -> MatchSet {
        let mut set = MatchSet::default();
        walk_matches(&self.conds, input, &mut set);
        set
    }

    /// Tell the configuration which address each listener actually got: pairs of an index
    /// into `listen` and the bound address. Only port-0 ("any free port") entries change: the
    /// `$SERVER["socket"]` block that opened such a listener is pointed at its real address, so
    /// it matches that listener alone. For this to work `CondInput::server_socket` must report
    /// the bound address.
    pub fn resolve_ephemeral_ports(&mut self, bound: &[(usize, SocketAddr)]) {
        for &(i, actual) in bound {
            let Some(spec) = self.listen.get(i) else {
                continue;
            };
            if spec.addr.port() == 0 {
                // The block that opened a listener has the same location as its ListenSpec.
                let spec = spec.clone();
                retarget_socket_conds(&mut self.conds, &spec, actual);
            }
        }
    }

    /// The captures of conditional branch `id`'s regex against this request (`%0`..`%9` in
    /// url.redirect and url.rewrite rules set in that block). Empty unless the branch's
    /// condition is a regex match (`=~`) that holds.
    pub fn captures(&self, id: usize, input: &dyn CondInput) -> Vec<Option<String>> {
        fn find(chains: &[CondChain], id: usize) -> Option<&CondBranch> {
            for b in chains.iter().flat_map(|c| &c.branches) {
                if b.id == id {
                    return Some(b);
                }
                if let Some(found) = find(&b.children, id) {
                    return Some(found);
                }
            }
            None
        }
        let Some(c) = find(&self.conds, id).and_then(|b| b.cond.as_ref()) else {
            return Vec::new();
        };
        let (CondOp::Match, Some(re)) = (c.op, c.regex.as_ref()) else {
            return Vec::new();
        };
        let value = input.field(&c.field).unwrap_or("");
        re.captures(value)
            .map(|caps| {
                caps.iter()
                    .map(|m| m.map(|m| m.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The base settings with the settings of every branch in `set` applied in config order,
    /// so a later block overrides an earlier one and a nested block its parent.
    pub fn merged(&self, set: &MatchSet) -> ReqConf {
        let mut conf = self.base.clone();
        if !set.is_empty() {
            walk_merge(&self.conds, set, &mut conf);
        }
        conf
    }
}

impl std::fmt::Display for Config {
    /// `-p`: the effective configuration, in config syntax, defaults included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        display::write(self, f)
    }
}
