//! BOOTP: forwarded to CMU bootpd with `-b` (under inetd, and with in.dhcpd
//! standalone), and answered from dhcpd.conf without it, statically or from
//! a pool with `bootp_dynamic`.

mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::*;

/// bootpd's database: cli0's MAC gets 10.77.0.50 (dhcpd.conf gives it .60).
const BOOTPTAB: &str = "cli0:ht=ether:ha=027700000010:ip=10.77.0.50:\
                        sm=255.255.255.0:gw=10.77.0.1:bf=pxelinux.0:\n";

/// cli0 is a DHCP client of in.dhcpd at 10.77.0.60.
const DHCPD_CONF: &str = "[subnet 10.77.0.0/24]\nrouters = 10.77.0.1\n\
                          [client 02:77:00:00:00:10]\nip_address = 10.77.0.60\n\
                          boot_file = from-dhcpd\n";

fn write(net: &Net, name: &str, text: &str) -> String {
    let path = net.path(name);
    fs::write(&path, text).unwrap();
    path
}

/// A BOOTP probe and a DHCP client (udhcpc) on cli0 at the same time: the
/// first gets bootpd's answer, the second in.dhcpd's. Returns the probe's
/// JSON.
fn bootp_and_dhcp_together(net: &mut Net) -> String {
    let cli = net.ns("cli");
    let probe = thread::spawn(move || {
        let out = tool_in(&cli, "bootp-probe.py")
            .arg("cli0")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let (_, hook, out) = net.start_udhcpc();
    let lease = last_lease(&hook).unwrap_or_else(|| panic!("udhcpc: {}", read(&out)));
    assert_eq!(lease.ip, "10.77.0.60", "the DHCP client is in.dhcpd's");
    probe.join().unwrap()
}

#[test]
fn bootp_goes_to_bootpd_under_inetd_and_dhcp_stays_with_us() {
    let mut net = Net::new(false);
    let conf = write(&net, "dhcpd.conf", DHCPD_CONF);
    let tab = write(&net, "bootptab", BOOTPTAB);
    // The SCO inetd.conf pair, with Debian's CMU bootpd as in.bootpd.
    let lines = format!(
        "bootps\tdgram\tudp4\twait\troot\t{}\tin.dhcpd -b bootps-alt -c {conf}\n\
         bootps-alt\tdgram\tudp4\twait\troot\t/usr/sbin/bootpd\tbootpd -t 1 {tab}\n",
        server_bin()
    );
    net.start_inetd_conf(&lines, &["bootps-alt\t950/udp"]);
    // The first request wakes in.dhcpd: it carries no arrival interface.
    let first = net
        .bootp_probe("cli", &[])
        .expect("the waking request is answered");
    assert_eq!(field(&first, "from"), "10.77.0.1:67", "{first}");
    assert_eq!(field(&first, "siaddr"), "10.77.0.1", "{first}");
    let reply = bootp_and_dhcp_together(&mut net);
    assert_eq!(field(&reply, "yiaddr"), "10.77.0.50", "{reply}");
    // Relayed by in.dhcpd: from the BOOTP server port, to the client port.
    assert_eq!(field(&reply, "from"), "10.77.0.1:67", "{reply}");
    assert_eq!(field(&reply, "to"), "10.77.0.50:68", "{reply}");
    assert_eq!(field(&reply, "siaddr"), "10.77.0.1", "{reply}");
    assert_eq!(field(&reply, "giaddr"), "0.0.0.0", "{reply}");
    assert_eq!(
        field(&reply, "file"),
        "/pxelinux.0",
        "bootpd's answer: {reply}"
    );
    assert_eq!(option(&reply, 1), Some("ffffff00"), "{reply}");
    assert_eq!(option(&reply, 53), None, "{reply}");
}

#[test]
fn standalone_forwards_to_socket_activated_bootpd() {
    let mut net = Net::new(false);
    let conf = write(&net, "dhcpd.conf", DHCPD_CONF);
    let tab = write(&net, "bootptab", BOOTPTAB);
    // bootpd on port 950, its socket made by systemd-socket-activate.
    let srv = net.ns("srv");
    net.spawn_cmd(
        &[
            &tool("nsrun.sh"),
            &srv,
            "systemd-socket-activate",
            "--datagram",
            "--inetd",
            "-l",
            "0.0.0.0:950",
            "/usr/sbin/bootpd",
            "-d",
            "2",
            &tab,
        ],
        &[],
        Path::new(&net.path("bootpd.log")),
    );
    assert!(wait_for(
        &net.path("bootpd.log"),
        "Listening",
        Duration::from_secs(5)
    ));
    let (_, log) = net.start_standalone(&conf, &["-b", "950"]);
    let reply = bootp_and_dhcp_together(&mut net);
    assert_eq!(
        field(&reply, "yiaddr"),
        "10.77.0.50",
        "{reply}\n{}",
        read(&log)
    );
    assert_eq!(field(&reply, "from"), "10.77.0.1:67", "{reply}");
    assert!(read(&log).contains("forwarded to bootpd at 127.0.0.1:950"));
    assert!(read(&log).contains("BOOTREPLY from bootpd on 10.77.0.50"));
}

#[test]
fn bootpd_holding_its_port_alone_answers_clients_itself() {
    let mut net = Net::new(false);
    let conf = write(&net, "dhcpd.conf", DHCPD_CONF);
    let tab = write(&net, "bootptab", BOOTPTAB);
    // CMU bootpd standalone binds its port without SO_REUSEADDR.
    let srv = net.ns("srv");
    let bind = net.services(&["bootps\t950/udp"]);
    net.spawn_cmd(
        &[&tool("nsrun.sh"), &srv, "bootpd", "-s", "-d", "3", &tab],
        &[("NSRUN_BIND", &bind)],
        Path::new(&net.path("bootpd.log")),
    );
    assert!(wait_for(
        &net.path("bootpd.log"),
        "read 1 entries",
        Duration::from_secs(5)
    ));
    thread::sleep(Duration::from_millis(200));
    let (_, log) = net.start_standalone(&conf, &["-b", "950"]);
    assert!(
        read(&log).contains("bootpd answers BOOTP clients itself"),
        "{}",
        read(&log)
    );
    let reply = net
        .bootp_probe("cli", &[])
        .unwrap_or_else(|| panic!("no reply: {}", read(&log)));
    assert_eq!(field(&reply, "yiaddr"), "10.77.0.50", "{reply}");
    assert_eq!(field(&reply, "from"), "10.77.0.1:950", "{reply}");
}

#[test]
fn bootp_without_b_is_served_from_dhcpd_conf() {
    let mut net = Net::new(false);
    let conf = write(&net, "dhcpd.conf", DHCPD_CONF);
    let (_, log) = net.start_standalone(&conf, &[]);
    let reply = net
        .bootp_probe("cli", &[])
        .unwrap_or_else(|| panic!("no reply: {}", read(&log)));
    assert_eq!(field(&reply, "yiaddr"), "10.77.0.60", "{reply}");
    assert_eq!(field(&reply, "from"), "10.77.0.1:67", "{reply}");
    assert_eq!(field(&reply, "to"), "10.77.0.60:68", "{reply}");
    assert_eq!(field(&reply, "len"), "300", "{reply}");
    assert_eq!(field(&reply, "file"), "from-dhcpd", "{reply}");
    assert_eq!(option(&reply, 3), Some("0a4d0001"), "{reply}");
    for dhcp_only in [51, 53, 54] {
        assert_eq!(option(&reply, dhcp_only), None, "{reply}");
    }
    // RFC 951 client: no cookie in, none out; broadcast flag honoured.
    let plain = net
        .bootp_probe("cli", &["--no-vend", "--broadcast"])
        .unwrap();
    assert_eq!(field(&plain, "vend_zero"), "true", "{plain}");
    assert_eq!(field(&plain, "to"), "255.255.255.255:68", "{plain}");
    // Unknown and without bootp_dynamic: nothing, and the log says why.
    assert!(net
        .bootp_probe("cli", &["--mac", "02:77:00:00:00:99"])
        .is_none());
    assert!(read(&log).contains("BOOTREQUEST from 02:77:00:00:00:99: no client entry"));
}

#[test]
fn dynamic_bootp_gets_a_pool_address_forever_only_when_enabled() {
    let mut net = Net::new(false);
    let aconf = net.aasd_conf("", "[pool Near]\nrange = 10.77.0.100-10.77.0.120\n");
    net.start_aasd("srv", &aconf);
    let base = format!(
        "[server]\naas_socket = {}\n[subnet 10.77.0.0/24]\npool = Near\nrouters = 10.77.0.1\n",
        net.path("aasd.sock")
    );
    let conf = write(&net, "dhcpd.conf", &base);
    let (_, log) = net.start_standalone(&conf, &[]);
    let mac = "02:77:00:00:00:42";
    assert!(net.bootp_probe("cli", &["--mac", mac]).is_none());
    assert!(
        read(&log).contains("bootp_dynamic is off"),
        "{}",
        read(&log)
    );
    // Turned on by editing the file: in.dhcpd rereads it before the next packet.
    let conf = write(
        &net,
        "dhcpd.conf",
        &base.replace("[server]\n", "[server]\nbootp_dynamic = yes\n"),
    );
    settle(&conf);
    let reply = net
        .bootp_probe("cli", &["--mac", mac])
        .unwrap_or_else(|| panic!("no reply: {}", read(&log)));
    let ip = field(&reply, "yiaddr").to_string();
    assert!(ip.starts_with("10.77.0.1"), "{reply}");
    let (_, rows) = net.aasadmin(&["list", &format!("client=10.77.0.0/1/{mac}")]);
    assert!(rows.contains(&ip) && rows.contains("leased"), "{rows}");
    assert!(rows.contains("never"), "the lease never ends: {rows}");
    // Booting again: the same address.
    let again = net.bootp_probe("cli", &["--mac", mac]).unwrap();
    assert_eq!(field(&again, "yiaddr"), ip, "{again}");
}
