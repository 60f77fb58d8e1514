//! Faults around in.aasd: a full disk, flipped bytes in the log and in a
//! checkpoint, a second in.aasd on the same database, a checkpoint
//! directory gone, and an AAS that is down, hangs or answers garbage.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, sleep, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use indhcpd::aas::proto::{Code, Reply};

const POOLS: &str = "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n\
                     [pool Far]\nrange = 10.78.0.100-10.78.0.120\n\
                     [pool Line]\nrange = 10.99.0.1-10.99.0.250\n";

/// `ALLOC Line ppp <client>`: the address given, or the reply.
fn alloc(net: &Net, client: &str) -> Result<String, Reply> {
    let reply = ask_aas(net, &[alloc_request("Line", "ppp", client, 3600)]).remove(0);
    allocated(reply).map(|a| a.to_string())
}

/// Whether `reply` says in.aasd could not write.
fn io_error(reply: &Reply) -> bool {
    matches!(reply, Reply::Err { code: Code::Io, .. })
}

/// The row of `aasadmin query`, to check an address is leased to `client`.
fn assert_leased(net: &Net, addr: &str, client: &str) {
    let (code, text) = net.aasadmin(&["query", addr]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("leased") && text.contains(client),
        "{addr} should be leased to {client}: {text}"
    );
}

fn dhcpd_conf(net: &Net, extra: &str) -> String {
    let text = fs::read_to_string(config("dynamic.conf"))
        .unwrap()
        .replace("AAS_SOCKET", &net.path("aasd.sock"));
    let path = net.path("dhcpd.conf");
    fs::write(&path, text + extra).unwrap();
    path
}

/// SIGTERM, and wait until it is gone.
fn stop(pid: u32) {
    kill(pid);
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(5) {
        sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "in.aasd {pid} did not exit");
}

#[test]
fn disk_full_gives_no_ack_and_the_service_resumes_when_space_is_back() {
    let mut net = Net::new(false);
    let db_dir = net.dir.join("aasdb");
    let _mount = Mount::new(&db_dir, "64k");
    let aconf = net.aasd_conf("", POOLS);
    let mut aasd = net.start_aasd("srv", &aconf);
    let conf = dhcpd_conf(&net, "");
    let (_, dlog) = net.start_standalone(&conf, &[]);

    let mut acked = vec![("before".to_string(), alloc(&net, "before").unwrap())];
    let good = checkpoint(&net).unwrap();
    let filler = Mount::fill(&db_dir);

    // Records fill the log's last page, then a write fails: ERR io, and
    // everything answered OK until then stays acknowledged.
    let long = "x".repeat(200);
    let mut refused = None;
    for i in 0..100 {
        let client = format!("c{i}-{long}");
        match alloc(&net, &client) {
            Ok(a) => acked.push((client, a)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a write should fail on the full disk");
    assert!(io_error(&refused), "{refused}");
    let alog = net.path("aasd.log");
    assert!(
        read(&alog).contains("No space left on device"),
        "{}",
        read(&alog)
    );
    // The next request must rewrite the log first, which fails too; its
    // temporary file does not stay behind.
    assert!(io_error(&alloc(&net, "second").unwrap_err()));
    assert!(!db_dir.join("aasd.new").exists());
    // A checkpoint fails the same way and leaves the older one current.
    let ckpt = checkpoint(&net).unwrap_err();
    assert!(io_error(&ckpt), "{ckpt}");
    let names: Vec<String> = fs::read_dir(db_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert_eq!(names, [good.display().to_string()]);

    // A real client gets nothing: no OFFER, no ACK, no NAK, and nothing is
    // offered or leased to it.
    assert!(get_lease(&mut net, Client::Udhcpc, "cli", "cli0").is_none());
    let text = read(&dlog);
    assert!(text.contains("DHCPDISCOVER"), "{text}");
    for kind in ["DHCPOFFER", "DHCPACK", "DHCPNAK"] {
        assert!(
            !text.contains(kind),
            "{kind} while the disk is full: {text}"
        );
    }
    let (_, listing) = net.aasadmin(&["list", "pool=Near"]);
    assert!(
        !listing.contains("offered") && !listing.contains("leased"),
        "{listing}"
    );

    // Space back: the log is rewritten, the client gets its lease.
    fs::remove_file(&filler).unwrap();
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease once space is back: {}", read(&dlog)));
    assert!(
        read(&alog).contains("rewritten from memory"),
        "{}",
        read(&alog)
    );

    // All of it is on disk: it survives a SIGKILL and a restart, and the
    // log reads without damage.
    kill9(aasd);
    let before_restart = read(&alog).len();
    aasd = net.start_aasd("srv", &aconf);
    assert_leased(&net, &lease.ip, "/id/01027700000010");
    for (client, addr) in &acked {
        assert_leased(&net, addr, &client[..client.len().min(20)]);
    }
    let restart_lines = &read(&alog)[before_restart..];
    assert!(
        !restart_lines.contains("damaged") && !restart_lines.contains("torn"),
        "{restart_lines}"
    );
    assert!(alive(aasd));
}

/// Start offsets of the records of a log or checkpoint file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 8;
    while at + 3 <= bytes.len() {
        v.push(at);
        let len = u16::from_le_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        at += 3 + len + 4;
    }
    v
}

/// Flip a byte inside the payload of record `n`; its offset.
fn damage_record(path: &Path, n: usize) -> (usize, Vec<u8>) {
    let mut bytes = fs::read(path).unwrap();
    let at = record_offsets(&bytes)[n];
    bytes[at + 12] ^= 0x55;
    fs::write(path, &bytes).unwrap();
    (at, bytes)
}

/// Files in `dir` kept aside as damaged.
fn set_aside(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt."))
        .collect()
}

#[test]
fn flipped_bytes_in_the_log_are_reported_by_offset_and_recovered() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOLS);
    let aasd = net.start_aasd("srv", &conf);
    let a = alloc(&net, "a").unwrap();
    let b = alloc(&net, "b").unwrap();
    checkpoint(&net).unwrap();
    let c = alloc(&net, "c").unwrap();
    stop(aasd);

    // b's record (the second) is damaged; b is in the checkpoint.
    let log = net.dir.join("aasdb").join("aasd.log");
    let (at, damaged) = damage_record(&log, 1);
    let alog = net.path("aasd.log");
    let before = read(&alog).len();
    net.start_aasd("srv", &conf);
    let lines = &read(&alog)[before..];
    assert!(
        lines.contains(&format!("aasd.log: damaged records at offset {at},")),
        "{lines}"
    );
    assert!(lines.contains("recovering from checkpoint"), "{lines}");
    for (addr, client) in [(&a, "ppp      a"), (&b, "ppp      b"), (&c, "ppp      c")] {
        assert_leased(&net, addr, client);
    }
    // The damaged log is kept as it was, beside the rewritten one.
    let kept = set_aside(&net.dir.join("aasdb"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), damaged);
    assert!(lines.contains(&kept[0].display().to_string()), "{lines}");
}

#[test]
fn a_damaged_newest_checkpoint_gives_way_to_the_older_one() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOLS);
    let aasd = net.start_aasd("srv", &conf);
    let a = alloc(&net, "a").unwrap();
    let b = alloc(&net, "b").unwrap();
    let older = checkpoint(&net).unwrap();
    let c = alloc(&net, "c").unwrap();
    let newest = checkpoint(&net).unwrap();
    assert_ne!(older, newest);
    stop(aasd);

    // Damage in the log sends in.aasd to the checkpoints; the newest one is
    // damaged too, in its second record.
    let log = net.dir.join("aasdb").join("aasd.log");
    damage_record(&log, 1);
    let (at, _) = damage_record(&newest, 1);
    let alog = net.path("aasd.log");
    let before = read(&alog).len();
    net.start_aasd("srv", &conf);
    let lines = &read(&alog)[before..];
    assert!(
        lines.contains(&format!(
            "checkpoint {}: damaged at offset {at}: trying an older one",
            newest.display()
        )),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("recovering from checkpoint {}", older.display())),
        "{lines}"
    );
    // a and c from the log, b from the older checkpoint.
    for (addr, client) in [(&a, "ppp      a"), (&b, "ppp      b"), (&c, "ppp      c")] {
        assert_leased(&net, addr, client);
    }
    // Renamed aside, not deleted, and no longer taken for a checkpoint.
    assert!(!newest.exists());
    let kept = set_aside(newest.parent().unwrap());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(older.exists());
}

/// Every client of `clients` holds its address, and nothing else is leased.
fn assert_all_leased(net: &Net, clients: &[(String, String)]) {
    let (code, text) = net.aasadmin(&["list", "state=leased"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("{} address(es)", clients.len())),
        "{text}"
    );
    for (client, addr) in clients {
        assert_leased(net, addr, &format!("ppp      {client}"));
    }
}

#[test]
fn damage_at_the_end_of_the_log_brings_in_the_checkpoint() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("sync = never\n", POOLS);
    let aasd = net.start_aasd("srv", &conf);
    let leases: Vec<(String, String)> = (0..20)
        .map(|i| {
            let c = format!("c{i:02}");
            let a = alloc(&net, &c).unwrap();
            (c, a)
        })
        .collect();
    checkpoint(&net).unwrap();
    kill9(aasd);
    let log = net.dir.join("aasdb").join("aasd.log");
    let alog = net.path("aasd.log");

    // A power cut with sync = never: the log keeps its first third, the
    // fsynced checkpoint all 20. A later checkpoint was cut short too.
    let bytes = fs::read(&log).unwrap();
    fs::write(&log, &bytes[..bytes.len() / 3]).unwrap();
    let half = net
        .dir
        .join("aasdb/checkpoints/aasd.00000000000000000099.new");
    fs::write(&half, &bytes[..30]).unwrap();
    let before = read(&alog).len();
    let aasd = net.start_aasd("srv", &conf);
    let lines = read(&alog)[before..].to_string();
    assert!(lines.contains("ends before checkpoint"), "{lines}");
    assert!(!half.exists(), "{lines}");
    assert!(
        lines.contains(&format!(
            "removed {}, left by an interrupted write",
            half.display()
        )),
        "{lines}"
    );
    assert_all_leased(&net, &leases);
    stop(aasd);

    // One byte flipped in the last record of the log (now rewritten whole,
    // as new as the checkpoint): corrupt, not torn.
    let mut bytes = fs::read(&log).unwrap();
    let last = *record_offsets(&bytes).last().unwrap();
    bytes[last + 12] ^= 0x55;
    fs::write(&log, &bytes).unwrap();
    let before = read(&alog).len();
    net.start_aasd("srv", &conf);
    let lines = read(&alog)[before..].to_string();
    assert!(lines.contains("corrupt tail at offset"), "{lines}");
    assert!(lines.contains("recovering from checkpoint"), "{lines}");
    assert_all_leased(&net, &leases);
    // What is lost is never handed out again.
    let next = alloc(&net, "newcomer").unwrap();
    assert!(leases.iter().all(|(_, a)| *a != next), "{next}");
}

#[test]
fn a_second_aasd_on_the_same_database_exits_1() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOLS);
    let first = net.start_aasd("srv", &conf);
    // Another socket, so only the database is shared.
    let conf2 = net.path("aasd2.conf");
    let text = read(&conf).replace(&net.path("aasd.sock"), &net.path("aasd2.sock"));
    fs::write(&conf2, text).unwrap();
    let out = Command::new("timeout")
        .args(["10", aasd_bin(), "-D", "3", "-c", &conf2])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another in.aasd uses this database") && err.contains("aasdb/lock"),
        "{err}"
    );
    assert!(!Path::new(&net.path("aasd2.sock")).exists());
    // The first goes on serving, and once it is gone the lock is free.
    assert!(alloc(&net, "a").is_ok());
    stop(first);
    net.start_aasd("srv", &conf);
    assert!(alloc(&net, "b").is_ok());
}

#[test]
fn a_missing_checkpoint_dir_is_an_error_line_and_retried() {
    let mut net = Net::new(false);
    let ckpt = net.dir.join("ckpt");
    let extra = format!(
        "checkpoint_intvl = 1\ncheckpoint_dir = {}\n",
        ckpt.display()
    );
    let conf = net.aasd_conf(&extra, POOLS);
    let aasd = net.start_aasd("srv", &conf);
    alloc(&net, "a").unwrap();
    let alog = net.path("aasd.log");
    fs::remove_dir_all(&ckpt).unwrap();
    let want = format!("checkpoint in {}: No such file", ckpt.display());
    assert!(
        wait_for(&alog, &want, Duration::from_secs(5)),
        "{}",
        read(&alog)
    );
    // Serving goes on.
    let b = alloc(&net, "b").unwrap();
    fs::create_dir(&ckpt).unwrap();
    let t0 = Instant::now();
    let written = loop {
        let found: Vec<PathBuf> = fs::read_dir(&ckpt)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".ckpt"))
            .collect();
        if let Some(p) = found.first() {
            break p.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "no checkpoint");
        sleep(Duration::from_millis(100));
    };
    // It holds b, written while the directory was missing.
    let bytes = fs::read(&written).unwrap();
    assert!(bytes.windows(2).any(|w| w == b"\x01b"), "b's record");
    assert!(alive(aasd));
    assert_leased(&net, &b, "ppp      b");
}

// ------------------------------------------------------------ a fake AAS

#[derive(Clone, Copy)]
enum Misbehave {
    Garbage,
    CutShort,
    Late,
}

/// A fake in.aasd at `path`: each request line gets a wrong answer.
struct Fake {
    stop: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Fake {
    fn start(path: &Path, how: Misbehave) -> Fake {
        let l = UnixListener::bind(path).unwrap();
        // As in.aasd makes its socket: mode 0660, for in.dhcpd (which runs
        // as nobody and keeps the socket's group, as Net::aasd_conf sets it).
        fs::set_permissions(path, fs::Permissions::from_mode(0o660)).unwrap();
        std::os::unix::fs::chown(path, None, Some(TEST_SOCKET_GID)).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let (s2, a2) = (stop.clone(), asked.clone());
        let thread = thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let Ok((conn, _)) = l.accept() else {
                    sleep(Duration::from_millis(10));
                    continue;
                };
                let a3 = a2.clone();
                thread::spawn(move || answer(conn, how, &a3));
            }
        });
        Fake {
            stop,
            asked,
            thread: Some(thread),
            path: path.to_path_buf(),
        }
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

fn answer(conn: UnixStream, how: Misbehave, asked: &AtomicUsize) {
    conn.set_nonblocking(false).unwrap();
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    while r.read_line(&mut line).is_ok_and(|n| n > 0) {
        asked.fetch_add(1, Ordering::SeqCst);
        let w = r.get_mut();
        match how {
            Misbehave::Garbage => {
                let _ = w.write_all(b"\x00\xff\x13garbage\n");
            }
            Misbehave::CutShort => {
                let _ = w.write_all(b"OK 10.77.0.1");
                return;
            }
            Misbehave::Late => {
                sleep(Duration::from_secs(5));
                let _ = w.write_all(b"OK 10.77.0.100 3600 now\n");
            }
        }
        line.clear();
    }
    let _ = r.read_to_end(&mut Vec::new());
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

const DYN_MAC: &str = "02:77:00:00:00:31";
const STATIC_MAC: &str = "02:77:00:00:00:20";

#[test]
fn an_aas_down_hung_or_talking_garbage_means_silence_then_reconnection() {
    let mut net = Net::new(false);
    let sock = PathBuf::from(net.path("aasd.sock"));
    let conf = dhcpd_conf(
        &net,
        &format!("\n[client {STATIC_MAC}]\nip_address = 10.77.0.60\n"),
    );
    let cli = net.ns("cli");
    let dynamic = |net: &Net| {
        net.probe(
            &cli,
            &["cli0", "--mac", DYN_MAC, "--broadcast", "--timeout", "2"],
        )
    };
    let fixed = |net: &Net| {
        let r = net.probe(&cli, &["cli0", "--mac", STATIC_MAC, "--broadcast"]);
        let r = r.expect("the static client is served");
        assert_eq!(field(&r, "type"), "offer", "{r}");
        assert_eq!(field(&r, "yiaddr"), "10.77.0.60", "{r}");
    };

    let fake = Fake::start(&sock, Misbehave::Garbage);
    let (dhcpd, dlog) = net.start_standalone(&conf, &[]);
    assert_eq!(dynamic(&net), None);
    assert_eq!(dynamic(&net), None);
    fixed(&net);
    assert!(fake.asked() >= 2, "the fake was asked");
    assert!(
        read(&dlog).contains("answer is not text"),
        "{}",
        read(&dlog)
    );
    drop(fake);

    for how in [Misbehave::CutShort, Misbehave::Late] {
        let fake = Fake::start(&sock, how);
        let t0 = Instant::now();
        assert_eq!(dynamic(&net), None);
        fixed(&net);
        assert!(fake.asked() >= 1, "the fake was asked");
        // The late one costs in.dhcpd one timeout, not five seconds.
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        drop(fake);
    }

    // Nothing at the socket: silence too, even to a REQUEST (no NAK).
    assert_eq!(dynamic(&net), None);
    let req = net.probe(
        &cli,
        &[
            "cli0",
            "--mac",
            DYN_MAC,
            "--type",
            "request",
            "--requested",
            "10.77.0.100",
            "--broadcast",
            "--timeout",
            "2",
        ],
    );
    assert_eq!(req, None, "no answer, and no NAK, while the AAS is down");
    fixed(&net);
    assert!(alive(dhcpd));
    // One error line for all of it: at most one a minute.
    let text = read(&dlog);
    let complaints = text.lines().filter(|l| l.contains("AAS at")).count();
    assert_eq!(complaints, 1, "{text}");

    // The real in.aasd at that path: in.dhcpd reconnects by itself.
    let aconf = net.aasd_conf("", POOLS);
    let aasd = net.start_aasd("srv", &aconf);
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0")
        .unwrap_or_else(|| panic!("no lease after the AAS came back: {}", read(&dlog)));
    assert!(lease.ip.starts_with("10.77.0.1"), "{lease:?}");

    // Killed between two requests: silence again, then the same lease.
    kill9(aasd);
    let id = format!("61:01{}", CLI_MAC.replace(':', ""));
    let renew = [
        "cli0",
        "--type",
        "request",
        "--requested",
        &lease.ip,
        "--opt",
        &id,
        "--broadcast",
        "--timeout",
        "2",
    ];
    assert_eq!(net.probe(&cli, &renew), None);
    net.start_aasd("srv", &aconf);
    let r = net
        .probe(&cli, &renew)
        .expect("an answer once in.aasd is back");
    assert_eq!(field(&r, "type"), "ack", "{r}");
    assert_eq!(field(&r, "yiaddr"), lease.ip, "{r}");
    assert!(alive(dhcpd));
}
