//! `userdir.*` for one condition block (lighttpd's mod_userdir), as the config builds it; the
//! mapping of "/~user/..." paths is in `modules/userdir.rs`.

/// `userdir.*` for one condition block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userdir {
    /// userdir.path, joined to the home (or basepath) directory. None (unset) disables the
    /// module, as in lighttpd; "" serves the home directory itself.
    pub path: Option<String>,
    /// userdir.exclude-user: names that may not use the feature.
    pub exclude_user: Vec<String>,
    /// userdir.include-user: None when unset (everyone may); when set, only these names,
    /// so an explicitly empty list lets nobody in (lighttpd's behaviour).
    pub include_user: Option<Vec<String>>,
    /// userdir.basepath: when set, homes are basepath/[letter/]user and the passwd database
    /// is not consulted. An empty string counts as unset.
    pub basepath: Option<String>,
    /// userdir.letterhomes: with basepath, insert the user name's first letter as a level.
    pub letterhomes: bool,
    /// userdir.active (default enabled).
    pub active: bool,
}

impl Default for Userdir {
    fn default() -> Self {
        Userdir {
            path: None,
            exclude_user: Vec::new(),
            include_user: None,
            basepath: None,
            letterhomes: false,
            active: true,
        }
    }
}
