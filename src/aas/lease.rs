//! The words both sides of the AAS protocol share: times, address states,
//! pools, what an allocation asks for, why one is refused, what a query
//! selects and a pool's counts. in.dhcpd, aasadmin and in.aasd all use
//! these; the protocol (proto.rs) renders and parses them.

use std::fmt;
use std::net::Ipv4Addr;

use super::proto::Code;

/// Unix seconds.
pub type Time = u64;
/// A lease end that never comes (an infinite lease).
pub const FOREVER: Time = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Free,
    /// Reserved for a client that was offered it (DHCPOFFER).
    Offered,
    Leased,
    /// Out of use until `end`: a client found it taken by another host.
    Declined,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Offered => "offered",
            State::Leased => "leased",
            State::Declined => "declined",
        }
    }

    pub fn from_name(s: &str) -> Option<State> {
        [State::Free, State::Offered, State::Leased, State::Declined]
            .into_iter()
            .find(|st| st.name() == s)
    }
}

/// A named set of addresses: sorted, non-overlapping inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub ranges: Vec<(u32, u32)>,
    /// At most this many addresses declined at once: a client that
    /// declines every offer cannot take the whole pool out of use.
    pub max_declined: u64,
}

impl Pool {
    pub fn new(name: &str, mut ranges: Vec<(u32, u32)>) -> Pool {
        ranges.sort_unstable();
        let mut p = Pool {
            name: name.to_string(),
            ranges,
            max_declined: 0,
        };
        p.max_declined = default_max_declined(p.size());
        p
    }

    pub fn size(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| u64::from(b - a) + 1).sum()
    }
}

/// A quarter of the pool, at least 1.
pub fn default_max_declined(size: u64) -> u64 {
    (size / 4).max(1)
}

/// Why a request was refused. `code()` is the word on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoPool(String),
    NotInPool(Ipv4Addr),
    Taken(Ipv4Addr),
    Disabled(Ipv4Addr),
    Exhausted(String),
    NotHeld(Ipv4Addr),
    /// The pool has no record of the client (an INIT-REBOOT, RFC 2131
    /// §4.3.2: the server must stay silent).
    Unknown(String),
    /// Held back for another client (a requester's pinned address).
    Reserved(Ipv4Addr),
}

impl Refusal {
    pub fn code(&self) -> Code {
        match self {
            Refusal::NoPool(_) => Code::NoPool,
            Refusal::NotInPool(_) => Code::NotInPool,
            Refusal::Taken(_) => Code::Taken,
            Refusal::Disabled(_) => Code::Disabled,
            Refusal::Exhausted(_) => Code::Exhausted,
            Refusal::NotHeld(_) => Code::NotHeld,
            Refusal::Unknown(_) => Code::Unknown,
            Refusal::Reserved(_) => Code::Reserved,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoPool(p) => write!(f, "no pool named {p}"),
            Refusal::NotInPool(a) => write!(f, "{a} is in no pool"),
            Refusal::Taken(a) => write!(f, "{a} is held by another client"),
            Refusal::Disabled(a) => write!(f, "{a} is disabled"),
            Refusal::Exhausted(p) => write!(f, "No available addresses in pool {p}"),
            Refusal::NotHeld(a) => write!(f, "{a} is not held by that client"),
            Refusal::Unknown(c) => write!(f, "no record of client {c} in this pool"),
            Refusal::Reserved(a) => write!(f, "{a} is reserved for another client"),
        }
    }
}

/// Which address a request would like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The pool's least recently used free address.
    Any,
    /// This address or nothing.
    Exact(u32),
    /// The least recently used free address in this range.
    Range(u32, u32),
    /// This one if free, else any.
    Prefer(u32),
}

/// An allocation request (`ALLOC` on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alloc {
    pub pool: String,
    pub service: String,
    pub client: String,
    /// Seconds, or [`FOREVER`].
    pub lease: Time,
    pub want: Want,
    /// Try the client's current or previous address first.
    pub previous: bool,
    /// A reservation (an offer), not a lease.
    pub hold: bool,
    /// With `exact`: only if the client already holds that address (a
    /// DHCPREQUEST answering our offer, RFC 2131 §4.3.2).
    pub mine: bool,
    /// With `exact`: only if the client holds that address or held it
    /// last and nobody has had it since (a DHCPREQUEST in INIT-REBOOT).
    /// Refused with [`Refusal::Unknown`] when the pool has no record of
    /// the client, [`Refusal::NotHeld`] when its record is another address.
    pub known: bool,
    /// A renewal of a lease that still has this many seconds to run keeps
    /// the end it has (0: never): nothing is written, so a client renewing
    /// in a loop does not grow the log by a record per request.
    pub keep: Time,
    /// The client's host name (`host=`): kept with the lease; a renewal
    /// without one keeps the name the client had.
    pub host: Option<String>,
    /// Another name of the same client (a PXE firmware's hardware address,
    /// the client identifier its next stage sends): when the client has
    /// nothing under its own name, it takes over what it has under this.
    pub alias: Option<String>,
}

impl Alloc {
    /// A plain request: any address, a lease, nothing else asked for.
    pub fn new(pool: &str, service: &str, client: &str, lease: Time) -> Alloc {
        Alloc {
            pool: pool.to_string(),
            service: service.to_string(),
            client: client.to_string(),
            lease,
            want: Want::Any,
            previous: false,
            hold: false,
            mine: false,
            known: false,
            keep: 0,
            host: None,
            alias: None,
        }
    }
}

/// Per-pool counts, as `aasadmin stats` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub name: String,
    pub size: u64,
    pub leased: u64,
    pub offered: u64,
    pub free: u64,
    /// Disabled and not held.
    pub disabled: u64,
    pub declined: u64,
    /// Reserved and not held by anyone (so not free either).
    pub reserved: u64,
}

/// What `QUERY` selects by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub pool: Option<String>,
    pub range: Option<(u32, u32)>,
    pub service: Option<String>,
    pub client: Option<String>,
    pub state: Option<Selector>,
    /// Rows end with the host name (`QUERY ... hostname`); without it
    /// they are as older requesters expect them.
    pub with_host: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    State(State),
    Disabled,
    /// Reserved and held by nobody.
    Reserved,
}
