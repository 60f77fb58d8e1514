//! The transaction log and checkpoints of in.aasd.
//!
//! Both are one file format: an 8-byte header, then records, each the whole
//! new state of one address:
//!
//! ```text
//! 0xA5 | len: u16 LE | payload (len bytes) | CRC-32 of payload: u32 LE
//! payload: seq u64 | addr u32 | state u8 | disabled u8 | reserved u64 |
//!          end u64 | released u64 | service: u8 len + bytes | client: u8 len + bytes
//!          [| host: u8 len + bytes]
//! ```
//!
//! The host name came later: a record without it (all of an older log)
//! has none, and one is written only when there is a name, so a log of
//! leases without names is still what an older in.aasd reads.
//!
//! Replaying a file is setting each address to its newest record, so a
//! compacted log (one record per address) and a checkpoint are the same
//! thing. A record cut short or failing its checksum is skipped to the next
//! frame that checks out, and every skip is reported with its offset. Only
//! a last record cut short is a torn write; any other damage at the end is
//! corruption, which the newest checkpoint fills as it fills a hole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::db::{Db, Entry, Records};

use crate::aas::lease::State;
use crate::{log_detail, log_error, log_info};

pub const HEADER: &[u8; 8] = b"AASDLOG1";
const MARK: u8 = 0xA5;
/// seq + addr + state + disabled + 3 times: the payload without its strings.
const FIXED: usize = 8 + 4 + 1 + 1 + 8 + 8 + 8;
/// The fixed part and three names of at most 255 bytes, each with its length.
const MAX_PAYLOAD: usize = FIXED + 3 * (1 + 255);
pub const LOG_NAME: &str = "aasd.log";
/// Held with flock(2) while an in.aasd uses the database directory.
pub const LOCK_NAME: &str = "lock";

/// CRC-32 (IEEE 802.3, reflected), as zlib computes it. crc32fast folds
/// 16 bytes a step with PCLMULQDQ where the CPU has it: start-up checks
/// every record of the log. Which code to use is found once, not per
/// record: a fresh hasher is copied.
pub fn crc32(data: &[u8]) -> u32 {
    static FRESH: OnceLock<crc32fast::Hasher> = OnceLock::new();
    let mut h = FRESH.get_or_init(crc32fast::Hasher::new).clone();
    h.update(data);
    h.finalize()
}

fn state_code(s: State) -> u8 {
    match s {
        State::Free => 0,
        State::Offered => 1,
        State::Leased => 2,
        State::Declined => 3,
    }
}

/// Append one record. Service and client names are cut at 255 bytes (the
/// protocol allows no longer ones).
pub fn encode<S: AsRef<str>>(addr: u32, e: &Entry<S>, out: &mut Vec<u8>) {
    let cut = |s: &str| s.len().min(255);
    let svc = &e.service.as_ref().as_bytes()[..cut(e.service.as_ref())];
    let cli = &e.client.as_ref().as_bytes()[..cut(e.client.as_ref())];
    let host = &e.host.as_ref().as_bytes()[..cut(e.host.as_ref())];
    let len = FIXED + 2 + svc.len() + cli.len() + if host.is_empty() { 0 } else { 1 + host.len() };
    out.push(MARK);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    let start = out.len();
    out.extend_from_slice(&e.seq.to_le_bytes());
    out.extend_from_slice(&addr.to_le_bytes());
    out.push(state_code(e.state));
    out.push(u8::from(e.disabled));
    out.extend_from_slice(&e.reserved.to_le_bytes());
    out.extend_from_slice(&e.end.to_le_bytes());
    out.extend_from_slice(&e.released.to_le_bytes());
    out.push(svc.len() as u8);
    out.extend_from_slice(svc);
    out.push(cli.len() as u8);
    out.extend_from_slice(cli);
    if !host.is_empty() {
        out.push(host.len() as u8);
        out.extend_from_slice(host);
    }
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A record's fields, its names as they lie in the file: each is known to
/// be UTF-8, so that a name is text however it is taken.
fn decode_payload(p: &[u8]) -> Option<(u32, Entry<&[u8]>)> {
    let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
    if p.len() < FIXED + 2 {
        return None;
    }
    let state = match p[12] {
        0 => State::Free,
        1 => State::Offered,
        2 => State::Leased,
        3 => State::Declined,
        _ => return None,
    };
    let disabled = match p[13] {
        0 => false,
        1 => true,
        _ => return None,
    };
    // Where each name lies, after its length byte.
    let name = |at: usize| -> Option<Range<usize>> {
        let end = at + 1 + usize::from(*p.get(at)?);
        (end <= p.len()).then_some(at + 1..end)
    };
    let service = name(FIXED)?;
    let client = name(service.end)?;
    let host = match client.end {
        end if end == p.len() => end..end,
        end => name(end)?,
    };
    if host.end != p.len() {
        return None;
    }
    // Names are nearly always ASCII, which a word-at-a-time test shows;
    // only others are checked as UTF-8, one by one.
    let text = |r: &Range<usize>| std::str::from_utf8(&p[r.clone()]).is_ok();
    if !p[FIXED..].is_ascii() && ![&service, &client, &host].into_iter().all(text) {
        return None;
    }
    let (service, client, host) = (&p[service], &p[client], &p[host]);
    let addr = u32::from_le_bytes(p[8..12].try_into().expect("4 bytes"));
    Some((
        addr,
        Entry {
            seq: u64_at(0),
            state,
            disabled,
            reserved: u64_at(14),
            end: u64_at(22),
            released: u64_at(30),
            service,
            client,
            host,
        },
    ))
}

/// The frame starting at `at`, if it is whole and checks out: the record
/// and the offset after it.
fn frame_at(bytes: &[u8], at: usize) -> Option<(u32, Entry<&[u8]>, usize)> {
    if *bytes.get(at)? != MARK {
        return None;
    }
    let len = usize::from(u16::from_le_bytes(
        bytes.get(at + 1..at + 3)?.try_into().ok()?,
    ));
    // No record is longer, and checking the length first keeps the search
    // for the next good frame in a damaged file linear, not quadratic.
    if !(FIXED + 2..=MAX_PAYLOAD).contains(&len) {
        return None;
    }
    let payload = bytes.get(at + 3..at + 3 + len)?;
    let crc = u32::from_le_bytes(bytes.get(at + 3 + len..at + 7 + len)?.try_into().ok()?);
    if crc != crc32(payload) {
        return None;
    }
    let (addr, e) = decode_payload(payload)?;
    Some((addr, e, at + 7 + len))
}

/// A damaged stretch of a file: `len` bytes from `offset` were skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    pub offset: usize,
    pub len: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub records: Vec<(u32, Entry)>,
    /// Skipped stretches followed by good records.
    pub holes: Vec<Damage>,
    /// A damaged end: where the good part ends.
    pub torn_at: Option<usize>,
    /// The damaged end is one record cut short, as a write interrupted by
    /// a crash leaves it; otherwise it is corrupt (a bad byte, a bad mark).
    pub short_tail: bool,
}

/// The bytes from `at` to the end are the start of one record, cut short.
fn cut_short(bytes: &[u8], at: usize) -> bool {
    let rest = &bytes[at..];
    if rest.first() != Some(&MARK) {
        return false;
    }
    match rest.get(1..3) {
        Some(l) => {
            let len = usize::from(u16::from_le_bytes([l[0], l[1]]));
            (FIXED + 2..=MAX_PAYLOAD).contains(&len) && rest.len() < 7 + len
        }
        None => true,
    }
}

/// Read every good record of a file's bytes. `None`: no valid header, so
/// the file is not ours or is unreadable.
pub fn replay(bytes: &[u8]) -> Option<Replay> {
    let mut records = Vec::new();
    let mut w = Window::new(bytes, bytes.len());
    let r = scan(&mut w, |a, e| records.push((a, as_text(e).owned())))
        .expect("a slice reads without error")?;
    Some(Replay { records, ..r })
}

/// A decoded record with its names as text.
fn as_text<'a>(e: &Entry<&'a [u8]>) -> Entry<&'a str> {
    let text = |b: &'a [u8]| std::str::from_utf8(b).expect("checked by decode_payload");
    Entry {
        service: text(e.service),
        client: text(e.client),
        host: text(e.host),
        state: e.state,
        disabled: e.disabled,
        reserved: e.reserved,
        end: e.end,
        released: e.released,
        seq: e.seq,
    }
}

/// The longest frame: mark, length, payload, CRC.
const MAX_FRAME: usize = 3 + MAX_PAYLOAD + 4;
/// The shortest: no names, so no host name.
const MIN_FRAME: usize = 3 + FIXED + 2 + 4;
/// How much of a file start-up reads at a time.
const CHUNK: usize = 256 * 1024;

/// A file read a stretch at a time, so that start-up never holds a whole
/// log in memory besides the records taken from it: `buf[start..end]`
/// holds the file's bytes from offset `base` on. The buffer is made once,
/// a stretch and a frame long, and never grows.
struct Window<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: usize,
    /// `src` has no more bytes.
    done: bool,
}

impl<R: Read> Window<R> {
    /// Read `chunk` bytes at a time (at least one).
    fn new(src: R, chunk: usize) -> Window<R> {
        Window {
            src,
            buf: vec![0; chunk.max(1) + MAX_FRAME],
            start: 0,
            end: 0,
            base: 0,
            done: false,
        }
    }

    /// The bytes from offset `at` on: at least a whole frame's worth, or
    /// all that are left. Offsets before `at` are not asked for again.
    #[inline]
    fn from(&mut self, at: usize) -> io::Result<&[u8]> {
        if !self.done && self.base + (self.end - self.start) < at + MAX_FRAME {
            self.refill(at)?;
        }
        Ok(&self.buf[self.start + (at - self.base)..self.end])
    }

    /// Drop the bytes before `at`, move the rest to the front and read on.
    #[cold]
    fn refill(&mut self, at: usize) -> io::Result<()> {
        self.start += at - self.base;
        self.base = at;
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while !self.done && self.end < MAX_FRAME {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.done = n == 0;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Room for the records of a file of `len` bytes: no more records than
/// its shortest frames fit, and fewer bytes of names than the file's.
fn records_for(len: usize) -> Records {
    Records::with_room(len / MIN_FRAME, len)
}

/// As [`replay`], but each record goes to `take` as it is read, its names
/// borrowed from the window (each valid UTF-8), and the records of the
/// answer stay empty: start-up copies a record's names only once, into
/// the database, and checks them as text there in one go.
fn scan<R: Read>(
    w: &mut Window<R>,
    mut take: impl FnMut(u32, &Entry<&[u8]>),
) -> io::Result<Option<Replay>> {
    if w.from(0)?.get(..HEADER.len()) != Some(HEADER) {
        return Ok(None);
    }
    let mut r = Replay::default();
    let mut at = HEADER.len();
    loop {
        let rest = w.from(at)?;
        if rest.is_empty() {
            break;
        }
        if let Some((addr, e, len)) = frame_at(rest, 0) {
            take(addr, &e);
            at += len;
            continue;
        }
        // What the damage is if nothing good follows: the window holds a
        // whole frame from `at`, or all that is left.
        let short = cut_short(rest, 0);
        let mut next = at + 1;
        loop {
            let rest = w.from(next)?;
            if rest.is_empty() || frame_at(rest, 0).is_some() {
                break;
            }
            next += 1;
        }
        if w.from(next)?.is_empty() {
            r.torn_at = Some(at);
            r.short_tail = short;
            break;
        }
        r.holes.push(Damage {
            offset: at,
            len: next - at,
        });
        at = next;
    }
    Ok(Some(r))
}

/// Where the database lives and how carefully it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub database_dir: PathBuf,
    pub checkpoint_dir: PathBuf,
    pub num_checkpoints: usize,
    /// Compact the log past this size.
    pub max_db_size: u64,
    /// fsync before answering.
    pub sync: bool,
}

/// The open transaction log.
pub struct Store {
    cfg: StoreConfig,
    file: File,
    /// Bytes in the log: where the next record goes.
    len: u64,
    /// Compact again only past max(max_db_size, twice the compacted size),
    /// so a database larger than max_db_size is not rewritten every time.
    compact_at: u64,
    /// Records written since the last fsync.
    unsynced: bool,
    /// Records staged for the next flush: one write for a round of requests.
    staged: Vec<u8>,
    /// Database sequence of the newest checkpoint.
    checkpointed: u64,
    /// A write or fsync failed: what the file holds is unknown (the kernel
    /// may have dropped the dirty pages and cleared the error), so it is
    /// rewritten from memory before anything is acknowledged again.
    suspect: bool,
    /// The flock on database_dir/lock, released when in.aasd ends.
    _lock: File,
}

/// Take database_dir/lock, or fail saying who holds it.
fn lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK_NAME);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{}: another in.aasd uses this database ({} is locked)",
                    dir.display(),
                    path.display()
                ),
            ));
        }
        return Err(e);
    }
    Ok(f)
}

/// Unix seconds, for the names of files set aside.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A free name `<path>.corrupt.<unix time>[.n]` to keep a damaged file under.
fn corrupt_name(path: &Path) -> PathBuf {
    let base = format!("{}.corrupt.{}", path.display(), unix_now());
    let mut name = PathBuf::from(&base);
    let mut n = 1;
    while name.exists() {
        name = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    name
}

/// Keep a damaged log, as it is, under a second name before it is
/// rewritten: a hard link needs no space on a full disk, and the rewrite
/// (a rename over the log) leaves the old file to it.
fn keep_aside(path: &Path) {
    let to = corrupt_name(path);
    match fs::hard_link(path, &to) {
        Ok(()) => log_error!("{}: damaged log kept as {}", path.display(), to.display()),
        Err(e) => log_error!("{}: cannot keep the damaged log: {e}", to.display()),
    }
}

fn write_state_file(path: &Path, db: &Db) -> io::Result<u64> {
    let tmp = path.with_extension("new");
    let mut buf = Vec::with_capacity(HEADER.len() + db.len() * 48);
    buf.extend_from_slice(HEADER);
    for (a, e) in db.entries() {
        encode(a, &e, &mut buf);
    }
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&buf)?;
        f.sync_all()
    });
    // A full disk: the old file stays current, and the partial new one goes.
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(buf.len() as u64)
}

/// Remove what a compaction (`aasd.new`) or a checkpoint (`aasd.<seq>.new`)
/// killed half-way left behind: with the lock held nothing else writes them,
/// and the files they were to replace are still current.
fn remove_temporaries(cfg: &StoreConfig) {
    let is_temporary = |name: &str| {
        name == "aasd.new"
            || name
                .strip_prefix("aasd.")
                .and_then(|n| n.strip_suffix(".new"))
                .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
    };
    for dir in [&cfg.database_dir, &cfg.checkpoint_dir] {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        for path in rd.filter_map(|e| e.ok().map(|e| e.path())) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !is_temporary(name) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => log_info!("removed {}, left by an interrupted write", path.display()),
                Err(e) => log_error!("removing {}: {e}", path.display()),
            }
        }
    }
}

/// Checkpoint files, newest first: `aasd.<seq>.ckpt`, seq zero-padded.
pub fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("aasd.") && name.ends_with(".ckpt")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

/// The newest checkpoint that reads without damage. Damaged ones are
/// renamed aside, so they are neither used nor counted again.
fn newest_good_checkpoint(dir: &Path) -> Option<(PathBuf, Records)> {
    for path in checkpoints(dir) {
        let mut records = Records::default();
        let read = File::open(&path).and_then(|f| {
            records = records_for(f.metadata()?.len() as usize);
            scan(&mut Window::new(f, CHUNK), |a, e| {
                records.push_checked(a, e)
            })
        });
        let why = match read {
            Ok(Some(r)) if r.holes.is_empty() && r.torn_at.is_none() => {
                return Some((path, records))
            }
            Ok(Some(r)) => {
                let at = r.holes.first().map_or(r.torn_at, |h| Some(h.offset));
                format!("damaged at offset {}", at.unwrap_or(0))
            }
            Ok(None) => "not a checkpoint (bad header)".into(),
            Err(e) => e.to_string(),
        };
        let to = corrupt_name(&path);
        let kept = match fs::rename(&path, &to) {
            Ok(()) => format!("kept as {}", to.display()),
            Err(e) => format!("cannot set it aside: {e}"),
        };
        log_error!(
            "checkpoint {}: {why}: trying an older one; {kept}",
            path.display()
        );
    }
    None
}

impl Store {
    /// Open the log and rebuild `db` from it. A torn tail (a last record
    /// cut short) is cut. Any other damage, a missing or unreadable log, or
    /// a log that ends before the newest checkpoint (a power cut with
    /// `sync = never`) brings in the newest good checkpoint, and the log is
    /// then rewritten from the result.
    pub fn open(cfg: StoreConfig, db: &mut Db) -> io::Result<Store> {
        fs::create_dir_all(&cfg.database_dir)?;
        let lock = lock(&cfg.database_dir)?;
        fs::create_dir_all(&cfg.checkpoint_dir)?;
        remove_temporaries(&cfg);
        reuse_freed_buffers();
        let path = cfg.database_dir.join(LOG_NAME);
        let mut rewrite = false;
        let mut from_log = Records::default();
        let mut log_newest = 0;
        let mut log_len = 0;
        let read = File::open(&path).and_then(|f| {
            log_len = f.metadata()?.len() as usize;
            from_log = records_for(log_len);
            scan(&mut Window::new(f, CHUNK), |a, e| {
                log_newest = log_newest.max(e.seq);
                from_log.push_checked(a, e);
            })
        });
        if read.is_err() {
            // Unreadable half-way: as a log that cannot be read at all.
            (from_log, log_newest) = (Records::default(), 0);
        }
        let need_checkpoint = match read {
            Ok(Some(r)) => {
                for h in &r.holes {
                    log_error!(
                        "{}: damaged records at offset {}, {} bytes skipped",
                        path.display(),
                        h.offset,
                        h.len
                    );
                }
                let mut corrupt_end = false;
                if let Some(at) = r.torn_at {
                    let what = if r.short_tail {
                        "torn tail"
                    } else {
                        corrupt_end = true;
                        "corrupt tail"
                    };
                    log_error!(
                        "{}: {what} at offset {at}: {} bytes cut",
                        path.display(),
                        log_len.saturating_sub(at)
                    );
                    rewrite = true;
                }
                if rewrite || !r.holes.is_empty() {
                    keep_aside(&path);
                }
                !r.holes.is_empty() || corrupt_end
            }
            // Emptied (truncated by a crash or by hand): as if lost.
            Ok(None) if log_len == 0 => true,
            Ok(None) => {
                log_error!(
                    "{}: not a transaction log (bad header): rebuilding from checkpoints",
                    path.display()
                );
                keep_aside(&path);
                true
            }
            // First start, or the log was lost: a checkpoint tells.
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                log_error!("{}: {e}: rebuilding from checkpoints", path.display());
                true
            }
        };
        if need_checkpoint {
            rewrite = true;
            if let Some((ckpt, records)) = newest_good_checkpoint(&cfg.checkpoint_dir) {
                log_info!(
                    "recovering from checkpoint {} ({} records)",
                    ckpt.display(),
                    records.len()
                );
                load(db, records);
            }
        } else if newest_checkpoint_seq(&cfg.checkpoint_dir) > log_newest {
            // The log lost records the checkpoint holds (it is fsynced even
            // when the log is not). A checkpoint may be named after a change
            // that was undone, so only records newer than the log count.
            if let Some((ckpt, records)) = newest_good_checkpoint(&cfg.checkpoint_dir) {
                let newer = records.newer_than(log_newest);
                if newer > 0 {
                    log_error!(
                        "{}: ends before checkpoint {} ({newer} newer records): merging it",
                        path.display(),
                        ckpt.display()
                    );
                    load(db, records);
                    rewrite = true;
                }
            }
        }
        // Records in log order; the newest of each address wins over an
        // older checkpoint entry.
        load(db, from_log);
        give_back_free_memory();
        let len = if rewrite {
            write_state_file(&path, db)?
        } else {
            fs::metadata(&path)?.len()
        };
        let file = OpenOptions::new().write(true).open(&path)?;
        let checkpointed = newest_checkpoint_seq(&cfg.checkpoint_dir);
        // Later checkpoints must sort after it.
        db.raise_seq(checkpointed);
        log_detail!(
            "{}: {} addresses known, log {len} bytes",
            path.display(),
            db.len()
        );
        Ok(Store {
            compact_at: cfg.max_db_size.max(len * 2),
            cfg,
            file,
            len,
            unsynced: false,
            staged: Vec::new(),
            checkpointed,
            suspect: false,
            _lock: lock,
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    pub fn log_path(&self) -> PathBuf {
        self.cfg.database_dir.join(LOG_NAME)
    }

    /// Append records. `db` must already hold them: after an earlier
    /// failure the whole log is rewritten from it instead. On failure the
    /// log is cut back to where it was, so a half-written record never sits
    /// before later ones, and it is rewritten before the next append. The
    /// daemon stages and flushes instead; the tests write one step at a time.
    #[cfg(test)]
    pub fn append(&mut self, records: &[(u32, &Entry)], db: &Db) -> io::Result<()> {
        if self.suspect {
            return self.compact(db);
        }
        let mut buf = Vec::with_capacity(records.len() * 64);
        for (a, e) in records {
            encode(*a, e, &mut buf);
        }
        self.write_staged(&buf)
    }

    /// Add records to what the next [`Store::flush`] writes. `db` must
    /// hold them by then.
    pub fn stage(&mut self, records: &[(u32, &Entry)]) {
        for (a, e) in records {
            encode(*a, e, &mut self.staged);
        }
    }

    /// Write the staged records, then fsync what was written since the last
    /// call, if `sync = always`. A failure is not retried: the log is
    /// rewritten from `db` at the next write.
    pub fn flush(&mut self, db: &Db) -> io::Result<()> {
        if !self.staged.is_empty() {
            let staged = std::mem::take(&mut self.staged);
            let written = if self.suspect {
                self.compact(db)
            } else {
                self.write_staged(&staged)
            };
            // The buffer is kept for the next round.
            self.staged = staged;
            self.staged.clear();
            written?;
        }
        if self.cfg.sync && self.unsynced {
            self.unsynced = false;
            if let Err(e) = self.file.sync_data() {
                self.suspect = true;
                return Err(e);
            }
        }
        self.unsynced = false;
        Ok(())
    }

    fn write_staged(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.file.write_all_at(buf, self.len) {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.unsynced = true;
                Ok(())
            }
            Err(e) => {
                self.suspect = true;
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// A write or fsync failed and the log has not been rewritten since.
    pub fn suspect(&self) -> bool {
        self.suspect
    }

    pub fn wants_compaction(&self) -> bool {
        self.len > self.compact_at
    }

    /// Rewrite the log as one record per address (write new, fsync, rename).
    pub fn compact(&mut self, db: &Db) -> io::Result<()> {
        let path = self.log_path();
        let before = self.len;
        let reopened = write_state_file(&path, db)
            .and_then(|len| Ok((len, OpenOptions::new().write(true).open(&path)?)));
        let (len, file) = match reopened {
            Ok(r) => r,
            Err(e) => {
                // Renamed but not reopened: our descriptor is the old,
                // unlinked file, so nothing may be appended through it.
                let ino = |m: io::Result<fs::Metadata>| m.ok().map(|m| m.ino());
                if ino(fs::metadata(&path)) != ino(self.file.metadata()) {
                    self.suspect = true;
                }
                // Try again only once the log has grown as much again.
                self.compact_at = self.compact_at.max(self.len * 2);
                return Err(e);
            }
        };
        self.file = file;
        self.len = len;
        self.compact_at = self.cfg.max_db_size.max(len * 2);
        self.unsynced = false;
        if self.suspect {
            log_info!(
                "{}: rewritten from memory after a failed write",
                path.display()
            );
            self.suspect = false;
        }
        log_detail!("compacted {}: {before} -> {len} bytes", path.display());
        Ok(())
    }

    /// Write a checkpoint, unless nothing changed since the last one and
    /// it is not forced, and keep the newest `num_checkpoints`.
    pub fn checkpoint(&mut self, db: &Db, force: bool) -> io::Result<Option<PathBuf>> {
        let newest = checkpoints(&self.cfg.checkpoint_dir).first().cloned();
        if db.seq() == self.checkpointed && newest.is_some() {
            return Ok(if force { newest } else { None });
        }
        let path = self
            .cfg
            .checkpoint_dir
            .join(format!("aasd.{:020}.ckpt", db.seq()));
        write_state_file(&path, db)?;
        self.checkpointed = db.seq();
        for old in checkpoints(&self.cfg.checkpoint_dir)
            .iter()
            .skip(self.cfg.num_checkpoints.max(1))
        {
            if let Err(e) = fs::remove_file(old) {
                log_error!("removing old checkpoint {}: {e}", old.display());
            }
        }
        log_detail!("checkpoint {}", path.display());
        Ok(Some(path))
    }
}

/// Take large buffers from the heap, not from mappings of their own, so
/// that memory a buffer frees is used again: the file read at start-up
/// and its records, once freed, hold the database built from them, and a
/// compaction's buffer the next one's. A page touched for the first time
/// costs a fault, far more than its use.
fn reuse_freed_buffers() {
    // SAFETY: mallopt only sets a parameter of the allocator.
    #[cfg(target_env = "gnu")]
    unsafe {
        // glibc's largest threshold on 64-bit systems.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// Return to the system the pages that start-up's buffers held: freed
/// between the database's own allocations, glibc would keep them.
fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The database sequence the newest checkpoint is named after; 0 if none.
fn newest_checkpoint_seq(dir: &Path) -> u64 {
    checkpoints(dir)
        .first()
        .and_then(|p| checkpoint_seq(p))
        .unwrap_or(0)
}

fn checkpoint_seq(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("aasd.")?
        .strip_suffix(".ckpt")?
        .parse()
        .ok()
}

/// Apply records: each address takes the record with the highest sequence.
fn load(db: &mut Db, records: Records) {
    let skipped = db.load_records(records);
    if skipped > 0 {
        log_info!("{skipped} records name addresses in no pool: dropped");
    }
}

#[cfg(test)]
mod tests;
