//! Logging: syslog (facility daemon) or stderr, filtered by the `-D` level.
//!
//! Level 0 logs errors only; 1 adds each exchange (DHCPOFFER, DHCPACK, ...);
//! 2 adds decisions (ignored clients, reloads); 3 adds every dropped packet.
//! The logger is process-wide, like syslog itself; it is set once at start-up.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Info = 1,
    Detail = 2,
    Debug = 3,
}

enum Sink {
    /// Before `init`, and when asked for: stderr with the program name.
    Stderr,
    Syslog(Logger<LoggerBackend, Formatter3164>),
    /// Under inetd fd 2 is the socket and there may be no syslog: say nothing.
    Nowhere,
}

struct State {
    level: Level,
    program: &'static str,
    sink: Sink,
}

static STATE: Mutex<State> = Mutex::new(State {
    level: Level::Error,
    program: "in.dhcpd",
    sink: Sink::Stderr,
});

/// The level of `STATE`, readable without the lock: most lines of a busy
/// server are above it, and must cost nothing.
static LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Stderr,
    /// Syslog; when it cannot be reached, stderr if `stderr_ok`, else nowhere.
    Syslog {
        stderr_ok: bool,
    },
}

/// Set the program name (also the syslog ident), the level and the target.
pub fn init(program: &'static str, level: u8, target: Target) {
    let level = match level {
        0 => Level::Error,
        1 => Level::Info,
        2 => Level::Detail,
        _ => Level::Debug,
    };
    let sink = match target {
        Target::Stderr => Sink::Stderr,
        Target::Syslog { stderr_ok } => {
            let formatter = Formatter3164 {
                facility: Facility::LOG_DAEMON,
                hostname: None,
                process: program.into(),
                pid: std::process::id(),
            };
            match syslog::unix(formatter) {
                Ok(logger) => Sink::Syslog(logger),
                Err(e) if stderr_ok => {
                    // Said once, here: every later line goes the same way.
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "{program}: syslog cannot be reached ({e}): logging to standard error"
                    );
                    Sink::Stderr
                }
                Err(_) => Sink::Nowhere,
            }
        }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    *state = State {
        level,
        program,
        sink,
    };
}

thread_local! {
    /// While [`capture`] runs on this thread: every line, at every level.
    static CAPTURED: RefCell<Option<Vec<(Level, String)>>> = const { RefCell::new(None) };
    /// Whether CAPTURED is on, for the cheap test in [`enabled`].
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with this thread's log lines, at every level (as `-D 3`), kept
/// instead of written: for tests and fuzz targets that check what is logged.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<(Level, String)>) {
    capture_lines(true, f)
}

/// As [`capture`], but only the lines the log level lets through are made
/// (the others cost nothing, as outside a capture): for lines to be
/// written later or dropped (in.dhcpd's lane).
pub fn capture_shown<R>(f: impl FnOnce() -> R) -> (R, Vec<(Level, String)>) {
    capture_lines(false, f)
}

/// `f`'s log lines kept; `every`: at every level, else at the log level's.
fn capture_lines<R>(every: bool, f: impl FnOnce() -> R) -> (R, Vec<(Level, String)>) {
    let outer = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
    let was = CAPTURING.with(|c| c.replace(every));
    let r = f();
    CAPTURING.with(|c| c.set(was));
    let lines = CAPTURED.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (r, lines.unwrap_or_default())
}

fn captured(level: Level, args: &fmt::Arguments<'_>) -> bool {
    CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push((level, args.to_string()));
            true
        }
        None => false,
    })
}

/// Whether lines go to standard error (asked for, or syslog could not be
/// reached): a detaching daemon must then keep its stderr open.
pub fn to_stderr() -> bool {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    matches!(state.sink, Sink::Stderr)
}

/// Is a line at `level` written? Lets callers skip building costly text.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed) || CAPTURING.with(|c| c.get())
}

pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if captured(level, &args) {
        return;
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if level > state.level {
        return;
    }
    let program = state.program;
    match &mut state.sink {
        Sink::Stderr => {
            let _ = writeln!(std::io::stderr().lock(), "{program}: {args}");
        }
        Sink::Syslog(logger) => {
            let line = args.to_string();
            let _ = match level {
                Level::Error => logger.err(line),
                Level::Info | Level::Detail => logger.info(line),
                Level::Debug => logger.debug(line),
            };
        }
        Sink::Nowhere => {}
    }
}

/// A warning: shown at every `-D` level, as errors are, but sent to
/// syslog as a warning.
pub fn warning(args: fmt::Arguments<'_>) {
    unfiltered(true, format_args!("warning: {args}"));
}

/// A line for every `-D` level that is no error (the start-up summary):
/// syslog priority notice.
pub fn notice(args: fmt::Arguments<'_>) {
    unfiltered(false, args);
}

fn unfiltered(warning: bool, args: fmt::Arguments<'_>) {
    if captured(Level::Error, &args) {
        return;
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let program = state.program;
    match &mut state.sink {
        Sink::Stderr => {
            let _ = writeln!(std::io::stderr().lock(), "{program}: {args}");
        }
        Sink::Syslog(logger) if warning => {
            let _ = logger.warning(args.to_string());
        }
        Sink::Syslog(logger) => {
            let _ = logger.notice(args.to_string());
        }
        Sink::Nowhere => {}
    }
}

/// Events of one kind (`key`) are logged at most `burst` times a minute;
/// the rest are counted, and the count goes out with the next line of that
/// kind after the minute. So a flood of one bad packet cannot flood syslog.
/// Keys remembered at once (a flood of random MACs cannot grow it further).
const MAX_KEYS: usize = 4096;

struct Window {
    start: std::time::Instant,
    logged: u32,
    suppressed: u64,
}

thread_local! {
    static WINDOWS: RefCell<std::collections::HashMap<String, Window>> =
        RefCell::new(std::collections::HashMap::new());
}

/// Write a line of kind `key` unless this minute's burst is used up;
/// whether it was written.
pub fn limited(level: Level, key: &str, burst: u32, args: fmt::Arguments<'_>) -> bool {
    if !enabled(level) {
        return false;
    }
    let now = std::time::Instant::now();
    let minute = std::time::Duration::from_secs(60);
    let verdict = WINDOWS.with(|w| {
        let mut windows = w.borrow_mut();
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            windows.retain(|_, win| now.duration_since(win.start) < minute);
            if windows.len() >= MAX_KEYS {
                return None;
            }
        }
        let win = windows.entry(key.to_string()).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut earlier = 0;
        if now.duration_since(win.start) >= minute {
            earlier = win.suppressed;
            *win = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if win.logged >= burst {
            win.suppressed += 1;
            return None;
        }
        win.logged += 1;
        Some(earlier)
    });
    match verdict {
        Some(0) => write(level, args),
        Some(n) => write(
            level,
            format_args!("{args} ({n} more like this not logged)"),
        ),
        None => return false,
    }
    true
}

/// `log_limited!(Level::Error, key, burst, "format", args...)`: a line of
/// kind `key` at most `burst` times a minute (see [`limited`]); whether it
/// was written.
#[macro_export]
macro_rules! log_limited {
    ($level:expr, $key:expr, $burst:expr, $($arg:tt)*) => {
        $crate::log::limited($level, $key, $burst, format_args!($($arg)*))
    };
}

#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Error) {
            $crate::log::write($crate::log::Level::Error, format_args!($($arg)*))
        }
    };
}
#[macro_export]
macro_rules! log_warning {
    ($($arg:tt)*) => {
        $crate::log::warning(format_args!($($arg)*))
    };
}
#[macro_export]
macro_rules! log_notice {
    ($($arg:tt)*) => {
        $crate::log::notice(format_args!($($arg)*))
    };
}
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Info) {
            $crate::log::write($crate::log::Level::Info, format_args!($($arg)*))
        }
    };
}
#[macro_export]
macro_rules! log_detail {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Detail) {
            $crate::log::write($crate::log::Level::Detail, format_args!($($arg)*))
        }
    };
}
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*))
        }
    };
}

/// Client-supplied text made safe for one log line: printable ASCII kept,
/// everything else (NUL, newline, escapes, non-UTF-8) written as \xNN.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// Unix time as `YYYY-MM-DD HH:MM:SS` (UTC), without a date crate.
pub fn utc(t: u64) -> String {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A lease end for a log line: UTC date and time, or `never`.
pub fn utc_text(t: u64) -> String {
    if t == u64::MAX {
        "never".into()
    } else {
        format!("{} UTC", utc(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(u64::MAX), "never");
    }

    #[test]
    fn escape_keeps_lines_single_and_plain() {
        assert_eq!(escape(b"host-1"), "host-1");
        assert_eq!(
            escape(b"a\nb\0\x1b[31m%n\\"),
            "a\\x0ab\\x00\\x1b[31m%n\\x5c"
        );
        assert_eq!(escape(&[0xff, 0xfe]), "\\xff\\xfe");
    }
}
