//! mod_dirlisting's settings (`dir-listing.*`), built and checked at config load; the
//! listing page itself is rendered by `handlers::dirlist_page`.

use std::borrow::Cow;

use regex_lite::Regex;

/// The `dir-listing.*` settings for one request. `Default` is lighttpd's defaults.
#[derive(Debug, Clone)]
pub struct ListingOpts {
    /// dir-listing.hide-dotfiles: leave out names starting with '.' ("." and ".." are never
    /// listed; the parent link is its own row).
    pub hide_dotfiles: bool,
    /// dir-listing.exclude: names matching any of these are left out (and, when any are
    /// set, names that are not UTF-8).
    pub exclude: Vec<Regex>,
    /// dir-listing.encoding: the charset named in the meta tag and the Content-Type.
    pub encoding: Option<String>,
    /// dir-listing.external-css: a stylesheet URL used instead of the built-in style.
    pub external_css: Option<String>,
    /// dir-listing.external-js: a script URL used instead of the built-in sorting script.
    pub external_js: Option<String>,
    /// dir-listing.show-readme: the file shown after the listing ("enable" means
    /// README.txt; see [`ListingOpts::include_setting`]). A relative name is looked up in the
    /// listed directory, an absolute one as it is.
    pub show_readme: Option<String>,
    /// dir-listing.hide-readme-file: do not list the readme file itself.
    pub hide_readme_file: bool,
    /// dir-listing.encode-readme: show the readme as escaped text in `<pre>`, rather than
    /// as HTML.
    pub encode_readme: bool,
    /// dir-listing.show-header: the file shown before the listing ("enable": HEADER.txt).
    pub show_header: Option<String>,
    /// dir-listing.hide-header-file
    pub hide_header_file: bool,
    /// dir-listing.encode-header
    pub encode_header: bool,
    /// dir-listing.set-footer: HTML for the footer line; None shows server.tag instead.
    pub set_footer: Option<String>,
    /// dir-listing.auto-layout: wrap the table in a full page (head, style, footer, script).
    /// Off, the page is the header file, the table and the readme file, nothing else.
    pub auto_layout: bool,
    /// dir-listing.sort: directories first, then files, each by name in byte order. Off,
    /// entries stay in the order given (readdir order), directories and files mixed.
    pub sort: bool,
}

impl Default for ListingOpts {
    fn default() -> ListingOpts {
        ListingOpts {
            hide_dotfiles: true,
            exclude: Vec::new(),
            encoding: None,
            external_css: None,
            external_js: None,
            show_readme: None,
            hide_readme_file: false,
            encode_readme: true,
            show_header: None,
            hide_header_file: false,
            encode_header: true,
            set_footer: None,
            auto_layout: true,
            sort: true,
        }
    }
}

impl ListingOpts {
    /// The value for `show_readme`/`show_header` from the config string, as lighttpd reads
    /// it: "enable" is `default_name` (README.txt / HEADER.txt), "disable" or blank is none,
    /// anything else is a file name or path.
    pub fn include_setting(value: &str, default_name: &str) -> Option<String> {
        match value.trim() {
            "" | "disable" => None,
            "enable" => Some(default_name.to_string()),
            _ => Some(value.to_string()),
        }
    }

    /// Compile dir-listing.exclude. The patterns are regex-lite syntax (Perl-like, as
    /// lighttpd's PCRE for the usual cases); the error names the pattern that failed.
    pub fn compile_excludes<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<Regex>, String> {
        patterns
            .iter()
            .map(|p| {
                Regex::new(p.as_ref())
                    .map_err(|e| format!("dir-listing.exclude: bad regex {:?}: {}", p.as_ref(), e))
            })
            .collect()
    }

    /// Whether an entry with this name is listed. Call it before stat-ing the entry.
    pub fn shows(&self, name: &[u8]) -> bool {
        if name.is_empty() || name == b"." || name == b".." {
            return false;
        }
        if self.hide_dotfiles && name.first() == Some(&b'.') {
            return false;
        }
        let is = |file: &Option<String>| file.as_deref().is_some_and(|f| f.as_bytes() == name);
        if self.hide_readme_file && is(&self.show_readme) {
            return false;
        }
        if self.hide_header_file && is(&self.show_header) {
            return false;
        }
        if self.exclude.is_empty() {
            return true;
        }
        // lighttpd compiles the patterns for UTF-8 and treats a failed match as a match, so
        // with any exclude set a name that is not UTF-8 is hidden: a pattern meant to hide
        // it cannot be dodged with a stray byte.
        match std::str::from_utf8(name) {
            Ok(text) => !self.exclude.iter().any(|re| re.is_match(text)),
            Err(_) => false,
        }
    }

    /// dir-listing.encoding when it is usable in a header and an attribute (a token).
    pub fn charset(&self) -> Option<&str> {
        self.encoding.as_deref().filter(|e| {
            !e.is_empty() && e.len() <= 64 && e.bytes().all(crate::http::request::is_tchar)
        })
    }

    /// The Content-Type of the HTML listing: `text/html`, with `;charset=` when
    /// dir-listing.encoding is set (lighttpd's spelling, no space).
    pub fn content_type(&self) -> Cow<'static, str> {
        match self.charset() {
            Some(cs) => Cow::Owned(format!("text/html;charset={}", cs)),
            None => Cow::Borrowed("text/html"),
        }
    }

    /// Values for `Link` response headers that let the client preload the external
    /// stylesheet and script (lighttpd sends them with auto-layout). Values that could not
    /// be a header or a `<URI>` are left out.
    pub fn preload_links(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.auto_layout {
            return v;
        }
        let ok = |u: &str| !u.is_empty() && u.bytes().all(|b| b > 0x20 && b < 0x7f && b != b'>');
        if let Some(css) = self.external_css.as_deref().filter(|u| ok(u)) {
            v.push(format!("<{}>; rel=\"preload\"; as=\"style\"", css));
        }
        if let Some(js) = self.external_js.as_deref().filter(|u| ok(u)) {
            v.push(format!("<{}>; rel=\"preload\"; as=\"script\"", js));
        }
        v
    }
}
