//! in.dhcpd: command line -> activation -> serve loop.
//!
//! Exit status: 0 after an idle timeout, a signal, `-C` without errors,
//! `-V` or `-h`; 1 for configuration errors or a fatal runtime error; 2 for a usage
//! error or an unusable inherited socket.

use std::process::exit;
use std::time::Duration;

use indhcpd::activation::{self, Mode};
use indhcpd::cli::{self, Options};
use indhcpd::log::{self, Target};
use indhcpd::net::Socket;
use indhcpd::privilege;
use indhcpd::server::Server;
use indhcpd::{config, log_detail, log_error};

/// SCO's default: an activated server exits after 15 idle minutes.
const ACTIVATED_IDLE: Duration = Duration::from_secs(15 * 60);

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
        Ok(_) => {
            println!("{}: configuration OK", opts.config.display());
            0
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
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(errors) => {
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
    if mode == Mode::Standalone && !opts.foreground && !to_stderr {
        if let Err(e) = nix::unistd::daemon(false, false) {
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
    let aas_group = match &config.server.aas_address {
        None => privilege::socket_group(&config.server.aas_socket),
        Some(_) => None,
    };
    let mut server = match Server::new(
        socket,
        config,
        config_path,
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
    if let Err(e) = drop_root(&opts.user, aas_group) {
        log_error!("-u {}: {e}", opts.user);
        return 1;
    }
    match server.run() {
        Ok(()) => 0,
        Err(e) => {
            log_error!("{e}");
            1
        }
    }
}

/// With every socket open, become `user`, keeping the AAS socket's group
/// and the two capabilities still used.
fn drop_root(user: &str, aas_group: Option<nix::unistd::Gid>) -> std::io::Result<()> {
    let Some(u) = privilege::target_user(user)? else {
        return Ok(());
    };
    let groups: Vec<_> = aas_group.into_iter().collect();
    privilege::become_user(
        &u,
        &groups,
        &[privilege::CAP_NET_ADMIN, privilege::CAP_NET_RAW],
    )?;
    log_detail!(
        "running as {user} (uid {}), with CAP_NET_ADMIN and CAP_NET_RAW",
        u.uid
    );
    Ok(())
}

/// `-L`: fd 2 becomes `path`, opened for appending (created 0640); the
/// file is kept open to put it back there after daemon(3).
fn log_to_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    nix::unistd::dup2(file.as_raw_fd(), 2).map_err(|e| format!("{}: {e}", path.display()))?;
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
