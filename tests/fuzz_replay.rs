//! The fuzz targets' invariants on stable, in every `cargo test`: each seed in `fuzz/seeds/`
//! under several split patterns, then a few thousand deterministic mutations of the seeds.
//!
//! cargo-fuzz needs libFuzzer and unstable flags, so CI cannot run it; this keeps what the
//! fuzzer found (every crash is saved as a seed) and what it checks from regressing. The
//! invariants live in `fuzz/invariants.rs`, shared with the targets, so the two cannot drift.

#[path = "../fuzz/invariants.rs"]
mod invariants;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use invariants::Rng;

/// How many split patterns each seed is replayed with (mutations get one each).
const SPLIT_SEEDS: u64 = 8;

/// Everything under `fuzz/seeds/<target>/`, sorted so the run is the same on every machine.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let seeds: Vec<_> = files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    // An emptied or misplaced seed directory must fail, not pass vacuously.
    assert!(
        seeds.len() >= 10,
        "only {} seeds in {}",
        seeds.len(),
        dir.display()
    );
    seeds
}

/// Run `check`, and on failure say which input of which run it was before passing the panic
/// on; the invariant's own message already shows the bytes.
fn with_context(what: impl Fn() -> String, check: impl FnOnce()) {
    if let Err(e) = panic::catch_unwind(AssertUnwindSafe(check)) {
        eprintln!("fuzz_replay: failed on {}", what());
        panic::resume_unwind(e);
    }
}

/// Bytes that matter to the parsers, for insertions: framing, separators, escapes, digits.
const INTERESTING: &[u8] = b"\r\n\r\n \t:;,=-/.%?#*\\\0\x7f\x80\xff0159aFzHT";

/// Tokens worth splicing in whole, shared by all targets (a wasted token costs nothing).
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: a\r\n",
    b" HTTP/1.1\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff",
    b"%2e%2e/",
    b"%25",
    b"%c0%ae",
    b"/../",
    b"bytes=",
    b"-",
    b"18446744073709551615",
    b"99999999999999999999",
    b"$HTTP[\"url\"] =~ \"",
    b" {\n",
    b"}\n",
    b"\"",
    b"var.x = ",
];

/// One deterministic mutation: a few random edits of a random seed, sometimes spliced with
/// another seed. Bounded in length so a run stays fast.
fn mutate(seeds: &[(PathBuf, Vec<u8>)], rng: &mut Rng) -> Vec<u8> {
    const MAX_LEN: usize = 2048;
    let mut data = seeds[rng.below(seeds.len())].1.clone();
    // Half the time a single edit, which keeps most of a seed's structure intact.
    let edits = if rng.below(2) == 0 {
        1
    } else {
        2 + rng.below(3)
    };
    for _ in 0..edits {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if !data.is_empty() => {
                let n = 1 + rng.below(8.min(data.len() - at.min(data.len() - 1)));
                let at = at.min(data.len() - 1);
                data.drain(at..(at + n).min(data.len()));
            }
            4 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, tok.iter().copied());
            }
            5 => {
                // Splice: our head, another seed's tail.
                let other = &seeds[rng.below(seeds.len())].1;
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if !data.is_empty() => {
                // Duplicate a slice in place: repeated fields, chunks, segments.
                let a = rng.below(data.len());
                let b = a + rng.below((data.len() - a).min(32)) + 1;
                let copy = data[a..b].to_vec();
                data.splice(b..b, copy);
            }
            _ => data.push(INTERESTING[rng.below(INTERESTING.len())]),
        }
    }
    data.truncate(MAX_LEN);
    data
}

/// Every seed of `target` with several split seeds, then `mutations` mutated inputs.
fn replay(target: &str, mutations: usize, check: impl Fn(&[u8], u64)) {
    let seeds = seeds(target);
    for (path, data) in &seeds {
        for split in 0..SPLIT_SEEDS {
            with_context(
                || format!("seed {} (split seed {split})", path.display()),
                || check(data, split),
            );
        }
    }
    // The mutation stream depends only on the target name and the seed files.
    let mut rng = Rng::new(invariants::hash(target.as_bytes()));
    for i in 0..mutations {
        let data = mutate(&seeds, &mut rng);
        with_context(
            || format!("{target} mutation {i}: {}", invariants::show(&data)),
            || check(&data, i as u64),
        );
    }
}

#[test]
fn request_head_seeds_and_mutations() {
    replay("request_head", 20_000, invariants::check_request_head);
}

#[test]
fn chunked_seeds_and_mutations() {
    replay("chunked", 20_000, invariants::check_chunked);
}

#[test]
fn path_seeds_and_mutations() {
    replay("path", 30_000, |data, _| invariants::check_path(data));
}

#[test]
fn range_seeds_and_mutations() {
    replay("range", 20_000, |data, _| invariants::check_range(data));
}

#[test]
fn config_seeds_and_mutations() {
    // Split seeds mean nothing to a config; replaying each seed once is enough.
    let seeds = seeds("config");
    let loaded = seeds
        .iter()
        .filter(|(_, d)| !invariants::config_reaches_outside(d))
        .count();
    assert!(loaded >= 10, "only {loaded} config seeds without include");
    replay("config", 2_000, |data, split| {
        if split == 0 {
            invariants::check_config(data);
        }
    });
    invariants::remove_temp_config_dir();
}

/// The judges must be able to fail: wrong answers, injected where the parsers' real answers
/// would go, are caught; the right answers pass. A judge that accepted anything would pass
/// every replay above, so this is what makes them mean something.
#[test]
fn invariants_reject_wrong_answers() {
    use lightd::http::range::RangeOutcome::{Ignore, Ranges, Unsatisfiable};
    use lightd::http::request::{parse, Version};
    use lightd::http::HttpError;

    let fails = |f: &dyn Fn()| panic::catch_unwind(AssertUnwindSafe(f)).is_err();
    let bad = HttpError::new(400, "x");

    // Paths: the right answer, an escape above the root, a kept ".", a NUL, a wrong error.
    assert!(!fails(&|| invariants::judge_path(
        b"/a/../b/",
        Ok(()),
        "/b/"
    )));
    assert!(fails(&|| invariants::judge_path(
        b"/a/../../x",
        Ok(()),
        "/../x"
    )));
    assert!(fails(&|| invariants::judge_path(b"/./x", Ok(()), "/./x")));
    assert!(fails(&|| invariants::judge_path(b"/a%00", Ok(()), "/a\0")));
    assert!(fails(&|| invariants::judge_path(b"/a", Err(bad), "")));
    assert!(fails(&|| invariants::judge_path(
        b"/%zz",
        Err(bad),
        "/stale"
    )));

    // Ranges: right, not coalesced, past the end, wrong outcome, output left behind.
    assert!(!fails(&|| invariants::judge_range(
        b"bytes=2-3,0-1",
        10,
        Ranges,
        &[(0, 3)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=2-3,0-1",
        10,
        Ranges,
        &[(0, 1), (2, 3)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=5-",
        10,
        Ranges,
        &[(5, 10)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=5-",
        10,
        Ranges,
        &[(5, 8)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=9-5",
        10,
        Ranges,
        &[(5, 9)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"items=0-1",
        10,
        Ignore,
        &[(0, 1)]
    )));
    // Coalescing: ranges under 80 bytes apart are one, 80 or more apart are two.
    assert!(!fails(&|| invariants::judge_range(
        b"bytes=0-1,3-4",
        6,
        Ranges,
        &[(0, 4)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=0-1,3-4",
        6,
        Ranges,
        &[(0, 1), (3, 4)]
    )));
    assert!(!fails(&|| invariants::judge_range(
        b"bytes=0-1,97-98",
        100,
        Ranges,
        &[(0, 1), (97, 98)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=0-1,97-98",
        100,
        Ranges,
        &[(0, 98)]
    )));
    // A malformed spec is skipped, not a reason to ignore the field.
    assert!(!fails(&|| invariants::judge_range(
        b"bytes=0--,5-",
        10,
        Ranges,
        &[(5, 9)]
    )));
    assert!(fails(&|| invariants::judge_range(
        b"bytes=0--,5-",
        10,
        Ignore,
        &[]
    )));
    assert!(!fails(&|| invariants::judge_range(
        b"bytes=0--",
        10,
        Unsatisfiable,
        &[]
    )));

    // Chunked: right, a wrong payload, a wrong consumed count, a missed error.
    let body = b"5\r\nhello\r\n0\r\n\r\nNEXT";
    assert!(!fails(&|| invariants::judge_chunked(
        body,
        &(Ok((15, true)), b"hello".to_vec())
    )));
    assert!(fails(&|| invariants::judge_chunked(
        body,
        &(Ok((15, true)), b"hellx".to_vec())
    )));
    assert!(fails(&|| invariants::judge_chunked(
        body,
        &(Ok((19, true)), b"hello".to_vec())
    )));
    // A forbidden trailer, and a chunk line of 1024 bytes with its CRLF, are errors.
    let host = b"0\r\nHost: a\r\n\r\n";
    assert!(fails(&|| invariants::judge_chunked(
        host,
        &(Ok((host.len(), true)), Vec::new())
    )));
    let long = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(1020));
    assert!(fails(&|| invariants::judge_chunked(
        long.as_bytes(),
        &(Ok((long.len(), true)), b"x".to_vec())
    )));
    let lf = b"5\nhello\r\n0\r\n\r\n";
    assert!(fails(&|| invariants::judge_chunked(
        lf,
        &(Ok((lf.len(), true)), b"hello".to_vec())
    )));

    // Request heads: the real head passes; each field falsified is caught.
    let req = b"GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nBODY";
    let limits = invariants::DEFAULT_LIMITS;
    let mut headers = Vec::new();
    let head = match parse(&mut req.to_vec(), &limits, &mut headers) {
        Ok(Some(head)) => head,
        other => panic!("{other:?}"),
    };
    assert!(!fails(&|| invariants::judge_head(
        req, &limits, &head, &headers
    )));
    let mut wrong = [head; 6];
    wrong[0].keep_alive = true;
    wrong[1].len += 2;
    wrong[2].version = Version::Http10;
    wrong[3].chunked = true;
    wrong[4].path.end += 1;
    wrong[5].header_count = 1;
    for w in wrong {
        assert!(
            fails(&|| invariants::judge_head(req, &limits, &w, &headers)),
            "{w:?}"
        );
    }
    let tight = lightd::http::request::Limits {
        max_request_line: 16,
        ..limits
    };
    assert!(fails(&|| invariants::judge_head(
        req, &tight, &head, &headers
    )));
}
