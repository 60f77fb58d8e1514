//! in.aasd on its own: aasadmin's commands, reload rules, the socket's
//! mode, configuration errors, and recovery from a torn or lost log.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::*;

const POOL: &str = "[pool P]\nrange = 10.0.0.10-10.0.0.19\n";

/// Send protocol lines straight to in.aasd; the answer line of each.
fn ask(net: &Net, lines: &[&str]) -> Vec<String> {
    let s = UnixStream::connect(net.path("aasd.sock")).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    lines
        .iter()
        .map(|l| {
            writeln!(w, "{l}").unwrap();
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            a.trim_end().to_string()
        })
        .collect()
}

#[test]
fn aasadmin_commands_checkpoints_and_reload_rules() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("checkpoint_intvl = 1\n", POOL);
    net.start_aasd("srv", &conf);
    let mode = fs::metadata(net.path("aasd.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    let a = ask(
        &net,
        &[
            "ALLOC P ppp line1 3600",
            "ALLOC P ppp line2 3600 exact=10.0.0.12",
        ],
    );
    assert_eq!(a[0].split(' ').nth(1), Some("10.0.0.10"), "{a:?}");
    assert!(a[1].starts_with("OK 10.0.0.12 "), "{a:?}");

    let (code, text) = net.aasadmin(&["query", "10.0.0.10"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("10.0.0.10  P     leased  ppp      line1"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["disable", "10.0.0.11"]).0, 0);
    let (_, text) = net.aasadmin(&["list", "state=disabled"]);
    assert!(
        text.contains("10.0.0.11") && text.contains("1 address(es)"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["release", "10.0.0.10"]).0, 0);
    let (_, text) = net.aasadmin(&["--json", "stats"]);
    assert!(
        text.contains("\"pool\": \"P\", \"size\": 10, \"leased\": 1, \"offered\": 0, \"free\": 8, \"disabled\": 1, \"declined\": 0"),
        "{text}"
    );
    assert_eq!(net.aasadmin(&["enable", "10.0.0.11"]).0, 0);
    let (code, text) = net.aasadmin(&["release", "10.9.9.9"]);
    assert_eq!(code, 1);
    assert!(text.contains("refused (notinpool)"), "{text}");

    // Checkpoints: on demand, and by the timer after a change.
    let (code, text) = net.aasadmin(&["checkpoint"]);
    assert_eq!(code, 0, "{text}");
    let ckdir = net.path("aasdb/checkpoints");
    let count = || fs::read_dir(&ckdir).unwrap().count();
    assert_eq!(count(), 1);
    ask(&net, &["ALLOC P ppp line3 3600"]);
    sleep(Duration::from_millis(2500));
    assert_eq!(count(), 2, "the timer wrote one after the change");

    // A new file without 10.0.0.12 (leased) is refused; the pools stay.
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("10.0.0.19", "10.0.0.11"),
    )
    .unwrap();
    let (code, text) = net.aasadmin(&["reload"]);
    assert_eq!(code, 1);
    assert!(
        text.contains("reload refused") && text.contains("10.0.0.12"),
        "{text}"
    );
    assert!(read(&net.path("aasd.log")).contains("reload refused"));
    // A larger pool is taken.
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("10.0.0.11\n", "10.0.0.29\n"),
    )
    .unwrap();
    assert_eq!(net.aasadmin(&["reload"]).0, 0);
    let (_, text) = net.aasadmin(&["stats", "P"]);
    assert!(text.contains("P     20"), "{text}");

    let (code, text) = net.aasadmin_at(Path::new("/nonexistent/aasd.sock"), &["stats"]);
    assert_eq!(code, 1);
    assert!(text.contains("is in.aasd running?"), "{text}");
}

#[test]
fn configuration_errors_name_file_and_line() {
    let net = Net::new(false);
    let conf = net.aasd_conf(
        "sync = sometimes\n",
        "[pool A]\nrange = 10.0.0.1-10.0.0.9\n[pool B]\naddress = 10.0.0.5\n",
    );
    let out = Command::new(aasd_bin())
        .args(["-C", "-c", &conf])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{conf}:3: sync: \"sometimes\" is not always or never"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{conf}:8: 10.0.0.5 overlaps 10.0.0.1-10.0.0.9 of pool A"
        )),
        "{err}"
    );
}

#[test]
fn torn_tail_is_cut_and_a_lost_log_comes_back_from_the_checkpoint() {
    let mut net = Net::new(false);
    let conf = net.aasd_conf("", POOL);
    let pid = net.start_aasd("srv", &conf);
    let a = ask(
        &net,
        &[
            "ALLOC P ppp a 3600",
            "ALLOC P ppp b 3600",
            "CHECKPOINT",
            "ALLOC P ppp c 3600",
        ],
    );
    assert!(a.iter().all(|l| l.starts_with("OK")), "{a:?}");
    kill9(pid);
    // A write torn by a crash: half a record at the end.
    let log = net.path("aasdb/aasd.log");
    let good = fs::metadata(&log).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&[0xA5, 40, 0, 1, 2, 3])
        .unwrap();
    let pid = net.start_aasd("srv", &conf);
    assert!(read(&net.path("aasd.log")).contains(&format!(
        "torn or corrupt tail at offset {good}: 6 bytes cut"
    )));
    assert_eq!(fs::metadata(&log).unwrap().len(), good);
    let (_, text) = net.aasadmin(&["list", "state=leased"]);
    assert!(text.contains("3 address(es)"), "{text}");

    // The log lost: the checkpoint (a and b) is what is left.
    kill9(pid);
    fs::remove_file(&log).unwrap();
    net.start_aasd("srv", &conf);
    assert!(read(&net.path("aasd.log")).contains("recovering from checkpoint"));
    let (_, text) = net.aasadmin(&["list", "state=leased"]);
    assert!(
        text.contains("2 address(es)") && text.contains(" a ") && text.contains(" b "),
        "{text}"
    );
}
