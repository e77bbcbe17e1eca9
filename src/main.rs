//! The `lightd` command line: lighttpd's flags (-f -D -t -tt -p -v -V -h), parsed by hand.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: lightd [-f FILE] [-D] [-t] [-tt] [-p] [-v] [-V] [-h]
  -f FILE  the configuration file
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

fn features() -> &'static str {
    "Features:\n\
     \t+ IPv4 and IPv6\n\
     \t+ sendfile\n\
     \t+ epoll (through mio)\n\
     \t+ lighttpd 1.4 configuration syntax, regex conditionals\n\
     \t+ static files, index files, directory listings, ranges, access log\n\
     \t- TLS, CGI, FastCGI, proxy, rewrite (not built)\n"
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
                'f' => {
                    let rest = &flags[pos + 1..];
                    let file = if !rest.is_empty() {
                        rest.to_string()
                    } else {
                        i += 1;
                        args.get(i).cloned().ok_or("-f needs a file name")?
                    };
                    opts.config = Some(PathBuf::from(file));
                    break;
                }
                'D' => opts.foreground = true,
                't' => opts.test = opts.test.saturating_add(1).min(2),
                'p' => opts.print = true,
                'v' => {
                    println!("{}", version());
                    return Ok(Cli::Exit(ExitCode::SUCCESS));
                }
                'V' => {
                    println!("{}\n{}", version(), features());
                    return Ok(Cli::Exit(ExitCode::SUCCESS));
                }
                'h' => {
                    print!("{}\n{}", version(), USAGE);
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
