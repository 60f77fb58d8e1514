//! The line in.dhcpd logs at start-up, at every `-D` level: what it
//! serves (each interface address with the `[subnet]` covering it), the
//! subnets it reaches only through relays, and the local networks it has
//! no `[subnet]` for, whose clients get no answer. An administrator sees
//! at once whether the server looks where they meant it to.

use crate::config::Config;
use crate::net::Interface;

/// The start-up line for these interfaces (those with an IPv4 address)
/// and this configuration; `how` says how the server was started.
pub fn line(ifaces: &[&Interface], cfg: &Config, how: &str) -> String {
    let only = &cfg.server.interfaces;
    let served_here = |name: &str| only.is_empty() || only.iter().any(|n| n == name);
    let mut served = Vec::new();
    let mut unconfigured = Vec::new();
    let mut local = Vec::new();
    for iface in ifaces
        .iter()
        .filter(|i| i.name != "lo" && served_here(&i.name))
    {
        for (addr, len) in iface.addrs.iter().zip(&iface.prefixes) {
            match cfg.subnet_containing(*addr) {
                Some(s) => {
                    local.push(s.network);
                    served.push(format!(
                        "{} {addr}/{len} [subnet {}/{}]",
                        iface.name, s.network, s.prefix_len
                    ));
                }
                None => unconfigured.push(format!("{} {addr}/{len}", iface.name)),
            }
        }
    }
    let relayed: Vec<String> = cfg
        .subnets
        .iter()
        .filter(|s| !local.contains(&s.network))
        .map(|s| format!("{}/{}", s.network, s.prefix_len))
        .collect();
    let missing: Vec<&str> = only
        .iter()
        .filter(|n| !ifaces.iter().any(|i| &i.name == *n))
        .map(String::as_str)
        .collect();
    let mut line = format!(
        "in.dhcpd {} ({how}) serving {}",
        env!("CARGO_PKG_VERSION"),
        if served.is_empty() {
            "no local subnet".to_string()
        } else {
            served.join(", ")
        }
    );
    if !relayed.is_empty() {
        line.push_str(&format!("; relayed: {}", relayed.join(", ")));
    }
    if !unconfigured.is_empty() {
        line.push_str(&format!(
            "; no [subnet] for {} (not answered there)",
            unconfigured.join(", ")
        ));
    }
    if !missing.is_empty() {
        line.push_str(&format!(
            "; interfaces without an IPv4 address: {}",
            missing.join(", ")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addrs: &[(&str, u8)]) -> Interface {
        Interface {
            name: name.into(),
            addrs: addrs.iter().map(|(a, _)| a.parse().unwrap()).collect(),
            prefixes: addrs.iter().map(|(_, l)| *l).collect(),
            mtu: 1500,
        }
    }

    #[test]
    fn served_relayed_and_unconfigured() {
        let cfg = crate::config::parse(
            "[server]\ninterfaces = eth0, eth1, eth9\n\
             [subnet 192.168.2.0/24]\n[subnet 192.168.3.0/24]\n",
            "t.conf",
        )
        .unwrap();
        let lo = iface("lo", &[("127.0.0.1", 8)]);
        let eth0 = iface("eth0", &[("192.168.2.1", 24), ("10.9.0.1", 24)]);
        let eth1 = iface("eth1", &[]);
        let eth2 = iface("eth2", &[("172.16.0.1", 16)]);
        assert_eq!(
            line(&[&lo, &eth0, &eth1, &eth2], &cfg, "standalone"),
            format!(
                "in.dhcpd {} (standalone) serving eth0 192.168.2.1/24 [subnet 192.168.2.0/24]; \
                 relayed: 192.168.3.0/24; no [subnet] for eth0 10.9.0.1/24 (not answered \
                 there); interfaces without an IPv4 address: eth9",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
