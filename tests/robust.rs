//! Robustness of in.dhcpd (issue 18): a dhcpd.conf caught half-written, a
//! hung in.aasd under load, and a starvation flood against a small pool.

mod common;

use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// A file rewritten in place (as `cp` does) and cut inside
/// `ip_address = 10.77.0.100` after `10.77.0.10` parses, and names an
/// address that belongs to someone else: it must never be taken while it
/// is being written; the finished file is taken once it settles.
#[test]
fn a_half_written_dhcpd_conf_is_never_taken() {
    let mut net = Net::new(false);
    let conf = net.path("dhcpd.conf");
    let head = format!(
        "[server]\naas_socket = {}\n\n[subnet 10.77.0.0/24]\nrouters = 10.77.0.1\n\n\
         [client {CLI_MAC}]\nip_address = ",
        net.path("no-aasd.sock")
    );
    fs::write(&conf, format!("{head}10.77.0.50\n")).unwrap();
    let (pid, log) = net.start_standalone(&conf, &[]);
    let lease = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a first lease");
    assert_eq!(lease.ip, "10.77.0.50");

    // The first half, then a writer still at work: the file's time keeps
    // moving while the real client asks.
    let mut f = fs::File::options()
        .write(true)
        .truncate(true)
        .open(&conf)
        .unwrap();
    f.write_all(format!("{head}10.77.0.10").as_bytes()).unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let toucher = {
        let (writing, conf) = (writing.clone(), conf.clone());
        thread::spawn(move || {
            let f = fs::File::options().write(true).open(&conf).unwrap();
            while writing.load(Ordering::SeqCst) {
                f.set_modified(SystemTime::now()).unwrap();
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut during = Vec::new();
    for _ in 0..2 {
        during.push(get_lease(&mut net, Client::Udhcpc, "cli", "cli0"));
    }
    writing.store(false, Ordering::SeqCst);
    toucher.join().unwrap();
    f.write_all(b"0\n").unwrap();
    drop(f);
    for l in &during {
        let l = l
            .as_ref()
            .unwrap_or_else(|| panic!("no lease: {}", read(&log)));
        assert_eq!(l.ip, "10.77.0.50", "the half-written file was taken");
    }

    // Finished and left alone: taken within a few seconds.
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < Duration::from_secs(10) {
        last = get_lease(&mut net, Client::Udhcpc, "cli", "cli0");
        if last.as_ref().is_some_and(|l| l.ip == "10.77.0.100") {
            break;
        }
    }
    assert_eq!(last.map(|l| l.ip).as_deref(), Some("10.77.0.100"));
    let text = read(&log);
    assert!(!text.contains("on 10.77.0.10 "), "{text}");
    assert!(alive(pid));
}
