//! dhcpd.conf: the INI file read into a typed [`Config`].
//!
//! Every error carries the file and line it came from and says what was
//! expected, so `in.dhcpd -C` can print them all before giving up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A lease length: a number of seconds, or infinite (0xffffffff on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseTime {
    Secs(u32),
    Infinite,
}

/// One set of parameters: global, subnet, vendor class, user class or client.
/// A field left `None` (or a code absent from `options`) inherits from the
/// less specific set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    /// DHCP options by code, each value already in wire form (no code, no length).
    pub options: BTreeMap<u8, Vec<u8>>,
    /// `vendor_option_N` sub-options, sent encapsulated in option 43.
    pub vendor_options: BTreeMap<u8, Vec<u8>>,
    pub lease_time: Option<LeaseTime>,
    pub max_lease_time: Option<LeaseTime>,
    /// T1 as a percentage of the lease.
    pub renewal_percent: Option<f64>,
    /// T2 as a percentage of the lease.
    pub rebind_percent: Option<f64>,
    /// siaddr of the reply.
    pub next_server: Option<Ipv4Addr>,
    /// The `file` field of the reply (at most 127 bytes).
    pub boot_file: Option<String>,
}

/// `[server]`: parameters of in.dhcpd itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerParams {
    pub aas_socket: PathBuf,
    /// The group kept after dropping root to reach `aas_socket` (`None`:
    /// `aasd` when it exists, else the socket's own group, never 0).
    pub aas_group: Option<String>,
    pub aas_address: Option<String>,
    pub aas_password: Option<String>,
    pub lease_res_time: u32,
    pub pad_lease: f64,
    pub probe: bool,
    /// How long to wait for an echo reply, in milliseconds.
    pub probe_timeout: u32,
    pub option_overload: bool,
    pub decline_time: u32,
    pub bootp_dynamic: bool,
    /// NAK an INIT-REBOOT request of a client we have no record of,
    /// instead of staying silent (RFC 2131 §4.3.2); a subnet may override.
    pub authoritative: bool,
    /// `interfaces`: answer only datagrams that arrive on these (empty:
    /// every interface).
    pub interfaces: Vec<String>,
}

/// The defaults of [`keys::SERVER`].
impl Default for ServerParams {
    fn default() -> Self {
        // Nothing set yet: the table gives every key with a default its value.
        let mut sp = ServerParams {
            aas_socket: PathBuf::new(),
            aas_group: None,
            aas_address: None,
            aas_password: None,
            lease_res_time: 0,
            pad_lease: 0.0,
            probe: false,
            probe_timeout: 0,
            option_overload: false,
            decline_time: 0,
            bootp_dynamic: false,
            authoritative: false,
            interfaces: Vec::new(),
        };
        keys::set_defaults(keys::SERVER, &mut sp, |_| false);
        sp
    }
}

/// `[subnet A.B.C.D]` or `[subnet A.B.C.D/len]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
    pub pool: Option<String>,
    pub comment: Option<String>,
    /// `authoritative` of this subnet; `None` takes the `[server]` one.
    pub authoritative: Option<bool>,
    /// `shared_network`: subnets with one name are one link, their pools
    /// tried in file order.
    pub shared_network: Option<String>,
    /// `interface`: clients arriving on it directly are on this subnet,
    /// even when no address of ours is in it.
    pub interface: Option<String>,
    pub params: Params,
    /// Limits on new clients (off by default).
    pub limits: crate::limits::Limits,
}

impl Subnet {
    pub fn mask(&self) -> Ipv4Addr {
        let bits = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len))
        };
        Ipv4Addr::from(bits)
    }
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.mask()) == u32::from(self.network)
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !u32::from(self.mask()))
    }
}

/// How a `[client ...]` section names its client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// `[client 1:00:40:05:12:34:56]` or `[client 00:40:05:12:34:56]` (type 1).
    Hardware { htype: u8, addr: Vec<u8> },
    /// `[client id:ff:00:...]`: the client identifier, option 61, byte for byte.
    Id(Vec<u8>),
    /// `[client opaque ppp-line-3]`: an opaque string identifier (PPP and other requesters).
    Opaque(String),
    /// `[client circuit:HEX]`: the relay's agent circuit ID (option 82.1).
    Circuit(Vec<u8>),
    /// `[client remote:HEX]`: the relay's agent remote ID (option 82.2).
    Remote(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    pub key: ClientKey,
    /// Pinned address: infinite lease.
    pub ip_address: Option<Ipv4Addr>,
    pub comment: Option<String>,
    pub params: Params,
}

/// `[vendor_class NAME]` (matches option 60) or `[user_class NAME]` (option 77).
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    pub name: Vec<u8>,
    pub comment: Option<String>,
    pub params: Params,
}

/// Value type of a user-defined option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptType {
    Int8,
    Uint8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Boolean,
    Ip,
    String,
    Binary,
}

/// `[option N]`: a user-defined option, codes 128-254.
#[derive(Clone, Debug, PartialEq)]
pub struct UserOption {
    pub code: u8,
    pub name: String,
    pub ty: OptType,
    pub array: bool,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
}

/// The whole of dhcpd.conf.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub server: ServerParams,
    pub global: Params,
    pub subnets: Vec<Subnet>,
    pub clients: Vec<Client>,
    pub vendor_classes: Vec<Class>,
    pub user_classes: Vec<Class>,
    pub user_options: Vec<UserOption>,
}

/// One problem in the file: `dhcpd.conf:12: lease_time: "10x" is not ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfigError {}

pub mod crosscheck;
mod hashing;
pub mod keys;
mod optable;
mod optrules;
mod parse;
pub mod source;
pub mod value;
pub mod watch;

pub use parse::{load, parse};

/// Read a configuration file as UTF-8 text; an unreadable file is one
/// error at line 0, bad UTF-8 one error at its line.
pub fn read_text(path: &std::path::Path) -> Result<String, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        // A file with nothing in it is most likely one an editor is still
        // writing: never take it for a configuration with nothing to serve.
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Err(ConfigError {
            file,
            line: 0,
            message: "the file is empty".into(),
        }),
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| ConfigError {
            file,
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            message: "not UTF-8 text".into(),
        }),
        Err(e) => Err(ConfigError {
            file,
            line: 0,
            message: format!("cannot read: {e}"),
        }),
    }
}

impl Config {
    pub fn subnet_containing(&self, addr: Ipv4Addr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.contains(addr))
    }

    /// The client entry for a request: an `id:` entry matching the client
    /// identifier, else a hardware entry matching htype and chaddr (so an
    /// entry by MAC still matches a client that sends option 61, as in ISC
    /// dhcpd and Kea).
    pub fn find_client(
        &self,
        client_id: Option<&[u8]>,
        htype: u8,
        chaddr: &[u8],
    ) -> Option<&Client> {
        let by_id = client_id.and_then(|id| {
            self.clients
                .iter()
                .find(|c| matches!(&c.key, ClientKey::Id(k) if k.as_slice() == id))
        });
        by_id.or_else(|| {
            self.clients.iter().find(|c| {
                matches!(&c.key, ClientKey::Hardware { htype: t, addr } if *t == htype && addr.as_slice() == chaddr)
            })
        })
    }

    /// The client entry of a relayed request's port: a `circuit:` entry
    /// matching option 82.1, else a `remote:` entry matching 82.2.
    pub fn find_by_agent(&self, circuit: Option<&[u8]>, remote: Option<&[u8]>) -> Option<&Client> {
        let find = |want: Option<&[u8]>, circuit_key: bool| {
            let want = want?;
            self.clients.iter().find(|c| match &c.key {
                ClientKey::Circuit(k) => circuit_key && k.as_slice() == want,
                ClientKey::Remote(k) => !circuit_key && k.as_slice() == want,
                _ => false,
            })
        };
        find(circuit, true).or_else(|| find(remote, false))
    }

    /// The subnets of `subnet`'s link in file order: its shared network,
    /// or itself alone.
    pub fn link<'a>(&'a self, subnet: &'a Subnet) -> Vec<&'a Subnet> {
        match &subnet.shared_network {
            None => vec![subnet],
            Some(name) => self
                .subnets
                .iter()
                .filter(|s| s.shared_network.as_ref() == Some(name))
                .collect(),
        }
    }

    /// The subnet of `subnet`'s link that holds `addr`, else `subnet`
    /// itself: a client may have its address on any subnet of the link.
    pub fn on_link<'a>(&'a self, subnet: &'a Subnet, addr: Ipv4Addr) -> &'a Subnet {
        self.link(subnet)
            .into_iter()
            .find(|s| s.contains(addr))
            .unwrap_or(subnet)
    }

    /// The first subnet bound to interface `name` with `interface =`.
    pub fn subnet_on_interface(&self, name: &str) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(name))
    }

    pub fn find_opaque(&self, id: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| matches!(&c.key, ClientKey::Opaque(k) if k == id))
    }

    /// Option 60: the class of that exact name, else the longest class name
    /// that starts the value (`PXEClient` matches `PXEClient:Arch:00000:...`).
    pub fn vendor_class(&self, opt60: &[u8]) -> Option<&Class> {
        self.vendor_classes
            .iter()
            .filter(|c| opt60.starts_with(&c.name))
            .max_by_key(|c| c.name.len())
    }

    /// Option 77: the whole value, or any RFC 3004 instance in it, equal to
    /// the class name (clients send both forms).
    pub fn user_class(&self, opt77: &[u8]) -> Option<&Class> {
        let mut instances = Vec::new();
        let mut rest = opt77;
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if len == 0 || len > tail.len() {
                break;
            }
            instances.push(&tail[..len]);
            rest = &tail[len..];
        }
        self.user_classes
            .iter()
            .find(|c| c.name == opt77 || instances.contains(&c.name.as_slice()))
    }

    pub fn client_with_address(&self, addr: Ipv4Addr) -> Option<&Client> {
        self.clients.iter().find(|c| c.ip_address == Some(addr))
    }
}
