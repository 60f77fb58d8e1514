//! The named options of dhcpd.conf: RFC 2132 §3–9 (the ones a server
//! sends) plus a few later ones administrators use, with their value types.

/// How an option's value is written in the file and encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ip,
    /// One or more addresses, comma or space separated.
    IpList,
    /// Pairs of addresses: `10.0.0.0 255.0.0.0, ...` (policy filter, static routes).
    IpPairs,
    U8,
    U16,
    U32,
    I32,
    /// `yes`/`no` and friends, one byte 1/0 on the wire.
    Bool,
    /// ASCII text.
    Text,
    U16List,
    /// RFC 3397: domain names in DNS wire form.
    DomainList,
    /// RFC 3442: `prefix/len router, ...`.
    ClasslessRoutes,
}

use Kind::*;

/// (code, name, kind), in code order.
pub const OPTIONS: &[(u8, &str, Kind)] = &[
    (2, "time_offset", I32),
    (3, "routers", IpList),
    (4, "time_servers", IpList),
    (5, "name_servers", IpList),
    (6, "domain_name_servers", IpList),
    (7, "log_servers", IpList),
    (8, "cookie_servers", IpList),
    (9, "lpr_servers", IpList),
    (10, "impress_servers", IpList),
    (11, "resource_location_servers", IpList),
    (12, "host_name", Text),
    (13, "boot_size", U16),
    (14, "merit_dump", Text),
    (15, "domain_name", Text),
    (16, "swap_server", Ip),
    (17, "root_path", Text),
    (18, "extensions_path", Text),
    (19, "ip_forwarding", Bool),
    (20, "non_local_source_routing", Bool),
    (21, "policy_filter", IpPairs),
    (22, "max_datagram_reassembly", U16),
    (23, "default_ip_ttl", U8),
    (24, "path_mtu_aging_timeout", U32),
    (25, "path_mtu_plateau_table", U16List),
    (26, "interface_mtu", U16),
    (27, "all_subnets_local", Bool),
    (28, "broadcast_address", Ip),
    (29, "perform_mask_discovery", Bool),
    (30, "mask_supplier", Bool),
    (31, "perform_router_discovery", Bool),
    (32, "router_solicitation_address", Ip),
    (33, "static_routes", IpPairs),
    (34, "trailer_encapsulation", Bool),
    (35, "arp_cache_timeout", U32),
    (36, "ethernet_encapsulation", Bool),
    (37, "tcp_default_ttl", U8),
    (38, "tcp_keepalive_interval", U32),
    (39, "tcp_keepalive_garbage", Bool),
    (40, "nis_domain", Text),
    (41, "nis_servers", IpList),
    (42, "ntp_servers", IpList),
    (44, "netbios_name_servers", IpList),
    (45, "netbios_dd_servers", IpList),
    (46, "netbios_node_type", U8),
    (47, "netbios_scope", Text),
    (48, "x_font_servers", IpList),
    (49, "x_display_managers", IpList),
    (64, "nisplus_domain", Text),
    (65, "nisplus_servers", IpList),
    (66, "tftp_server_name", Text),
    (67, "bootfile_name", Text),
    (68, "mobile_ip_home_agents", IpList),
    (69, "smtp_servers", IpList),
    (70, "pop3_servers", IpList),
    (71, "nntp_servers", IpList),
    (72, "www_servers", IpList),
    (73, "finger_servers", IpList),
    (74, "irc_servers", IpList),
    (75, "streettalk_servers", IpList),
    (76, "stda_servers", IpList),
    (119, "domain_search", DomainList),
    (121, "classless_static_routes", ClasslessRoutes),
];

/// Codes the server fills in itself (or that have their own keys), which
/// `option_N` must not set.
pub const RESERVED: &[(u8, &str)] = &[
    (0, "pad"),
    (1, "the subnet mask comes from `mask`"),
    (50, "requested address is the client's"),
    (51, "use lease_time"),
    (52, "overload is set by option_overload"),
    (53, "message type is the server's"),
    (54, "server identifier is the arrival interface's address"),
    (55, "parameter request list is the client's"),
    (57, "maximum message size is the client's"),
    (58, "use renewal_percent"),
    (59, "use rebind_percent"),
    (61, "client identifier is the client's"),
    (82, "relay agent information is the relay's"),
    (255, "end"),
];

pub fn by_name(name: &str) -> Option<(u8, Kind)> {
    OPTIONS
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(c, _, k)| (*c, *k))
}

pub fn reserved(code: u8) -> Option<&'static str> {
    RESERVED
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in OPTIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "{:?}", w[1]);
        }
        assert_eq!(by_name("routers"), Some((3, IpList)));
        assert!(OPTIONS.iter().all(|(c, _, _)| reserved(*c).is_none()));
    }
}
