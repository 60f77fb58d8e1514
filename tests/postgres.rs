//! in.aasd on PostgreSQL, with real parts: a cluster of the test's own
//! (tests/common/pg.rs), real in.aasd processes sharing it.

mod common;

use common::pg::Cluster;

/// The harness itself: a cluster comes up, takes a role with a password
/// read from a passfile, and is gone with its directory when dropped.
#[test]
fn harness_cluster_with_passfile() {
    let c = Cluster::start();
    c.create_user_db("aasd", "s3cret", "leases");
    let passfile = c.passfile("aasd", "s3cret");
    let out = std::process::Command::new(common::pg::bin_dir().join("psql"))
        .args(["-X", "-A", "-t", "-w", "-c", "SELECT current_user"])
        .arg(c.conninfo("aasd", "leases"))
        .env("PGPASSFILE", &passfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "aasd");
    // Without the passfile the role is refused.
    let out = c.psql("aasd", "leases", "SELECT 1");
    assert!(!out.status.success());
    let (dir, pid) = (c.path().to_path_buf(), c.pid().unwrap());
    drop(c);
    assert!(!dir.exists());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
