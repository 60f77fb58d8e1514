//! The COOKBOOK of in.dhcpd.conf(5), taken from the page itself and served
//! to clients that send what real firmware and iPXE send, so the page
//! cannot drift from what the server does.

mod common;

use std::fs;

use common::*;

/// The literal block that follows the `.Ss` heading `title` in the page.
fn example(title: &str) -> String {
    let page = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/in.dhcpd.conf.5"))
        .expect("man/in.dhcpd.conf.5");
    let after = page
        .split(&format!(".Ss {title}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no .Ss {title}"));
    let block = after.split(".Bd -literal -offset indent\n").nth(1).unwrap();
    block.split("\n.Ed").next().unwrap().to_string()
}

/// in.aasd with `pools`, then in.dhcpd on `example` (checked with -C
/// first) behind it, as the page says to run them.
fn serve(net: &mut Net, pools: &str, example: &str) {
    let aasd = net.aasd_conf("", pools);
    net.start_aasd("srv", &aasd);
    let conf = net.path("dhcpd.conf");
    let text = format!(
        "[server]\naas_socket = {}\n\n{example}\n",
        net.path("aasd.sock")
    );
    fs::write(&conf, text).unwrap();
    settle(&conf);
    let check = std::process::Command::new(server_bin())
        .args(["-C", "-c", &conf])
        .output()
        .unwrap();
    assert!(check.status.success(), "-C: {check:?}");
    net.start_standalone(&conf, &[]);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn pxe_by_architecture_with_an_ipxe_chainload() {
    let mut net = Net::new(false);
    // The page's documentation subnet becomes the test network's.
    let text =
        example("PXE by architecture, with an iPXE chainload").replace("192.0.2.", "10.77.0.");
    serve(
        &mut net,
        "[pool Lab]\nrange = 10.77.0.100-10.77.0.150\n",
        &text,
    );
    let cli = net.ns("cli");
    let offer = |mac: &str, opts: &[(u8, &[u8])]| {
        let mut args = vec![
            "cli0".to_string(),
            "--mac".into(),
            mac.into(),
            "--broadcast".into(),
        ];
        for (code, value) in opts {
            args.push("--opt".into());
            args.push(format!("{code}:{}", hex(value)));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = net.probe(&cli, &args).expect("an OFFER");
        assert_eq!(field(&reply, "type"), "offer", "{reply}");
        assert_eq!(
            field(&reply, "siaddr"),
            "10.77.0.10",
            "next_server: {reply}"
        );
        field(&reply, "file").to_string()
    };
    let bios = b"PXEClient:Arch:00000:UNDI:002001";
    let uefi = b"PXEClient:Arch:00007:UNDI:003016";
    assert_eq!(offer("02:77:00:00:01:01", &[(60, bios)]), "undionly.kpxe");
    assert_eq!(offer("02:77:00:00:01:02", &[(60, uefi)]), "ipxe.efi");
    // iPXE loaded by UEFI firmware: the same vendor class, and user class iPXE.
    assert_eq!(
        offer("02:77:00:00:01:02", &[(60, uefi), (77, b"iPXE")]),
        "http://10.77.0.10/boot.ipxe"
    );
}

#[test]
fn a_second_subnet_on_a_full_link() {
    let mut net = Net::new(false);
    // The page's subnets become 10.77.0.0/24 and 10.99.0.0/24, both on srv0.
    let text = example("A second subnet on a full link")
        .replace("192.0.2.", "10.77.0.")
        .replace("198.51.100.", "10.99.0.");
    sh(&[
        "ip",
        "-n",
        &net.ns("srv"),
        "addr",
        "add",
        "10.99.0.1/24",
        "brd",
        "+",
        "dev",
        "srv0",
    ]);
    let pools =
        "[pool Vlan20]\naddress = 10.77.0.100\n[pool Vlan20b]\nrange = 10.99.0.100-10.99.0.150\n";
    serve(&mut net, pools, &text);
    // The first subnet's one address, then the second subnet's.
    let first = get_lease(&mut net, Client::Udhcpc, "cli", "cli0").expect("a lease");
    assert_eq!(first.ip, "10.77.0.100");
    assert_eq!(first.routers, "10.77.0.1");
    let cli = net.ns("cli");
    let offer = net
        .probe(&cli, &["cli0", "--mac", "02:77:00:00:02:01", "--broadcast"])
        .expect("an OFFER from the second subnet");
    assert!(field(&offer, "yiaddr").starts_with("10.99.0."), "{offer}");
    // Another machine: with cli0's MAC, dhclient would be the same client
    // as udhcpc (one address across boot stages) and get .100 back.
    sh(&[
        "ip",
        "-n",
        &cli,
        "link",
        "set",
        "cli0",
        "address",
        "02:77:00:00:02:02",
    ]);
    let second = get_lease(&mut net, Client::Dhclient, "cli", "cli0").expect("a lease");
    assert!(second.ip.starts_with("10.99.0."), "{second:?}");
    assert_eq!(second.routers, "10.99.0.1", "{second:?}");
}
