//! Sections to a typed [`Config`], with every error collected.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::path::Path;

use super::hashing::Fast;
use super::keys::{self, Key};
use super::optable;
use super::optrules::{self, RuleError};
use super::source::{lex, Entry, Section};
use super::value::{self, ValueError};
use super::*;

/// What is wrong with a value or a section header that is not one of
/// [`ValueError`]; the caller adds file, line and key.
#[derive(Clone, Debug, PartialEq)]
pub enum Invalid {
    Value(ValueError),
    /// Against what the option's RFC allows.
    Rule(RuleError),
    ShortClientId,
    NotClientKey(String),
    NotHardwareType(String),
    /// A header read as hardware type 0, with this many address bytes.
    HardwareTypeZero(usize),
    HardwareLength {
        htype: u8,
        name: &'static str,
        want: usize,
        got: usize,
    },
    /// A user option's value of this many bytes, none or too many.
    UserOptionLength(usize),
    /// A user option's value of this many bytes, against its own limits.
    OutsideLengths(usize),
}

/// What a mistyped Ethernet header is told.
const ETHERNET: &str =
    "an Ethernet address has 6 bytes (00:40:05:12:34:56, or 1:00:40:05:12:34:56)";

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Value(e) => e.fmt(f),
            Invalid::Rule(e) => e.fmt(f),
            Invalid::ShortClientId => {
                f.write_str("a client identifier has at least 2 bytes (RFC 2132)")
            }
            Invalid::NotClientKey(arg) => {
                write!(f, "\"{arg}\" is not type:address, id:hex or opaque NAME")
            }
            Invalid::NotHardwareType(t) => write!(f, "\"{t}\" is not a hardware type number"),
            Invalid::HardwareTypeZero(n) => write!(
                f,
                "read as hardware type 0, which does not exist, and {n} address byte(s): \
                 {ETHERNET}"
            ),
            Invalid::HardwareLength {
                htype,
                name,
                want,
                got,
            } => {
                write!(
                    f,
                    "a hardware type {htype} ({name}) address has {want} byte(s), not {got}"
                )?;
                if *htype != 1 {
                    write!(f, "; if this is an Ethernet address: {ETHERNET}")?;
                }
                Ok(())
            }
            Invalid::UserOptionLength(n) => write!(
                f,
                "value is {n} bytes; expected 1 to {}",
                value::MAX_OPTION_LEN
            ),
            Invalid::OutsideLengths(n) => {
                write!(f, "value is {n} bytes, outside min_length/max_length")
            }
        }
    }
}

impl std::error::Error for Invalid {}

impl From<ValueError> for Invalid {
    fn from(e: ValueError) -> Invalid {
        Invalid::Value(e)
    }
}

impl From<RuleError> for Invalid {
    fn from(e: RuleError) -> Invalid {
        Invalid::Rule(e)
    }
}

/// Read and check a file. An unreadable file is one error at line 0.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = read_text(path).map_err(|e| vec![e])?;
    parse(&text, &path.display().to_string())
}

/// Parse dhcpd.conf text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
        config: Config {
            global: keys::global_defaults(),
            ..Config::default()
        },
        client_lines: Vec::new(),
        client_keys: HashMap::default(),
    };
    let sections = lex(text, file, &mut p.errors);
    p.user_options(&sections);
    // Maps, not lists: a file of thousands of clients is read at every
    // start under inetd, and must not cost a comparison per pair.
    let mut seen: HashMap<&str, usize, Fast> =
        HashMap::with_capacity_and_hasher(sections.len(), Fast::default());
    p.client_keys.reserve(sections.len());
    p.config.clients.reserve(sections.len());
    for s in &sections {
        if let Some(first) = seen.get(s.header.as_ref()) {
            p.err(
                s.line,
                format!("[{}] appears twice (first at line {first})", s.header),
            );
            continue;
        }
        seen.insert(s.header.as_ref(), s.line);
        p.section(s);
    }
    p.check_addresses();
    if p.errors.is_empty() {
        Ok(p.config)
    } else {
        p.errors.sort_by_key(|e| e.line);
        Err(p.errors)
    }
}

struct Parser<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
    config: Config,
    /// Header line of each entry of `config.clients`, for later errors.
    client_lines: Vec<usize>,
    /// The hash of each key of `config.clients`, with the index of the
    /// first client whose key has it: duplicates are found without a copy
    /// of every key.
    client_keys: HashMap<u64, usize, Fast>,
}

impl Parser<'_> {
    fn err(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            message,
        });
    }

    /// Run `f` on an entry's value; an error is reported as `key: message`.
    fn value<T, E: fmt::Display>(
        &mut self,
        e: &Entry,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match f(e.value) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(e.line, format!("{}: {m}", e.key));
                None
            }
        }
    }

    /// Read an entry by its key's row of a table; false if the value is bad.
    fn read<T>(&mut self, key: &Key<T>, e: &Entry, into: &mut T) -> bool {
        self.value(e, |v| (key.read)(into, v)).is_some()
    }

    /// Each key once per section: a key set again is reported, and left
    /// out. Nothing is collected (a client's section is one of thousands).
    fn unique<'e, 't>(&mut self, s: &'e Section<'t>) -> impl Iterator<Item = &'e Entry<'t>> + 'e {
        let first_of = |i: usize| s.entries[..i].iter().find(|f| f.key == s.entries[i].key);
        for (i, e) in s.entries.iter().enumerate() {
            if let Some(first) = first_of(i) {
                let msg = format!(
                    "{}: set twice in [{}] (first at line {})",
                    e.key, s.header, first.line
                );
                self.err(e.line, msg);
            }
        }
        (0..s.entries.len())
            .filter(move |&i| first_of(i).is_none())
            .map(|i| &s.entries[i])
    }

    fn section(&mut self, s: &Section) {
        let (kind, arg) = match s.header.split_once(' ') {
            Some((k, a)) => (k, a.trim()),
            None => (s.header.as_ref(), ""),
        };
        match (kind, arg.is_empty()) {
            ("server", true) => self.server(s),
            ("global", true) => {
                let mut params = Params::default();
                self.params(s, &mut params, &[]);
                let given = |k: &str| s.entries.iter().any(|e| e.key == k);
                keys::set_defaults(keys::LEASE_FIELDS, &mut params, given);
                self.config.global = params;
            }
            ("subnet", false) => self.subnet(s, arg),
            ("client", false) => self.client(s, arg),
            ("vendor_class", false) | ("user_class", false) => {
                let mut params = Params::default();
                let comment = self.params(s, &mut params, &["comment"]).remove("comment");
                let class = Class {
                    name: arg.as_bytes().to_vec(),
                    comment,
                    params,
                };
                if kind == "vendor_class" {
                    self.config.vendor_classes.push(class);
                } else {
                    self.config.user_classes.push(class);
                }
            }
            ("option", false) => {} // read first, by user_options
            _ => self.err(
                s.line,
                format!(
                    "unknown section [{}]: expected [server], [global], [subnet ADDRESS], \
                     [client ID], [vendor_class NAME], [user_class NAME] or [option CODE]",
                    s.header
                ),
            ),
        }
    }

    fn server(&mut self, s: &Section) {
        let mut sp = ServerParams::default();
        for e in self.unique(s) {
            if let Some(key) = keys::find(keys::SERVER, e.key) {
                self.read(key, e, &mut sp);
            } else if e.key != "comment" {
                let msg = format!(
                    "unknown key \"{}\" in [server]: expected one of {}{}",
                    e.key,
                    keys::names(keys::SERVER),
                    keys::did_you_mean(e.key, keys::SERVER.iter().map(|k| k.name))
                );
                self.err(e.line, msg);
            }
        }
        if sp.aas_address.is_some() && sp.aas_password.is_none() {
            self.err(
                s.line,
                "[server]: aas_address needs aas_password (in.aasd asks TCP requesters for one)"
                    .into(),
            );
        }
        self.config.server = sp;
    }

    fn subnet(&mut self, s: &Section, arg: &str) {
        let (addr, len) = match arg.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (arg, None),
        };
        let Ok(network) = addr.parse::<Ipv4Addr>() else {
            return self.err(
                s.line,
                format!("[subnet {arg}]: \"{addr}\" is not an IPv4 network address"),
            );
        };
        let mut prefix = match len.map(|l| l.parse::<u8>()) {
            None => None,
            Some(Ok(l)) if l <= 32 => Some(l),
            Some(_) => {
                return self.err(
                    s.line,
                    format!("[subnet {arg}]: prefix length must be 0 to 32"),
                )
            }
        };
        let mut params = Params::default();
        let mut keys = vec![
            "mask",
            "pool",
            "comment",
            "authoritative",
            "shared_network",
            "interface",
        ];
        keys.extend(LIMIT_KEYS);
        let mut extra = self.params(s, &mut params, &keys);
        let limits = self.limits(&mut extra);
        if let Some((mask, line)) = extra.remove_with_line("mask") {
            match mask_len(&mask) {
                Some(l) if prefix.is_none_or(|p| p == l) => prefix = Some(l),
                Some(_) => self.err(
                    line,
                    format!("mask: {mask} does not agree with /{}", prefix.unwrap_or(0)),
                ),
                None => self.err(
                    line,
                    format!("mask: \"{mask}\" is not a netmask like 255.255.255.0"),
                ),
            }
        }
        let Some(prefix_len) = prefix else {
            return self.err(
                s.line,
                format!("[subnet {arg}]: expected a mask (mask = 255.255.255.0) or /length"),
            );
        };
        let authoritative = match extra.remove_with_line("authoritative") {
            None => None,
            Some((v, line)) => match value::boolean(&v) {
                Ok(b) => Some(b),
                Err(m) => {
                    self.err(line, format!("authoritative: {m}"));
                    None
                }
            },
        };
        let shared_network = extra
            .remove_with_line("shared_network")
            .and_then(|(v, line)| self.word(line, "shared_network", v, 64));
        // IFNAMSIZ: Linux interface names have at most 15 bytes.
        let interface = extra
            .remove_with_line("interface")
            .and_then(|(v, line)| self.word(line, "interface", v, 15));
        let subnet = Subnet {
            network,
            prefix_len,
            pool: extra.remove("pool"),
            comment: extra.remove("comment"),
            authoritative,
            shared_network,
            interface,
            params,
            limits,
        };
        if subnet.network != Ipv4Addr::from(u32::from(network) & u32::from(subnet.mask())) {
            return self.err(
                s.line,
                format!("[subnet {arg}]: {network} has host bits set for /{prefix_len}"),
            );
        }
        if let Some(other) = self
            .config
            .subnets
            .iter()
            .find(|o| o.contains(network) || subnet.contains(o.network))
        {
            let msg = format!(
                "[subnet {arg}] overlaps [subnet {}/{}]",
                other.network, other.prefix_len
            );
            return self.err(s.line, msg);
        }
        self.config.subnets.push(subnet);
    }

    /// A name of at most `max` bytes without blanks or slashes.
    fn word(&mut self, line: usize, key: &str, v: String, max: usize) -> Option<String> {
        let ok = !v.is_empty()
            && v.len() <= max
            && !v.contains(|c: char| c.is_whitespace() || c == '/' || c == ',');
        if !ok {
            self.err(
                line,
                format!("{key}: expected a name of 1 to {max} characters without blanks"),
            );
        }
        ok.then_some(v)
    }

    /// A subnet's limits on new clients (crate::limits).
    fn limits(&mut self, extra: &mut Extra<'_>) -> crate::limits::Limits {
        let mut take = |key: &str| {
            let (v, line) = extra.remove_with_line(key)?;
            match value::whole(&v, 1_000_000) {
                Ok(n) => Some(n as u32),
                Err(m) => {
                    self.err(line, format!("{key}: {m}"));
                    None
                }
            }
        };
        let mut bound = |scope: &str| crate::limits::Bound {
            per_minute: take(&format!("new_clients_per_minute{scope}")),
            leases: take(&format!("max_leases{scope}")),
        };
        crate::limits::Limits {
            subnet: bound(""),
            relay: bound("_per_relay"),
            circuit: bound("_per_circuit"),
        }
    }

    fn client(&mut self, s: &Section, arg: &str) {
        let key = if let Some(id) = arg.strip_prefix("id:") {
            match value::hex(id) {
                Ok(b) if b.len() < 2 => Err(Invalid::ShortClientId),
                Ok(b) => Ok(ClientKey::Id(b)),
                Err(e) => Err(e.into()),
            }
        } else if let Some(id) = arg.strip_prefix("circuit:") {
            value::hex(id)
                .map(ClientKey::Circuit)
                .map_err(Invalid::from)
        } else if let Some(id) = arg.strip_prefix("remote:") {
            value::hex(id).map(ClientKey::Remote).map_err(Invalid::from)
        } else if let Some(name) = arg.strip_prefix("opaque ") {
            Ok(ClientKey::Opaque(name.trim().to_string()))
        } else {
            hardware_key(arg)
        };
        let key = match key {
            Ok(k) => k,
            Err(m) => return self.err(s.line, format!("[client {arg}]: {m}")),
        };
        let mut params = Params::default();
        let mut extra = self.params(s, &mut params, &["ip_address", "comment"]);
        let ip_address = match extra.remove_entry("ip_address") {
            None => None,
            Some(e) => match value::ip(e.value) {
                Ok(a) => Some(a),
                Err(m) => {
                    self.err(e.line, format!("ip_address: {m}"));
                    None
                }
            },
        };
        let hash = Fast::default().hash_one(&key);
        let known = match self.client_keys.get(&hash) {
            None => false,
            Some(&i) if self.config.clients[i].key == key => true,
            // Another key with the same hash: rare, so compared with all.
            Some(_) => self.config.clients.iter().any(|c| c.key == key),
        };
        if known {
            return self.err(
                s.line,
                format!("[client {arg}]: this client is already defined"),
            );
        }
        self.client_keys
            .entry(hash)
            .or_insert(self.config.clients.len());
        self.config.clients.push(Client {
            key,
            ip_address,
            comment: extra.remove("comment"),
            params,
        });
        self.client_lines.push(s.line);
    }

    /// Options, lease fields and the section's own `extra` keys.
    fn params<'t>(&mut self, s: &Section<'t>, params: &mut Params, extra: &[&str]) -> Extra<'t> {
        let mut found = Extra::default();
        for e in self.unique(s) {
            let key = e.key;
            if extra.contains(&key) {
                found.0.push(*e);
                continue;
            }
            if let Some(n) = key.strip_prefix("vendor_option_") {
                if !s.header.starts_with("vendor_class ") {
                    self.err(
                        e.line,
                        format!("{key}: vendor options belong in a [vendor_class] section"),
                    );
                } else if let Some(code) = n.parse::<u8>().ok().filter(|c| (1..=254).contains(c)) {
                    if let Some(v) = self.value(e, value::hex) {
                        params.vendor_options.insert(code, v);
                    }
                } else {
                    self.err(
                        e.line,
                        format!("{key}: the sub-option code must be 1 to 254"),
                    );
                }
                continue;
            }
            match keys::find(keys::LEASE_FIELDS, key) {
                Some(field) => {
                    self.read(field, e, params);
                }
                None => self.option(e, params, &s.header, extra),
            }
        }
        if let (Some(t1), Some(t2)) = (params.renewal_percent, params.rebind_percent) {
            if t2 <= t1 {
                self.err(
                    s.line,
                    format!(
                        "[{}]: rebind_percent must be above renewal_percent",
                        s.header
                    ),
                );
            }
        }
        found
    }

    /// A named option, `option_N = hex`, or a user-defined option.
    /// `extra`: the section's own keys, for the guess at a mistyped one.
    fn option(&mut self, e: &Entry, params: &mut Params, header: &str, extra: &[&str]) {
        let key = e.key;
        // Each value is held to what its RFC allows (optrules), whether
        // it was written by name or as option_N.
        let checked = |code: u8, v: Vec<u8>| -> Result<Vec<u8>, Invalid> {
            optrules::check(code, &v)?;
            Ok(v)
        };
        if let Some((code, kind)) = optable::by_name(key) {
            if let Some(v) = self.value(e, |v| checked(code, value::encode(kind, v)?)) {
                params.options.insert(code, v);
            }
        } else if let Some(n) = key.strip_prefix("option_") {
            match n.parse::<u8>() {
                Ok(code) => match optable::reserved(code) {
                    Some(why) => {
                        self.err(e.line, format!("{key}: option {code} cannot be set: {why}"))
                    }
                    None => {
                        if let Some(v) = self.value(e, |v| checked(code, value::hex(v)?)) {
                            params.options.insert(code, v);
                        }
                    }
                },
                Err(_) => self.err(e.line, format!("{key}: the option code must be 1 to 254")),
            }
        } else if let Some(u) = self
            .config
            .user_options
            .iter()
            .find(|u| u.name == key)
            .cloned()
        {
            if let Some(v) = self.value(e, |v| encode_user(&u, v)) {
                params.options.insert(u.code, v);
            }
        } else if key == "subnet_mask" {
            self.err(
                e.line,
                "subnet_mask: set the subnet's mask with \"mask\" in [subnet]".into(),
            );
        } else {
            let known = keys::LEASE_FIELDS
                .iter()
                .map(|k| k.name)
                .chain(optable::OPTIONS.iter().map(|o| o.1))
                .chain(self.config.user_options.iter().map(|u| u.name.as_str()))
                .chain(extra.iter().copied());
            let guess = keys::did_you_mean(key, known);
            self.err(e.line, format!("unknown key \"{key}\" in [{header}]: not an option name (see in.dhcpd.conf(5)) or option_N{guess}"));
        }
    }

    /// `[option N]` sections come first: later sections use their names.
    fn user_options(&mut self, sections: &[Section]) {
        for s in sections {
            let Some(arg) = s.header.strip_prefix("option ") else {
                continue;
            };
            let code = match arg.trim().parse::<u8>() {
                Ok(c) if (128..=254).contains(&c) => c,
                _ => {
                    self.err(
                        s.line,
                        format!("[option {arg}]: user-defined option codes are 128 to 254"),
                    );
                    continue;
                }
            };
            // Nothing set yet: the table gives every key with a default its value.
            let mut u = UserOption {
                code,
                name: String::new(),
                ty: OptType::Binary,
                array: false,
                min: None,
                max: None,
                min_length: None,
                max_length: None,
            };
            keys::set_defaults(keys::OPTION, &mut u, |_| false);
            let mut has_type = false;
            for e in self.unique(s) {
                if let Some(key) = keys::find(keys::OPTION, e.key) {
                    let read = self.read(key, e, &mut u);
                    has_type |= read && key.name == "type";
                } else if e.key != "comment" {
                    let msg = format!(
                        "unknown key \"{}\" in [option {code}]: expected {}{}",
                        e.key,
                        keys::names(keys::OPTION).replace(", max_length", " or max_length"),
                        keys::did_you_mean(e.key, keys::OPTION.iter().map(|k| k.name))
                    );
                    self.err(e.line, msg);
                }
            }
            let valid_name = !u.name.is_empty()
                && u.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                self.err(
                    s.line,
                    format!("[option {code}]: expected name = a key name (letters, digits, _)"),
                );
            } else if optable::by_name(&u.name).is_some() || is_fixed_key(&u.name) {
                self.err(
                    s.line,
                    format!(
                        "[option {code}]: name \"{}\" is already a dhcpd.conf key",
                        u.name
                    ),
                );
            } else if self
                .config
                .user_options
                .iter()
                .any(|o| o.name == u.name || o.code == code)
            {
                self.err(
                    s.line,
                    format!("[option {code}]: name or code already defined"),
                );
            } else if !has_type {
                self.err(s.line, format!("[option {code}]: expected type = int8, uint8, int16, uint16, int32, uint32, boolean, ip, string or binary"));
            } else {
                self.config.user_options.push(u);
            }
        }
    }

    /// Fixed addresses lie in a subnet, are not its network or broadcast
    /// address, and belong to one client only.
    fn check_addresses(&mut self) {
        let clients = std::mem::take(&mut self.config.clients);
        let lines = std::mem::take(&mut self.client_lines);
        let mut owners: HashMap<Ipv4Addr, usize, Fast> =
            HashMap::with_capacity_and_hasher(clients.len(), Fast::default());
        for (i, c) in clients.iter().enumerate() {
            let Some(ip) = c.ip_address else { continue };
            let line = lines.get(i).copied().unwrap_or(0);
            match self.config.subnet_containing(ip) {
                None => self.err(
                    line,
                    format!("ip_address: {ip} is not in any configured subnet"),
                ),
                Some(s) if ip == s.network || ip == s.broadcast() => {
                    let msg = format!(
                        "ip_address: {ip} is the network or broadcast address of its subnet"
                    );
                    self.err(line, msg)
                }
                Some(_) => {}
            }
            if let Some(&first) = owners.get(&ip) {
                self.err(
                    line,
                    format!(
                        "ip_address: {ip} is already the address of the client at line {first}"
                    ),
                );
            } else {
                owners.insert(ip, line);
            }
        }
        self.config.clients = clients;
    }
}

/// A subnet's limits on new clients.
const LIMIT_KEYS: [&str; 6] = [
    "new_clients_per_minute",
    "max_leases",
    "new_clients_per_minute_per_relay",
    "max_leases_per_relay",
    "new_clients_per_minute_per_circuit",
    "max_leases_per_circuit",
];

/// Keys with a meaning of their own, which a user option must not take.
fn is_fixed_key(name: &str) -> bool {
    [
        "mask",
        "pool",
        "comment",
        "ip_address",
        "authoritative",
        "subnet_mask",
        "shared_network",
        "interface",
    ]
    .contains(&name)
        || keys::find(keys::LEASE_FIELDS, name).is_some()
        || LIMIT_KEYS.contains(&name)
        || name.starts_with("option_")
        || name.starts_with("vendor_option_")
}

/// A section's own keys, taken out by name with their lines.
#[derive(Default)]
struct Extra<'t>(Vec<Entry<'t>>);

impl<'t> Extra<'t> {
    fn remove_entry(&mut self, key: &str) -> Option<Entry<'t>> {
        let i = self.0.iter().position(|e| e.key == key)?;
        Some(self.0.remove(i))
    }
    fn remove_with_line(&mut self, key: &str) -> Option<(String, usize)> {
        self.remove_entry(key)
            .map(|e| (e.value.to_string(), e.line))
    }
    fn remove(&mut self, key: &str) -> Option<String> {
        self.remove_with_line(key).map(|(v, _)| v)
    }
}

fn mask_len(v: &str) -> Option<u8> {
    let bits = u32::from(v.parse::<Ipv4Addr>().ok()?);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// Address lengths of the hardware types that have one fixed (IANA ARP
/// hardware types): a header that does not fit is a typo, and never
/// matches a client.
const HW_LENGTHS: [(u8, &str, usize); 3] = [
    (1, "Ethernet", 6),
    (2, "Experimental Ethernet", 1),
    (6, "IEEE 802", 6),
];

/// `[client 1:00:40:05:12:34:56]`, `[client 15:aa:bb]` or, for Ethernet,
/// just `[client 00:40:05:12:34:56]`.
fn hardware_key(arg: &str) -> Result<ClientKey, Invalid> {
    // Six two-digit bytes: an Ethernet address; `1:00:40:05:12:34` is
    // type 1 with five bytes (a typo), not the address 01:00:40:...
    let colons = arg.bytes().filter(|&b| b == b':').count();
    let typed = arg.bytes().position(|b| b == b':').unwrap_or(arg.len()) != 2;
    let (htype, addr) = if colons == 5 && !typed {
        (1, value::hw_addr(arg)?)
    } else {
        let (t, rest) = arg
            .split_once(':')
            .ok_or_else(|| Invalid::NotClientKey(arg.to_string()))?;
        let t: u8 = t
            .parse()
            .map_err(|_| Invalid::NotHardwareType(t.to_string()))?;
        (t, value::hw_addr(rest)?)
    };
    if htype == 0 {
        return Err(Invalid::HardwareTypeZero(addr.len()));
    }
    if let Some(&(_, name, want)) = HW_LENGTHS.iter().find(|(t, _, _)| *t == htype) {
        if addr.len() != want {
            return Err(Invalid::HardwareLength {
                htype,
                name,
                want,
                got: addr.len(),
            });
        }
    }
    Ok(ClientKey::Hardware { htype, addr })
}

/// Encode a user-defined option's value by its declared type and limits.
fn encode_user(u: &UserOption, v: &str) -> Result<Vec<u8>, Invalid> {
    let int = |item: &str, lo: i64, hi: i64, width: usize| -> Result<Vec<u8>, Invalid> {
        let n = value::int(
            item,
            u.min.unwrap_or(lo).max(lo),
            u.max.unwrap_or(hi).min(hi),
        )?;
        Ok(n.to_be_bytes()[8 - width..].to_vec())
    };
    let one = |item: &str| -> Result<Vec<u8>, Invalid> {
        match u.ty {
            OptType::Int8 => int(item, -128, 127, 1),
            OptType::Uint8 => int(item, 0, 255, 1),
            OptType::Int16 => int(item, -32_768, 32_767, 2),
            OptType::Uint16 => int(item, 0, 65_535, 2),
            OptType::Int32 => int(item, i64::from(i32::MIN), i64::from(i32::MAX), 4),
            OptType::Uint32 => int(item, 0, i64::from(u32::MAX), 4),
            OptType::Boolean => Ok(vec![u8::from(value::boolean(item)?)]),
            OptType::Ip => Ok(value::ip(item)?.octets().to_vec()),
            OptType::String => Ok(item.as_bytes().to_vec()),
            OptType::Binary => Ok(value::hex(item)?),
        }
    };
    let arrayable = !matches!(u.ty, OptType::String | OptType::Binary);
    let bytes = if u.array && arrayable {
        let mut out = Vec::new();
        for item in v
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            out.extend(one(item)?);
        }
        out
    } else {
        one(v)?
    };
    let len = bytes.len();
    if len == 0 || len > value::MAX_OPTION_LEN {
        return Err(Invalid::UserOptionLength(len));
    }
    if u.min_length.is_some_and(|m| len < m) || u.max_length.is_some_and(|m| len > m) {
        return Err(Invalid::OutsideLengths(len));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(text, "t.conf")
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn every_section_read() {
        let c = parse(
            "[server]\noption_overload = yes\npad_lease = 2.5\n[global]\nlease_time = 2h\n\
             [subnet 10.0.0.0]\nmask = 255.255.0.0\npool = P\n\
             [client 1:00:40:05:12:34:56]\nip_address = 10.0.0.5\n[client id:01:02]\n\
             [client opaque ppp-line-3]\ncomment = dial-in\n[vendor_class MSFT 5.0]\nvendor_option_1 = 01:02\n\
             [user_class eng]\nntp_servers = 10.0.0.1\n[option 150]\nname = tftp_servers\ntype = ip\narray = yes\n\
             [global2]\n",
            "t.conf",
        );
        let errs = c.unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].to_string().contains(": unknown section [global2]"),
            "{errs:?}"
        );
        let c = parse(
            "[server]\noption_overload = yes\npad_lease = 2.5\n[global]\nlease_time = 2h\n\
             [subnet 10.0.0.0]\nmask = 255.255.0.0\npool = P\ntftp_servers = 10.0.0.1 10.0.0.2\n\
             [client 1:00:40:05:12:34:56]\nip_address = 10.0.0.5\n[client id:01:02]\n\
             [client opaque ppp-line-3]\n[vendor_class MSFT 5.0]\nvendor_option_1 = 01:02\n\
             [user_class eng]\n[option 150]\nname = tftp_servers\ntype = ip\narray = yes\n",
            "t.conf",
        )
        .unwrap();
        assert!(c.server.option_overload);
        assert_eq!(c.server.pad_lease, 2.5);
        assert_eq!(c.global.lease_time, Some(LeaseTime::Secs(7200)));
        assert_eq!(c.global.max_lease_time, Some(LeaseTime::Secs(604_800)));
        assert_eq!(c.subnets[0].prefix_len, 16);
        assert_eq!(c.subnets[0].pool.as_deref(), Some("P"));
        assert_eq!(
            c.subnets[0].params.options[&150],
            [10, 0, 0, 1, 10, 0, 0, 2]
        );
        assert_eq!(c.clients.len(), 3);
        assert!(c.find_opaque("ppp-line-3").is_some());
        assert!(c.find_client(Some(&[1, 2]), 1, &[0; 6]).is_some());
        assert_eq!(
            c.vendor_class(b"MSFT 5.0").unwrap().params.vendor_options[&1],
            [1, 2]
        );
        assert!(c.user_class(b"\x03eng").is_some());
    }

    #[test]
    fn a_client_written_twice_another_way_is_already_defined() {
        let got = errors(
            "[subnet 10.0.0.0/24]\n[client 00:40:05:12:34:56]\nip_address = 10.0.0.5\n\
             [client 1:00:40:05:12:34:56]\nip_address = 10.0.0.5\n[client id:01:02]\n\
             [client id:0102]\n[client 1:00:40:05:12:34:57]\n",
        );
        assert_eq!(
            got,
            [
                "t.conf:4: [client 1:00:40:05:12:34:56]: this client is already defined",
                "t.conf:7: [client id:0102]: this client is already defined",
            ]
        );
    }

    #[test]
    fn semantic_errors_name_line_and_expectation() {
        let got = errors(
            "[subnet 10.0.0.0/24]\nfoo = 1\nrouters = 10.0.0.x\nlease_time = 10x\n\
             [subnet 10.0.0.128/25]\n[subnet 10.1.0.1/24]\n[subnet 10.2.0.0]\n\
             [client 00:40:05:12:34:56]\nip_address = 10.9.0.5\n[client 00:40:05:12:34:56]\n\
             [client 1:00:40:05:12:34:57]\nip_address = 10.0.0.255\n\
             [client 2:aa]\nip_address = 10.0.0.7\n[client 3:bb]\nip_address = 10.0.0.7\n\
             [global]\noption_51 = 01\nsubnet_mask = 255.0.0.0\nrenewal_percent = 90\nrebind_percent = 80\n\
             [option 100]\nname = x\n[server]\nprobe = maybe\naas_address = nowhere\n\
             probe_timeout = 0\n",
        );
        let want = [
            "t.conf:2: unknown key \"foo\" in [subnet 10.0.0.0/24]",
            "t.conf:3: routers: \"10.0.0.x\" is not an IPv4 address",
            "t.conf:4: lease_time: \"10x\" is not a lease time",
            "t.conf:5: [subnet 10.0.0.128/25] overlaps [subnet 10.0.0.0/24]",
            "t.conf:6: [subnet 10.1.0.1/24]: 10.1.0.1 has host bits set for /24",
            "t.conf:7: [subnet 10.2.0.0]: expected a mask",
            "t.conf:8: ip_address: 10.9.0.5 is not in any configured subnet",
            "t.conf:10: [client 00:40:05:12:34:56] appears twice (first at line 8)",
            "t.conf:11: ip_address: 10.0.0.255 is the network or broadcast address",
            "t.conf:15: ip_address: 10.0.0.7 is already the address of the client at line 13",
            "t.conf:17: [global]: rebind_percent must be above renewal_percent",
            "t.conf:18: option_51: option 51 cannot be set: use lease_time",
            "t.conf:19: subnet_mask: set the subnet's mask",
            "t.conf:22: [option 100]: user-defined option codes are 128 to 254",
            "t.conf:25: probe: \"maybe\" is not yes or no",
            "t.conf:26: aas_address: \"nowhere\" is not host:port",
            "t.conf:27: probe_timeout: expected 1 to 10000 milliseconds",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn option_values_are_held_to_rfc_2132() {
        let got = errors(
            "[global]\nmax_datagram_reassembly = 512\ndefault_ip_ttl = 0\n\
             interface_mtu = 60\ntcp_default_ttl = 0\n\
             static_routes = 0.0.0.0 10.0.0.1\noption_21 = 0a000000ffffff\n\
             [subnet 10.0.0.0/24]\noption_26 = 0020\noption_19 = 02\n\
             [client 02:00:00:00:00:01]\nnetbios_node_type = 3\noption_2 = 000001\n",
        );
        let want = [
            "t.conf:2: max_datagram_reassembly: option 22 is at least 576, not 512 (RFC 2132 §4.4)",
            "t.conf:3: default_ip_ttl: option 23 is 1 to 255, not 0 (RFC 2132 §4.5)",
            "t.conf:4: interface_mtu: option 26 is at least 68, not 60 (RFC 2132 §5.1)",
            "t.conf:5: tcp_default_ttl: option 37 is 1 to 255, not 0 (RFC 2132 §7.1)",
            "t.conf:6: static_routes: option 33 cannot have destination 0.0.0.0",
            "t.conf:7: option_21: option 21 holds whole address pairs",
            "t.conf:9: option_26: option 26 is at least 68, not 32",
            "t.conf:10: option_19: option 19 is 0 or 1, not 2",
            "t.conf:12: netbios_node_type: option 46 is one of [1, 2, 4, 8], not 3",
            "t.conf:13: option_2: option 2 is 4 bytes long, not 3",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g}\n  wanted {w}");
        }
        let c = parse(
            "[global]\nmax_datagram_reassembly = 576\ndefault_ip_ttl = 64\n\
             interface_mtu = 68\nstatic_routes = 10.1.0.0 10.0.0.1\noption_26 = 05dc\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(c.global.options[&26], [5, 220]);
    }

    #[test]
    fn authoritative_in_server_and_subnet() {
        let c = parse(
            "[server]\nauthoritative = yes\n[subnet 10.0.0.0/24]\nauthoritative = no\n\
             [subnet 10.1.0.0/24]\n",
            "t.conf",
        )
        .unwrap();
        assert!(c.server.authoritative);
        assert_eq!(c.subnets[0].authoritative, Some(false));
        assert_eq!(c.subnets[1].authoritative, None);
        assert!(!parse("[server]\n", "t.conf").unwrap().server.authoritative);
        let got = errors(
            "[server]\nauthoritative = maybe\n[subnet 10.0.0.0/24]\nauthoritative = 2\n\
             [global]\nauthoritative = yes\n",
        );
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("t.conf:2: authoritative: \"maybe\" is not yes or no"));
        assert!(got[1].starts_with("t.conf:4: authoritative: \"2\" is not yes or no"));
        assert!(got[2].starts_with("t.conf:6: unknown key \"authoritative\" in [global]"));
    }

    #[test]
    fn shared_networks_interfaces_and_port_clients() {
        let c = parse(
            "[subnet 10.0.0.0/24]\nshared_network = lan\n[subnet 10.9.0.0/24]\n\
             [subnet 10.1.0.0/25]\nshared_network = lan\ninterface = eth1\n\
             [client circuit:00:04:01:02]\nip_address = 10.0.0.9\n[client remote:ab:cd]\n",
            "t.conf",
        )
        .unwrap();
        let link: Vec<_> = c.link(&c.subnets[2]).iter().map(|s| s.network).collect();
        assert_eq!(link, [c.subnets[0].network, c.subnets[2].network]);
        assert_eq!(c.link(&c.subnets[1]).len(), 1);
        assert_eq!(c.subnet_on_interface("eth1"), Some(&c.subnets[2]));
        assert_eq!(c.subnet_on_interface("eth0"), None);
        let on = c.on_link(&c.subnets[0], "10.1.0.5".parse().unwrap());
        assert_eq!(on.network, c.subnets[2].network);
        let port = c
            .find_by_agent(Some(&[0, 4, 1, 2]), Some(&[0xab, 0xcd]))
            .unwrap();
        assert_eq!(port.ip_address, Some("10.0.0.9".parse().unwrap()));
        let remote = c.find_by_agent(Some(&[9]), Some(&[0xab, 0xcd])).unwrap();
        assert_eq!(remote.key, ClientKey::Remote(vec![0xab, 0xcd]));
        assert!(c.find_by_agent(None, Some(&[0, 4, 1, 2])).is_none());
        let got = errors(
            "[subnet 10.0.0.0/24]\nshared_network = a b\ninterface = averylonginterfacename\n\
             [client circuit:xyz]\n[client circuit:01]\n[client circuit:01]\n",
        );
        let want = [
            "t.conf:2: shared_network: expected a name of 1 to 64 characters without blanks",
            "t.conf:3: interface: expected a name of 1 to 15 characters without blanks",
            "t.conf:4: [client circuit:xyz]: \"xyz\" is not hex bytes",
            "t.conf:6: [client circuit:01] appears twice (first at line 5)",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g}\n  wanted {w}");
        }
    }

    #[test]
    fn hardware_addresses_of_the_wrong_length_and_interfaces() {
        let e = errors(
            "[subnet 10.0.0.0/24]\n[client 00:40:05:12:34]\n[client 02:77:00:00:10]\n\
             [client 6:aa:bb]\n[client 1:00:40:05:12:34]\n[client 01:02:00:00:00:00:02]\n\
             [client 15:aa:bb]\n[server]\ninterfaces = eth0, this-name-is-far-too-long\n",
        );
        let want = [
            "t.conf:2: [client 00:40:05:12:34]: read as hardware type 0, which does not exist, \
             and 4 address byte(s): an Ethernet address has 6 bytes",
            "t.conf:3: [client 02:77:00:00:10]: a hardware type 2 (Experimental Ethernet) \
             address has 1 byte(s), not 4; if this is an Ethernet address",
            "t.conf:4: [client 6:aa:bb]: a hardware type 6 (IEEE 802) address has 6 byte(s), not 2",
            "t.conf:5: [client 1:00:40:05:12:34]: a hardware type 1 (Ethernet) address has 6 \
             byte(s), not 5",
            "t.conf:9: interfaces: \"this-name-is-far-too-long\" is not an interface name",
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (e, w) in e.iter().zip(want) {
            assert!(e.starts_with(w), "{e}\n  should start with\n{w}");
        }
        let c = parse("[server]\ninterfaces = eth0 eth1,br0\n", "t.conf").unwrap();
        assert_eq!(c.server.interfaces, ["eth0", "eth1", "br0"]);
    }

    #[test]
    fn remote_aas_needs_a_password() {
        let got = errors("[server]\naas_address = 10.0.0.1:5310\n");
        assert_eq!(
            got,
            ["t.conf:1: [server]: aas_address needs aas_password (in.aasd asks TCP requesters for one)"]
        );
        let c = parse(
            "[server]\naas_address = h:aas\naas_password = pw\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(c.server.aas_address.as_deref(), Some("h:aas"));
    }

    #[test]
    fn duplicates_and_unreadable_files() {
        let got = errors("[global]\nhost_name = a\nhost_name = b\n[global]\n");
        assert_eq!(
            got,
            [
                "t.conf:3: host_name: set twice in [global] (first at line 2)",
                "t.conf:4: [global] appears twice (first at line 1)",
            ]
        );
        let e = load(Path::new("/nonexistent/dhcpd.conf")).unwrap_err();
        assert_eq!(e[0].line, 0);
        assert!(e[0]
            .to_string()
            .starts_with("/nonexistent/dhcpd.conf:0: cannot read"));
    }

    #[test]
    fn file_level_faults_each_named_with_its_line() {
        // CRLF line ends and a missing final newline are fine.
        assert!(parse(
            "[server]\r\nlease_res_time = 20\r\n[global]\r\nlease_time = 1h",
            "t.conf"
        )
        .is_ok());
        let long = format!("domain_name = {}", "x".repeat(1100));
        let got = errors(&format!(
            "[server]\nlease_res_time = 2\0\nprobe = 3\nlease_res_time = 99999999999\n\
             [global]\n{long}\nhost_name = a\rb\n"
        ));
        let want = [
            "t.conf:2: control character '\\0' in column 19",
            "t.conf:3: probe: \"3\" is not yes or no",
            "t.conf:4: lease_res_time:",
            "t.conf:6: line is longer than 1023 characters",
            "t.conf:7: control character '\\r' in column 14",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g}\n  wanted {w}");
        }
        // Values that could never be sent are refused when the file is read.
        let got = errors(&format!("[global]\nboot_file = {}\n", "b".repeat(128)));
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("t.conf:2: boot_file: expected ASCII text of at most 127 bytes"));
        // Bytes that are not UTF-8: the line they are on.
        let path = std::env::temp_dir().join(format!("binary-{}.conf", std::process::id()));
        std::fs::write(&path, b"[server]\nlease_res_time = 20\n\xff\xfe\x00\x01\n").unwrap();
        let e = load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].message.as_str()), (3, "not UTF-8 text"));
    }
}
