//! The connection string of aasd.conf's `postgresql =`: libpq's syntax
//! (`key=value ...` or a `postgresql://` URI, several hosts, and
//! `target_session_attrs=read-write`), read by the postgres crate, and the
//! one thing that crate leaves out: the password from a passfile, looked
//! up as libpq does (`passfile=`, else PGPASSFILE, else ~/.pgpass). A
//! password in the string itself is refused: aasd.conf is no place for it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use postgres::config::Host;
use postgres::Config;

use crate::log::Level;
use crate::log_limited;

/// A connection string as read, without its passfile key.
#[derive(Clone, Debug)]
pub struct Conninfo {
    pub config: Config,
    /// `passfile=` of the string, if it had one.
    pub passfile: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConninfoError {
    Password,
    Invalid(String),
}

impl fmt::Display for ConninfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConninfoError::Password => write!(
                f,
                "a password in the connection string is refused: put it in a passfile \
                 (passfile=FILE in the string, PGPASSFILE, or ~/.pgpass)"
            ),
            ConninfoError::Invalid(e) => write!(f, "not a libpq connection string: {e}"),
        }
    }
}

impl std::error::Error for ConninfoError {}

pub fn parse(text: &str) -> Result<Conninfo, ConninfoError> {
    let (rest, passfile) = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        without_uri_passfile(text)
    } else {
        without_passfile(text)?
    };
    let config = Config::from_str(&rest).map_err(|e| ConninfoError::Invalid(e.to_string()))?;
    if config.get_password().is_some() {
        return Err(ConninfoError::Password);
    }
    Ok(Conninfo {
        config,
        passfile: passfile.map(PathBuf::from),
    })
}

/// `key=value` pairs in libpq's syntax: blanks around `=`, values bare or
/// in single quotes, with `\` escaping the next character.
fn pairs(text: &str) -> Result<Vec<(String, String)>, ConninfoError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(ConninfoError::Invalid(format!("\"{key}\" has no = value")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                None if quoted => {
                    return Err(ConninfoError::Invalid(format!(
                        "the value of {key} has no closing quote"
                    )))
                }
                None => break,
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
            }
        }
        out.push((key, value));
    }
}

/// The string without its `passfile` pair, and that pair's value.
fn without_passfile(text: &str) -> Result<(String, Option<String>), ConninfoError> {
    let mut passfile = None;
    let mut rest = Vec::new();
    for (k, v) in pairs(text)? {
        if k == "passfile" {
            passfile = Some(v);
        } else {
            let v = v.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push(format!("{k}='{v}'"));
        }
    }
    Ok((rest.join(" "), passfile))
}

/// The same for a URI: `passfile=` among its query parameters.
fn without_uri_passfile(text: &str) -> (String, Option<String>) {
    let Some((base, query)) = text.split_once('?') else {
        return (text.to_string(), None);
    };
    let mut passfile = None;
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("passfile=") {
            Some(v) => {
                passfile = Some(percent_decoded(v));
                false
            }
            None => true,
        })
        .collect();
    if params.is_empty() {
        (base.to_string(), passfile)
    } else {
        (format!("{base}?{}", params.join("&")), passfile)
    }
}

fn percent_decoded(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Conninfo {
    /// The passfile libpq would read: `passfile=`, else PGPASSFILE, else
    /// ~/.pgpass.
    pub fn passfile_path(&self) -> Option<PathBuf> {
        self.passfile
            .clone()
            .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))
    }

    /// The connection settings with the password of the passfile, if it
    /// has one for these hosts, database and user. One password for every
    /// host: the first host with a matching line gives it (the hosts of one
    /// cluster replicate their roles, passwords included).
    pub fn with_password(&self) -> Config {
        let mut config = self.config.clone();
        let Some(path) = self.passfile_path() else {
            return config;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return config;
        };
        // As libpq: a password others may read is not used.
        let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
        if mode & 0o077 != 0 {
            log_limited!(
                Level::Error,
                "passfile",
                1,
                "{}: others may read it (mode {:o}): not used; chmod 600 it",
                path.display(),
                mode & 0o777
            );
            return config;
        }
        let user = config
            .get_user()
            .map(str::to_string)
            .unwrap_or_else(os_user);
        let db = config.get_dbname().unwrap_or(&user).to_string();
        let ports = config.get_ports();
        let hosts = config.get_hosts();
        let found = hosts.iter().enumerate().find_map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            };
            let port = ports
                .get(i)
                .or(ports.first())
                .copied()
                .unwrap_or(5432)
                .to_string();
            let unix = matches!(h, Host::Unix(_));
            lookup(&text, &host, unix, &port, &db, &user)
        });
        if let Some(p) = found {
            config.password(p);
        }
        config
    }
}

fn os_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map_or_else(String::new, |u| u.name)
}

/// The password of the first passfile line matching, as libpq reads the
/// file: `host:port:database:user:password`, `*` matches anything, `\`
/// escapes `:` and `\`, `#` starts a comment line; `localhost` also
/// matches the default socket directory.
fn lookup(text: &str, host: &str, unix: bool, port: &str, db: &str, user: &str) -> Option<String> {
    let default_socket = unix && matches!(host, "/run/postgresql" | "/var/run/postgresql");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f = fields(l);
            (f.len() == 5).then_some(f)
        })
        .find(|f| {
            let is = |field: &str, want: &str| field == "*" || field == want;
            (is(&f[0], host) || (default_socket && f[0] == "localhost"))
                && is(&f[1], port)
                && is(&f[2], db)
                && is(&f[3], user)
        })
        .map(|f| f[4].clone())
}

fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().unwrap().extend(chars.next()),
            // The password is the rest of the line, colons and all.
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_and_read_write() {
        let c = parse(
            "host=/tmp/a,db2.example port=5432,5433 dbname=leases user=aasd \
             target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(c.config.get_hosts().len(), 2);
        assert_eq!(c.config.get_ports(), [5432, 5433]);
        assert_eq!(
            c.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::ReadWrite
        );
        let u = parse("postgresql://aasd@h1:5432,h2:5432/leases?target_session_attrs=read-write")
            .unwrap();
        assert_eq!(u.config.get_hosts().len(), 2);
    }

    #[test]
    fn a_password_is_refused_in_every_form() {
        for s in [
            "host=h password=x",
            "host=h password = 'a b'",
            "postgresql://aasd:x@h/leases",
            "postgresql://aasd@h/leases?password=x",
        ] {
            assert_eq!(parse(s).unwrap_err(), ConninfoError::Password, "{s}");
        }
        assert!(matches!(
            parse("host=h colour=red"),
            Err(ConninfoError::Invalid(_))
        ));
        assert!(matches!(parse("host='h"), Err(ConninfoError::Invalid(_))));
    }

    #[test]
    fn the_password_comes_from_the_passfile() {
        let dir = std::env::temp_dir().join(format!("aasd-passfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(
            &path,
            "# comment\nother:*:*:aasd:no\n/tmp/a\\:b:5432:leases:aasd:pa:ss\n*:*:*:*:any\n",
        )
        .unwrap();
        let mode = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o640);
        let loose = parse(&format!("host=x user=x passfile={}", path.display())).unwrap();
        assert_eq!(
            loose.with_password().get_password(),
            None,
            "others may read it"
        );
        mode(0o600);
        let text = format!(
            "host='/tmp/a:b' dbname=leases user=aasd passfile='{}'",
            path.display()
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.passfile.as_deref(), Some(path.as_path()));
        assert_eq!(c.with_password().get_password(), Some(&b"pa:ss"[..]));
        let c = parse(&format!(
            "postgresql://aasd@other/leases?passfile={}",
            path.display().to_string().replace('/', "%2F")
        ))
        .unwrap();
        assert_eq!(c.with_password().get_password(), Some(&b"no"[..]));
        let c = parse(&format!(
            "host=elsewhere user=x passfile={}",
            path.display()
        ))
        .unwrap();
        assert_eq!(c.with_password().get_password(), Some(&b"any"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
