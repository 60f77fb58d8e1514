//! The configuration file as in.dhcpd watches it: which version was taken,
//! and whether the version on disk is finished.
//!
//! A file is taken only when it has been left alone for [`SETTLE`] and did
//! not change while it was read, so a reload never takes the first half of
//! a file that an editor or `cp` is still writing (a prefix often parses:
//! `ip_address = 10.77.0.10` cut from `10.77.0.100`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{parse, read_text, Config, ConfigError};

/// How long a file must stand still before it is read.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What identifies one version of the file: a rewrite or a rename changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// A file read whole while it stood still: its configuration, or the
/// errors in it.
pub type Loaded = Result<Config, Vec<ConfigError>>;

pub struct Watch {
    path: PathBuf,
    /// The version last read, good or bad: a broken file is reported once.
    taken: Option<Stamp>,
    /// A newer version not yet taken, and when it was first seen: a file
    /// whose time is ahead of the clock is taken once it stood still that
    /// long by our own clock.
    pending: Option<(Stamp, Instant)>,
}

impl Watch {
    pub fn new(path: PathBuf) -> Watch {
        Watch {
            path,
            taken: None,
            pending: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file on disk is another version than the one taken.
    pub fn changed(&self) -> bool {
        stamp(&self.path) != self.taken
    }

    /// Read the file if it has settled; `None` when it was written less
    /// than [`SETTLE`] ago or changed while read, to be tried again later.
    /// A file that cannot be stat'ed is read at once, for its error.
    pub fn load(&mut self) -> Option<Loaded> {
        let Some(before) = stamp(&self.path) else {
            self.taken = None;
            self.pending = None;
            return Some(super::load(&self.path));
        };
        let first_seen = match self.pending {
            Some((s, at)) if s == before => at,
            _ => {
                let now = Instant::now();
                self.pending = Some((before, now));
                now
            }
        };
        let age = before
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        let settled = age.is_some_and(|a| a >= SETTLE) || first_seen.elapsed() >= SETTLE;
        if !settled {
            return None;
        }
        let text = read_text(&self.path);
        if stamp(&self.path) != Some(before) {
            return None;
        }
        self.taken = Some(before);
        self.pending = None;
        let file = self.path.display().to_string();
        Some(text.map_err(|e| vec![e]).and_then(|t| parse(&t, &file)))
    }

    /// [`Watch::load`] until the file settles, for a start with no
    /// configuration to keep serving; `None` when it is still being
    /// written after `limit`.
    pub fn load_when_settled(&mut self, limit: Duration) -> Option<Loaded> {
        let t0 = Instant::now();
        loop {
            if let Some(r) = self.load() {
                return Some(r);
            }
            if t0.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn file(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("indhcpd-watch-{}-{name}", std::process::id()));
        fs::write(&p, text).unwrap();
        p
    }

    fn age(path: &Path, secs: u64) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    const GOOD: &str = "[subnet 10.0.0.0/24]\n";

    #[test]
    fn a_fresh_file_waits_an_old_one_is_taken_once() {
        let p = file("fresh", GOOD);
        let mut w = Watch::new(p.clone());
        assert!(w.load().is_none());
        assert!(w.changed());
        age(&p, 2);
        assert!(matches!(w.load(), Some(Ok(_))));
        assert!(!w.changed());
        let _ = fs::remove_file(&p);
    }

    #[test]
    fn a_file_dated_in_the_future_is_taken_after_standing_still() {
        let p = file("future", GOOD);
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
        let mut w = Watch::new(p.clone());
        assert!(w.load().is_none());
        let got = w.load_when_settled(Duration::from_secs(5));
        assert!(matches!(got, Some(Ok(_))), "{got:?}");
        let _ = fs::remove_file(&p);
    }

    #[test]
    fn a_missing_file_is_read_at_once_for_its_error() {
        let mut w = Watch::new(PathBuf::from("/nonexistent/dhcpd.conf"));
        assert!(matches!(w.load(), Some(Err(_))));
    }
}
