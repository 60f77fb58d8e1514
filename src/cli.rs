//! The in.dhcpd command line: `-t -D -b -c -f -i -s -C -V` as SCO had them,
//! `-u`, the user to run as, and `-L`, a log file instead of syslog.

use std::path::PathBuf;
use std::time::Duration;

use crate::activation::Mode;

pub const USAGE: &str =
    "usage: in.dhcpd [-CfhisV] [-b bootpd_port] [-c config] [-D debug_level] [-L log_file] [-t timeout] [-u user]";
/// `-h`/`--help`: the usage line and what each flag does (in.dhcpd(8)).
pub const HELP: &str = "  -b port      forward BOOTP requests to a bootpd on this port
  -C           check the configuration, print every error, exit 0 or 1
  -c config    configuration file (default /etc/dhcpd.conf)
  -D level     log detail, 0 (errors) to 3
  -f           stay in the foreground
  -h, --help   print this and exit
  -i | -s      run as started by inetd | standalone (default: detected)
  -L log_file  append log lines to this file instead of syslog
  -t minutes   exit after this long without a packet (0: never; Ns: seconds)
  -u user      user to run as once the sockets are open (default nobody)
  -V           print the version and exit";
pub const DEFAULT_CONFIG: &str = "/etc/dhcpd.conf";
/// Who in.dhcpd becomes once its sockets are open (`-u`).
pub const DEFAULT_USER: &str = "nobody";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `-t`: `None` = not given; `Some(None)` = 0, never exit.
    pub idle: Option<Option<Duration>>,
    pub debug: u8,
    /// `-b`, resolved to a port.
    pub bootpd_port: Option<u16>,
    pub config: PathBuf,
    pub foreground: bool,
    pub force: Option<Mode>,
    pub check: bool,
    pub version: bool,
    /// `-h`, `--help`: the usage line on stdout, exit 0.
    pub help: bool,
    /// `-u`: the user to run as after start-up; "root" keeps root.
    pub user: String,
    /// `-L`: append log lines to this file instead of sending them to syslog.
    pub log_file: Option<PathBuf>,
}

/// A bad flag or value: the caller prints it and the usage line, exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut spec = getopts::Options::new();
    spec.optopt("t", "", "idle timeout", "minutes");
    spec.optopt("D", "", "debug level", "0-3");
    spec.optopt("b", "", "bootpd port", "port");
    spec.optopt("c", "", "configuration file", "file");
    spec.optflag("f", "", "foreground");
    spec.optflag("i", "", "inetd mode");
    spec.optflag("s", "", "standalone mode");
    spec.optflag("C", "", "check configuration");
    spec.optflag("V", "", "version");
    spec.optflag("h", "help", "usage");
    spec.optopt("u", "", "user to run as", "user");
    spec.optopt("L", "", "log file", "file");
    let m = spec.parse(args).map_err(|e| UsageError(e.to_string()))?;
    if let Some(extra) = m.free.first() {
        return Err(UsageError(format!("unexpected argument \"{extra}\"")));
    }
    let force = match (m.opt_present("i"), m.opt_present("s")) {
        (true, true) => return Err(UsageError("-i and -s exclude each other".into())),
        (true, false) => Some(Mode::Inetd),
        (false, true) => Some(Mode::Standalone),
        _ => None,
    };
    let idle = m.opt_str("t").map(|t| parse_timeout(&t)).transpose()?;
    let debug = match m.opt_str("D") {
        None => 0,
        Some(d) => d
            .parse::<u32>()
            .map(|n| n.min(3) as u8)
            .map_err(|_| UsageError(format!("-D {d}: not a debug level (0 to 3)")))?,
    };
    let bootpd_port = match m.opt_str("b") {
        None => None,
        Some(b) => Some(crate::sys::port_from_arg(&b).ok_or_else(|| {
            UsageError(format!(
                "-b {b}: not a port number or a udp service in /etc/services"
            ))
        })?),
    };
    Ok(Options {
        idle,
        debug,
        bootpd_port,
        config: PathBuf::from(m.opt_str("c").unwrap_or_else(|| DEFAULT_CONFIG.into())),
        foreground: m.opt_present("f"),
        force,
        check: m.opt_present("C"),
        version: m.opt_present("V"),
        help: m.opt_present("h"),
        user: m.opt_str("u").unwrap_or_else(|| DEFAULT_USER.into()),
        log_file: m.opt_str("L").map(PathBuf::from),
    })
}

/// `-t`: minutes as SCO has it, or seconds with an `s` suffix (an
/// extension, so tests need not wait minutes). 0 means never.
fn parse_timeout(t: &str) -> Result<Option<Duration>, UsageError> {
    let bad = || {
        UsageError(format!(
            "-t {t}: not a timeout (minutes, or seconds with \"s\")"
        ))
    };
    let (digits, unit) = match t.strip_suffix('s') {
        Some(d) => (d, 1),
        None => (t, 60),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.idle, None);
        assert_eq!(o.debug, 0);
        assert_eq!(o.config, PathBuf::from("/etc/dhcpd.conf"));
        assert_eq!(o.force, None);
    }

    #[test]
    fn every_flag() {
        let o = parse(&args("-t 5 -D 7 -b 950 -c /x.conf -f -s -C -V -L /x.log")).unwrap();
        assert_eq!(o.log_file, Some(PathBuf::from("/x.log")));
        assert_eq!(o.idle, Some(Some(Duration::from_secs(300))));
        assert_eq!(o.debug, 3, "above 3 means 3");
        assert_eq!(o.bootpd_port, Some(950));
        assert_eq!(o.config, PathBuf::from("/x.conf"));
        assert!(o.foreground && o.check && o.version);
        assert!(!o.help);
        assert!(parse(&args("-h")).unwrap().help);
        assert!(parse(&args("--help")).unwrap().help);
        assert_eq!(o.force, Some(Mode::Standalone));
        assert_eq!(parse(&args("-i")).unwrap().force, Some(Mode::Inetd));
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("5s").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("2").unwrap(), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("0").unwrap(), None);
        assert_eq!(parse_timeout("0s").unwrap(), None);
        for bad in ["", "s", "-1", "5m", "x", "99999999999999999999"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "-x",
            "-t",
            "-t abc",
            "-D x",
            "-D -1",
            "-i -s",
            "extra",
            "-b no-such-svc",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
