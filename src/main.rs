//! The `lightd` command line (lighttpd's flags). PLACEHOLDER until the server lands.
fn main() {}
