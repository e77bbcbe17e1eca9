//! The configuration: lighttpd 1.4's language parsed, evaluated and type-checked into a [`Config`].
//!
//! CONTRACT STUB: the config helper replaces this file with the real implementation.

pub mod types;

pub use types::*;

use std::path::Path;

/// Parse and type-check the config file (what `-t` checks).
pub fn load(_path: &Path) -> Result<Config, ConfigError> {
    unimplemented!()
}

/// The `-tt` checks on top of [`load`]: document roots exist, addresses are usable.
pub fn check_loadable(_cfg: &Config) -> Result<(), ConfigError> {
    unimplemented!()
}

/// The content type for a file name: the longest matching suffix in `mime`.
pub fn mime_lookup<'a>(_mime: &'a [(String, String)], _name: &str) -> Option<&'a str> {
    unimplemented!()
}

impl Config {
    /// Which conditional branches this request takes.
    pub fn matches(&self, _input: &dyn CondInput) -> MatchSet {
        unimplemented!()
    }

    /// The base settings with the settings of every branch in `set` applied in config order.
    pub fn merged(&self, _set: &MatchSet) -> ReqConf {
        unimplemented!()
    }
}

impl std::fmt::Display for Config {
    /// `-p`: the parsed configuration, in config syntax.
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        unimplemented!()
    }
}
