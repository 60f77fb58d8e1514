//! in.dhcpd: command line -> activation -> serve loop.
//!
//! Exit status: 0 after an idle timeout, a signal, `-C` without errors,
//! `-V` or `-h`; 1 for configuration errors or a fatal runtime error; 2 for a usage
//! error or an unusable inherited socket.

use std::path::{Path, PathBuf};
use std::process::exit;
use std::time::Duration;

use indhcpd::aas::client::{Down, Link};
use indhcpd::activation::{self, Mode};
use indhcpd::cli::{self, Options};
use indhcpd::config::watch::Watch;
use indhcpd::log::{self, Target};
use indhcpd::net::Socket;
use indhcpd::privilege;
use indhcpd::server::Server;
use indhcpd::{config, log_detail, log_error};

/// SCO's default: an activated server exits after 15 idle minutes.
const ACTIVATED_IDLE: Duration = Duration::from_secs(15 * 60);

/// How long a start waits for a dhcpd.conf that is being written.
const SETTLE_AT_START: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match cli::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("in.dhcpd: {}", e.0);
            eprintln!("{}", cli::USAGE);
            exit(2);
        }
    };
    if opts.help {
        println!("{}\n{}", cli::USAGE, cli::HELP);
        exit(0);
    }
    if opts.version {
        println!("in.dhcpd {}", env!("CARGO_PKG_VERSION"));
        exit(0);
    }
    if opts.check {
        exit(check(&opts));
    }
    exit(run(opts));
}

/// `-C`: print every error, exit 0 or 1.
fn check(opts: &Options) -> i32 {
    match config::load(&opts.config) {
        Ok(cfg) => {
            println!("{}: configuration OK", opts.config.display());
            let errors = check_against_aas(&cfg, opts);
            i32::from(errors > 0)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "in.dhcpd: {}: {} error(s)",
                opts.config.display(),
                errors.len()
            );
            1
        }
    }
}

/// `-C`, once the file reads well: its pools and pinned addresses held
/// against in.aasd, when it answers. Returns the number of errors.
fn check_against_aas(cfg: &config::Config, opts: &Options) -> usize {
    use indhcpd::aas::lease::{Filter, Selector, State};
    use indhcpd::aas::proto::{self, Reply, Request};
    use indhcpd::config::crosscheck::{self, Severity};
    let pinned = crosscheck::pinned(cfg);
    if !cfg.subnets.iter().any(|s| s.pool.is_some()) && pinned.is_empty() {
        return 0;
    }
    let target = indhcpd::server::aas_target(cfg);
    let mut link = Link::new(target.clone(), Duration::from_secs(2)).without_logging();
    let pools = match link.ask_read(&Request::Pools) {
        Ok(Ok(Reply::Pools(pools))) => pools,
        Ok(Ok(Reply::Err { text, .. })) => {
            println!("note: in.aasd at {target} does not answer POOLS ({text}): pools not checked");
            return 0;
        }
        Ok(_) => {
            eprintln!("in.dhcpd: in.aasd's answer to POOLS is garbage: pools not checked");
            return 1;
        }
        Err(Down(why)) => {
            println!("note: {why}: pools and pinned addresses not checked against in.aasd");
            return 0;
        }
    };
    let file = opts.config.display();
    let mut errors = 0;
    for f in crosscheck::check(cfg, &pools) {
        errors += usize::from(f.severity == Severity::Error);
        eprintln!("{file}: {f}");
    }
    // A pinned address another client holds now: it keeps it until its
    // lease ends, as in.aasd will not renew it.
    for (addr, name) in &pinned {
        let query = Request::Query(Filter {
            range: Some((u32::from(*addr), u32::from(*addr))),
            ..Filter::default()
        });
        let rows = match link.ask_read(&query) {
            Ok(Ok(Reply::Leases(rows))) => rows,
            Ok(Err(e)) => {
                eprintln!("in.dhcpd: in.aasd's answer to QUERY is garbage: {e}");
                errors += 1;
                continue;
            }
            _ => continue,
        };
        for row in &rows {
            let held = matches!(row.state, Selector::State(State::Offered | State::Leased));
            if held && row.client != *name {
                eprintln!(
                    "{file}: warning: ip_address {addr} ({name}) is leased to {} until \
                     {}: in.aasd will not renew it to that client once in.dhcpd runs",
                    proto::word(&row.client),
                    indhcpd::log::utc_text(row.end)
                );
            }
        }
    }
    errors
}

fn run(opts: Options) -> i32 {
    let (server_port, client_port) = indhcpd::sys::dhcp_ports();
    let (mode, fd) = match activation::activate(opts.force, server_port) {
        Ok(x) => x,
        Err(e) => {
            // Before logging is set up; under inetd stderr is the socket,
            // so try syslog as well.
            log::init("in.dhcpd", 0, Target::Syslog { stderr_ok: true });
            log_error!("{e}");
            return e.exit_code();
        }
    };
    let to_stderr = mode == Mode::Standalone && opts.debug >= 3;
    if mode == Mode::Inetd {
        silence_stdio();
    }
    // Opened as root, before the drop, so that the file may be root's.
    let log_file = match opts.log_file.as_deref().map(log_to_file).transpose() {
        Ok(f) => f,
        Err(e) => {
            log::init("in.dhcpd", 0, Target::Syslog { stderr_ok: true });
            log_error!("-L: {e}");
            return 1;
        }
    };
    let target = if log_file.is_some() || to_stderr {
        Target::Stderr
    } else {
        // Under inetd fds 1 and 2 are the socket: never write there.
        Target::Syslog {
            stderr_ok: mode != Mode::Inetd,
        }
    };
    log::init("in.dhcpd", opts.debug, target);
    // A relative path must survive the chdir of daemon(3).
    let config_path = std::fs::canonicalize(&opts.config).unwrap_or(opts.config.clone());
    // A file still being written is not taken, even at start (inetd
    // starts us at any moment): wait for it to settle, within reason.
    let mut watch = Watch::new(config_path.clone());
    let config = match watch.load_when_settled(SETTLE_AT_START) {
        Some(Ok(c)) => c,
        None => {
            log_error!(
                "{}: still being written after {:?}: not taken",
                config_path.display(),
                SETTLE_AT_START
            );
            return 1;
        }
        Some(Err(errors)) => {
            for e in &errors {
                log_error!("{e}");
            }
            log_error!("Configuration file errors encountered");
            return 1;
        }
    };
    let socket = match Socket::new(fd) {
        Ok(s) => s,
        Err(e) => {
            log_error!("socket setup: {e}");
            return 1;
        }
    };
    let server_port = match mode {
        Mode::Standalone => server_port,
        _ => socket.local_port().unwrap_or(server_port),
    };
    let idle = match (opts.idle, mode) {
        (Some(t), _) => t,
        (None, Mode::Standalone) => None,
        (None, _) => Some(ACTIVATED_IDLE),
    };
    // Without syslog, lines go to stderr, which a detached server keeps.
    if mode == Mode::Standalone && !opts.foreground && !to_stderr {
        if let Err(e) = nix::unistd::daemon(false, log::to_stderr()) {
            log_error!("daemon: {e}");
            return 1;
        }
        // daemon(3) pointed fd 2 at /dev/null too.
        if let Some(f) = &log_file {
            let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(f), 2);
        }
    }
    if let Err(e) = indhcpd::signals::install() {
        log_error!("signal handlers: {e}");
        return 1;
    }
    std::panic::set_hook(Box::new(|info| log_error!("panic: {info}")));
    log_detail!(
        "started ({mode}), port {server_port}, config {}",
        config_path.display()
    );
    // The Unix socket in.dhcpd will need once root is gone, if any.
    let needs_aas = config.subnets.iter().any(|s| s.pool.is_some())
        || config.clients.iter().any(|c| c.ip_address.is_some());
    let aas_socket = (config.server.aas_address.is_none() && needs_aas)
        .then(|| config.server.aas_socket.clone());
    let user = match privilege::target_user(&opts.user) {
        Ok(u) => u,
        Err(e) => {
            log_error!("-u {}: {e}", opts.user);
            return 1;
        }
    };
    // The default group is looked up only when root is given up: the
    // lookup loads NSS modules, which costs every start under inetd. A
    // group named in dhcpd.conf is always checked.
    let named = config.server.aas_group.is_some();
    let aas_group = match aas_socket.as_ref().filter(|_| user.is_some() || named) {
        None => None,
        Some(path) => match privilege::socket_group(path, config.server.aas_group.as_deref()) {
            Ok(g) => g,
            Err(e) => {
                log_error!("aas_group: {e}");
                return 1;
            }
        },
    };
    let mut server = match Server::new(
        socket,
        config,
        watch,
        (server_port, client_port),
        idle,
        opts.bootpd_port,
    ) {
        Ok(s) => s,
        Err(e) => {
            log_error!("starting: {e}");
            return 1;
        }
    };
    match drop_root(user, &opts.user, aas_group) {
        Err(e) => {
            log_error!("-u {}: {e}", opts.user);
            return 1;
        }
        Ok(true) => {
            // Found now, not at the first dynamic client: in.aasd may not
            // be running yet, but its socket's path must be usable.
            if let Some(path) = &aas_socket {
                if let Err(e) = privilege::check_socket_reachable(path, &opts.user) {
                    log_error!("{e}");
                    return 1;
                }
            }
        }
        Ok(false) => {}
    }
    server.start(&mode.to_string());
    match server.run() {
        Ok(()) => 0,
        Err(e) => {
            log_error!("{e}");
            1
        }
    }
}

/// With every socket open, become `user`, keeping the AAS socket's group
/// and the two capabilities still used. Returns whether root was dropped.
fn drop_root(
    target: Option<nix::unistd::User>,
    user: &str,
    aas_group: Option<nix::unistd::Gid>,
) -> std::io::Result<bool> {
    let Some(u) = target else {
        return Ok(false);
    };
    let groups: Vec<_> = aas_group.into_iter().collect();
    privilege::become_user(
        &u,
        &groups,
        &[privilege::CAP_NET_ADMIN, privilege::CAP_NET_RAW],
    )?;
    let group = match aas_group {
        Some(g) => format!(", group {g} kept for the AAS socket"),
        None => String::new(),
    };
    log_detail!(
        "running as {user} (uid {}){group}, with CAP_NET_ADMIN and CAP_NET_RAW",
        u.uid
    );
    Ok(true)
}

/// Why `-L` cannot have its file: it does not open, or cannot become fd 2.
#[derive(Debug)]
enum LogFileError {
    Open(PathBuf, std::io::Error),
    Dup(PathBuf, nix::Error),
}

impl std::fmt::Display for LogFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogFileError::Open(path, e) => write!(f, "{}: {e}", path.display()),
            LogFileError::Dup(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for LogFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogFileError::Open(_, e) => Some(e),
            LogFileError::Dup(_, e) => Some(e),
        }
    }
}

/// `-L`: fd 2 becomes `path`, opened for appending (created 0640); the
/// file is kept open to put it back there after daemon(3).
fn log_to_file(path: &Path) -> Result<std::fs::File, LogFileError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| LogFileError::Open(path.to_path_buf(), e))?;
    nix::unistd::dup2(file.as_raw_fd(), 2).map_err(|e| LogFileError::Dup(path.to_path_buf(), e))?;
    Ok(file)
}

/// Point fds 1 and 2 at /dev/null (inetd gave us the socket there too).
fn silence_stdio() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_that_cannot_open_says_which_and_why() {
        let e = log_to_file(Path::new("/nonexistent/in.dhcpd.log")).unwrap_err();
        assert!(matches!(e, LogFileError::Open(..)));
        let e: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(
            e.to_string(),
            "/nonexistent/in.dhcpd.log: No such file or directory (os error 2)"
        );
        assert!(e.source().is_some());
    }
}
