#!/bin/sh
# Writes lightd-crates.inc, the crates.io dependencies of the Yocto recipe, from Cargo.lock:
#
#     packaging/yocto/gen-crates-inc.sh > packaging/yocto/lightd-crates.inc
#
# usage: gen-crates-inc.sh [CARGO_LOCK]   (default: the repository's Cargo.lock)
#
# bitbake fetches exactly the crates listed there and checks each against its sha256sum; cargo
# then builds --frozen from those alone, and wants every package Cargo.lock names, the
# Windows-only ones included. So the list must follow Cargo.lock exactly: tests/packaging.rs
# fails when it does not. The list has the lines, in the order, that poky's
# cargo-update-recipe-crates class (`bitbake -c update_crates lightd`) writes; that needs a
# whole build tree, this only sh and awk.
#
# A dependency from git or from another registry cannot be a crate:// URL: that is an error here,
# not a silently shorter list.
set -eu

lock=${1:-$(dirname "$0")/../../Cargo.lock}
if [ ! -r "$lock" ]; then
    printf 'gen-crates-inc.sh: cannot read %s\n' "$lock" >&2
    exit 1
fi

# Cargo.lock is TOML, but cargo writes it in a fixed shape: a [[package]] header, then one
# `key = "value"` per line (dependencies span several lines and are skipped).
awk -v lockname="$lock" '
    # Not > "/dev/stderr": awk would open that path anew and truncate a log file that
    # stderr is redirected to.
    function err(msg) {
        print "gen-crates-inc.sh: " msg | "cat 1>&2"
        close("cat 1>&2")
    }
    # An error names the line where the entry of that package starts.
    function fail(msg) {
        err(lockname ":" pkgline ": " msg)
        failed = 1
        exit 1
    }
    function value(line) {
        sub(/^[a-z]+ = "/, "", line)
        sub(/"$/, "", line)
        return line
    }
    # Called at each [[package]] header and at the end: the package read so far, if any.
    function flush() {
        if (name == "") return
        if (source == "") {
            # The workspace itself (lightd), built from the checkout.
        } else if (source == "registry+https://github.com/rust-lang/crates.io-index" ||
                   source == "sparse+https://index.crates.io/") {
            if (checksum !~ /^[0-9a-f]+$/ || length(checksum) != 64)
                fail(name " " version ": no sha256 checksum in the lock file")
            n++
            uri[n] = "crate://crates.io/" name "/" version
            sum[n] = "SRC_URI[" name "-" version ".sha256sum] = \"" checksum "\""
        } else {
            fail(name " " version " comes from " source ", which crate:// cannot fetch")
        }
        name = version = source = checksum = ""
    }
    /^\[\[package\]\]$/ { flush(); inpkg = 1; pkgline = FNR; next }
    /^\[/ { flush(); inpkg = 0; next }
    inpkg && /^name = "/ { name = value($0); next }
    inpkg && /^version = "/ { version = value($0); next }
    inpkg && /^source = "/ { source = value($0); next }
    inpkg && /^checksum = "/ { checksum = value($0); next }
    END {
        if (failed) exit 1
        flush()
        if (n == 0) {
            err(lockname " names no crates.io package")
            exit 1
        }
        print "# Generated from Cargo.lock by packaging/yocto/gen-crates-inc.sh: do not edit."
        print "# Regenerate with"
        print "#     packaging/yocto/gen-crates-inc.sh > packaging/yocto/lightd-crates.inc"
        print ""
        from = lockname
        sub(/.*\//, "", from)
        print "# from " from
        print "SRC_URI += \" \\"
        for (i = 1; i <= n; i++) print "    " uri[i] " \\"
        print "\""
        print ""
        for (i = 1; i <= n; i++) print sum[i]
    }
' "$lock"
