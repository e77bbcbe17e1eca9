//! The `lightd` command line: lighttpd's flags (-f -m -i -D -t -tt -p -v -V -h), parsed by
//! hand. lighttpd's `-1` is refused with the reason.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: lightd [-f FILE] [-m DIR] [-i SECS] [-D] [-t] [-tt] [-p] [-v] [-V] [-h]
  -f FILE  the configuration file
  -m DIR   module directory (accepted for lighttpd's sake; lightd's modules are built in)
  -i SECS  graceful shutdown after SECS seconds without any activity
  -D       do not daemonize (stay in the foreground)
  -t       test the configuration file's syntax and exit
  -tt      test the configuration file and that it can be loaded, and exit
  -p       print the parsed configuration and exit
  -v       show the version
  -V       show the version and compiled-in features
  -h       show this help
";

fn version() -> String {
    format!(
        "lightd/{} - a light and fast webserver",
        env!("CARGO_PKG_VERSION")
    )
}

/// mod_deflate's gzip and deflate, as lighttpd names them (the lighttpd suite looks for
/// "+ zlib support" to run its deflate tests). A macro so the text stays one literal.
#[cfg(feature = "deflate")]
macro_rules! zlib_line {
    () => {
        "\t+ zlib support\n"
    };
}
#[cfg(not(feature = "deflate"))]
macro_rules! zlib_line {
    () => {
        "\t- zlib support\n"
    };
}

/// TLS, by rustls: lighttpd's harness looks for "+ OpenSSL support" for its crypto tests, which
/// this is not; the line says what it is.
#[cfg(feature = "tls")]
macro_rules! tls_line {
    () => {
        "\t+ TLS support (rustls with ring: mod_openssl's ssl.* keys)\n"
    };
}
#[cfg(not(feature = "tls"))]
macro_rules! tls_line {
    () => {
        "\t- TLS support (no TLS in this build: ssl.engine is refused)\n"
    };
}

/// `-V`: lighttpd's layout (the suite's harness greps it for "+ X support"), saying honestly
/// what this build has.
fn features() -> String {
    // The request modules this build has (cargo features), and the ones it lacks.
    let modules: &[(&str, bool)] = &[
        ("access", cfg!(feature = "access")),
        ("alias", cfg!(feature = "alias")),
        ("redirect", cfg!(feature = "redirect")),
        ("rewrite", cfg!(feature = "rewrite")),
        ("setenv", cfg!(feature = "setenv")),
        ("expire", cfg!(feature = "expire")),
        ("extforward", cfg!(feature = "extforward")),
        ("simple_vhost", cfg!(feature = "vhost")),
        ("evhost", cfg!(feature = "vhost")),
        ("userdir", cfg!(feature = "userdir")),
        ("dirlisting", cfg!(feature = "dirlisting")),
        ("status", cfg!(feature = "status")),
        ("accesslog", cfg!(feature = "accesslog")),
        ("auth", cfg!(feature = "auth")),
        ("cgi", cfg!(feature = "cgi")),
        ("fastcgi", cfg!(feature = "fastcgi")),
        ("scgi", cfg!(feature = "scgi")),
        ("proxy", cfg!(feature = "proxy")),
        ("wstunnel", cfg!(feature = "wstunnel")),
    ];
    let list = |on: bool| {
        let names: Vec<&str> = modules
            .iter()
            .filter(|(_, has)| *has == on)
            .map(|(n, _)| *n)
            .collect();
        names.join(", ")
    };
    let mut out = String::from(concat!(
        "\nEvent Handlers:\n\n\
         \t+ epoll (Linux)\n\
         \nNetwork handler:\n\n\
         \t+ linux-sendfile\n\
         \t+ write\n\
         \nFeatures:\n\n\
         \t+ IPv6 support\n",
        zlib_line!(),
        "\t- zstd support\n\
         \t- bzip2 support\n\
         \t- brotli support\n",
        tls_line!(),
        "\t+ PCRE support (Perl-compatible regular expressions in conditions and url rules, \
         by regex-lite rather than libpcre: no look-around, no backreferences)\n\
         \t- LUA support\n\
         \t- WebDAV support\n\
         \t+ lighttpd 1.4 configuration syntax\n\
         \t+ static files, index files, directory listings, ranges\n",
    ));
    // htpasswd's crypt(3) lines are checked with the C library's crypt, by mod_auth.
    out.push_str(if cfg!(feature = "auth") {
        "\t+ crypt support\n"
    } else {
        "\t- crypt support\n"
    });
    let on = list(true);
    if !on.is_empty() {
        out.push_str(&format!("\t+ modules: {on}\n"));
    }
    let off = list(false);
    if !off.is_empty() {
        out.push_str(&format!(
            "\t- modules: {off} (a config that needs them is refused)\n"
        ));
    }
    out
}

/// Print to stdout; a reader that went away (`lightd -V | head -1`) is not an error.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

enum Cli {
    Run(lightd::Options),
    Exit(ExitCode),
}

fn parse(args: &[String]) -> Result<Cli, String> {
    let mut opts = lightd::Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(format!("unexpected argument {:?}", arg));
        };
        for (pos, c) in flags.char_indices() {
            match c {
                'f' | 'm' | 'i' => {
                    // The value is the rest of this argument or the next one.
                    let rest = &flags[pos + 1..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else {
                        i += 1;
                        args.get(i).cloned().ok_or(format!("-{c} needs a value"))?
                    };
                    match c {
                        'f' => opts.config = Some(PathBuf::from(value)),
                        // lighttpd loads modules from DIR; lightd's are compiled in.
                        'm' => {}
                        _ => {
                            let secs = value.trim().parse::<u32>().map_err(|_| {
                                format!("invalid idle timeout value for -i: {value:?}")
                            })?;
                            opts.idle_timeout =
                                (secs > 0).then(|| std::time::Duration::from_secs(secs.into()));
                        }
                    }
                    break;
                }
                'D' => opts.foreground = true,
                't' => opts.test = opts.test.saturating_add(1).min(2),
                'p' => opts.print = true,
                '1' => {
                    return Err("-1 (serve one connection on stdin, then exit) is not \
                                supported: lightd serves only its listening sockets; run it \
                                with -D under your supervisor instead"
                        .to_string())
                }
                'v' => {
                    say(&format!("{}\n", version()));
                    return Ok(Cli::Exit(ExitCode::SUCCESS));
                }
                'V' => {
                    say(&format!("{}\n{}", version(), features()));
                    return Ok(Cli::Exit(ExitCode::SUCCESS));
                }
                'h' => {
                    say(&format!("{}\n{}", version(), USAGE));
                    return Ok(Cli::Exit(ExitCode::SUCCESS));
                }
                other => return Err(format!("unknown option -{}", other)),
            }
        }
        i += 1;
    }
    Ok(Cli::Run(opts))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Cli::Run(o)) => o,
        Ok(Cli::Exit(code)) => return code,
        Err(e) => {
            eprintln!("lightd: {}\n{}", e, USAGE);
            return ExitCode::from(2);
        }
    };
    match lightd::run(&opts) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code.clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("lightd: {}", e);
            ExitCode::FAILURE
        }
    }
}
