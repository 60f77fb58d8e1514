//! in.aasd: the Address Allocation Server. Command line -> configuration
//! -> database recovery -> serve loop.
//!
//! Exit status: 0 after SIGTERM, `-C` without errors, `-V` or `-h`; 1 for
//! configuration errors or a fatal runtime error; 2 for a usage error.

use std::path::PathBuf;
use std::process::exit;

use indhcpd::aasd::config::{self, DEFAULT_CONFIG};
use indhcpd::aasd::daemon::Daemon;
use indhcpd::log::{self, Target};
use indhcpd::{log_detail, log_error, signals};

const USAGE: &str =
    "usage: in.aasd [-CfhV] [-c config] [-D debug_level] [-u user]\n       in.aasd --init-db [-c config]";
/// `-h`/`--help`: what each flag does (in.aasd(8)).
const HELP: &str = "  -C           check the configuration, print every error, exit 0 or 1
  -c config    configuration file (default /etc/aasd.conf)
  -D level     log detail, 0 (errors) to 3; 3 also stays in the foreground
  -f           stay in the foreground
  -h, --help   print this and exit
  -u user      user to run as once the database and sockets are open
  -V           print the version and exit
  --init-db    create or upgrade the PostgreSQL schema (store = postgresql), exit";

struct Options {
    debug: u8,
    config: PathBuf,
    foreground: bool,
    check: bool,
    init_db: bool,
    version: bool,
    help: bool,
    user: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut spec = getopts::Options::new();
    spec.optopt("D", "", "debug level", "0-3");
    spec.optopt("c", "", "configuration file", "file");
    spec.optflag("f", "", "foreground");
    spec.optflag("C", "", "check configuration");
    spec.optflag("", "init-db", "create or upgrade the schema");
    spec.optflag("V", "", "version");
    spec.optflag("h", "help", "usage");
    spec.optopt("u", "", "run as this user", "user");
    let m = spec.parse(args).map_err(|e| e.to_string())?;
    if let Some(extra) = m.free.first() {
        return Err(format!("unexpected argument \"{extra}\""));
    }
    let debug = match m.opt_str("D") {
        None => 0,
        Some(d) => d
            .parse::<u32>()
            .map(|n| n.min(3) as u8)
            .map_err(|_| format!("-D {d}: not a debug level (0 to 3)"))?,
    };
    Ok(Options {
        debug,
        config: PathBuf::from(m.opt_str("c").unwrap_or_else(|| DEFAULT_CONFIG.into())),
        foreground: m.opt_present("f"),
        check: m.opt_present("C"),
        init_db: m.opt_present("init-db"),
        version: m.opt_present("V"),
        help: m.opt_present("h"),
        user: m.opt_str("u"),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("in.aasd: {e}");
            eprintln!("{USAGE}");
            exit(2);
        }
    };
    if opts.help {
        println!("{USAGE}\n{HELP}");
        exit(0);
    }
    if opts.version {
        println!("in.aasd {}", env!("CARGO_PKG_VERSION"));
        exit(0);
    }
    exit(run(opts));
}

fn run(opts: Options) -> i32 {
    // -C prints on stderr: no syslog to look for.
    let to_stderr = opts.debug >= 3 || opts.check || opts.init_db;
    let target = if to_stderr {
        Target::Stderr
    } else {
        Target::Syslog { stderr_ok: true }
    };
    log::init("in.aasd", opts.debug, target);
    let config_path = std::fs::canonicalize(&opts.config).unwrap_or(opts.config.clone());
    let cfg = match config::load(&config_path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                if opts.check {
                    eprintln!("{e}");
                } else {
                    log_error!("{e}");
                }
            }
            if opts.check {
                eprintln!(
                    "in.aasd: {}: {} error(s)",
                    config_path.display(),
                    errors.len()
                );
            } else {
                log_error!("Configuration file errors encountered");
            }
            return 1;
        }
    };
    if opts.check {
        println!("{}: configuration OK", config_path.display());
        return 0;
    }
    if opts.init_db {
        return init_db(&cfg, &config_path);
    }
    if let Err(e) = signals::install() {
        log_error!("signal handlers: {e}");
        return 1;
    }
    std::panic::set_hook(Box::new(|info| log_error!("panic: {info}")));
    let start = std::time::Instant::now();
    // -u wins over the user key.
    let user = match opts.user.clone().or(cfg.user.clone()) {
        None => None,
        Some(name) => match nix::unistd::User::from_name(&name) {
            Ok(Some(u)) => Some(u),
            Ok(None) => {
                log_error!("user {name}: no such user");
                return 1;
            }
            Err(e) => {
                log_error!("user {name}: {e}");
                return 1;
            }
        },
    };
    let mut daemon = match Daemon::new(cfg, config_path.clone(), user.as_ref()) {
        Ok(d) => d,
        Err(e) => {
            log_error!("start-up: {e}");
            return 1;
        }
    };
    log_detail!(
        "started in {:.1} ms: {} addresses known, config {}",
        start.elapsed().as_secs_f64() * 1000.0,
        daemon.store().known(),
        config_path.display()
    );
    // Detach only once the socket is bound and the database read, so the
    // parent's exit means "ready" to whoever started us.
    if !opts.foreground && !to_stderr {
        if let Err(e) = nix::unistd::daemon(false, log::to_stderr()) {
            log_error!("daemon: {e}");
            return 1;
        }
    }
    // The socket answers from here on: units ordered after in.aasd
    // (Type=notify) may start.
    if let Err(e) = indhcpd::notify::ready() {
        log_error!("telling systemd we are ready: {e}");
    }
    match daemon.run() {
        Ok(()) => 0,
        Err(e) => {
            log_error!("{e}");
            1
        }
    }
}

/// `--init-db`: make the PostgreSQL schema current, say what was done.
fn init_db(cfg: &config::AasConfig, path: &std::path::Path) -> i32 {
    use indhcpd::aasd::pg::{self, schema};
    if cfg.store_kind != config::StoreKind::Postgresql {
        eprintln!(
            "in.aasd: --init-db: {} has no store = postgresql",
            path.display()
        );
        return 1;
    }
    let done = pg::configured_conninfo(cfg)
        .map_err(|e| e.to_string())
        .and_then(|info| pg::open_database(&info));
    match done {
        Ok((_, how)) => {
            let v = schema::VERSION;
            match how {
                schema::Prepared::Created => println!("in.aasd: created schema version {v}"),
                schema::Prepared::Upgraded(old) => {
                    println!("in.aasd: upgraded the schema from version {old} to {v}")
                }
                schema::Prepared::Current => println!("in.aasd: schema version {v} is current"),
            }
            0
        }
        Err(e) => {
            eprintln!("in.aasd: --init-db: postgresql: {e}");
            1
        }
    }
}
