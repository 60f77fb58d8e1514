//! Reply assembly: what to answer (message type, address, lease) and the
//! merged parameters turned into a DHCP reply's options, header, bytes and
//! destination. BOOTP replies (`bootp.rs`) take their options from here too.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::options::{self, Header, ReplyOption};
use super::packet::{code, Request};
use super::{drop_line, fqdn, route, Destination, Exchange, Reply};
use crate::config::keys::global_default;
use crate::config::{LeaseTime, Params, Subnet};
use crate::{log_debug, log_info};

/// What to answer, before it is turned into bytes.
pub(super) struct Answer {
    pub(super) kind: MessageType,
    pub(super) yiaddr: Ipv4Addr,
    pub(super) lease: Option<LeaseTime>,
    /// Option 56 text, for NAKs.
    pub(super) message: Option<String>,
}

impl Exchange<'_, '_> {
    /// The reply to this request on `subnet` with `params` (merged for it).
    pub(super) fn reply(&self, subnet: &Subnet, params: &Params, answer: Answer) -> Option<Reply> {
        let req = self.req;
        let nak = answer.kind == MessageType::Nak;
        let server_id = self.server_id(subnet);
        let kind = [u8::from(answer.kind)];
        let named_id = self.server_id_override().unwrap_or(server_id).octets();
        let times = answer.lease.map(|l| lease_times(l, params));
        let mut opts = Vec::with_capacity(16);
        opts.push(required(code::MESSAGE_TYPE, &kind[..]));
        opts.push(required(code::SERVER_ID, &named_id[..]));
        if let Some(times) = &times {
            opts.extend(lease_options(times));
        }
        if let Some(text) = &answer.message {
            opts.push(optional(code::MESSAGE, text.as_bytes()));
        }
        if !nak {
            opts.extend(parameter_options(req, subnet, params));
        }
        if answer.lease.is_some() {
            if let Some(sent) = req.option(code::CLIENT_FQDN) {
                let conf = |c: u8| params.options.get(&c).map(Vec::as_slice);
                match fqdn::reply(sent, conf(code::DOMAIN_NAME), conf(code::HOST_NAME)) {
                    Some(v) => {
                        opts.retain(|o| o.code != code::CLIENT_FQDN);
                        opts.push(optional(code::CLIENT_FQDN, v));
                    }
                    None => log_debug!(
                        "client FQDN (option 81) from {} is malformed: not answered",
                        req.mac()
                    ),
                }
            }
        }
        // RFC 6842: the client identifier goes back unchanged.
        if let Some(id) = req.client_id() {
            opts.push(required(code::CLIENT_ID, id));
        }
        // RFC 3046 §2.2: echo option 82, byte for byte, last; only a relay's.
        if !req.giaddr.is_unspecified() {
            if let Some(info) = req.option(code::RELAY_AGENT_INFO) {
                opts.push(required(code::RELAY_AGENT_INFO, info));
            }
        }
        let mut flags = req.flags;
        if nak && !req.giaddr.is_unspecified() {
            flags |= 0x8000; // RFC 2131 §4.3.2: a relayed NAK is broadcast
        }
        let ack_of_bound =
            answer.kind == MessageType::Ack && !req.ciaddr.is_unspecified() && self.ciaddr_in_use();
        let header = Header {
            htype: req.htype,
            hlen: req.hlen,
            xid: req.xid,
            flags,
            ciaddr: if ack_of_bound {
                req.ciaddr
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            yiaddr: answer.yiaddr,
            siaddr: match (nak, params.next_server) {
                (false, Some(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            file: match (nak, &params.boot_file) {
                (false, Some(f)) => f.as_bytes().to_vec(),
                _ => Vec::new(),
            },
        };
        let limit = options::message_limit(req.max_message_size(), self.at.mtu);
        let overload = self.cfg.server.option_overload;
        let encoded = match options::encode(&header, &opts, limit, overload) {
            Ok(e) => e,
            Err(options::TooBig) => {
                drop_line(
                    req,
                    self.at,
                    &format!("required options exceed {limit} bytes"),
                );
                return None;
            }
        };
        for c in &encoded.dropped {
            log_info!("Option code {c} did not fit in packet");
        }
        if !nak {
            log_info!(
                "DHCP{} on {} to {}",
                kind_name(answer.kind),
                if answer.yiaddr.is_unspecified() {
                    req.ciaddr
                } else {
                    answer.yiaddr
                },
                req.mac()
            );
        }
        let to = match (answer.kind, req.ciaddr.is_unspecified()) {
            // RFC 2131 §4.3.5: INFORM answers go to ciaddr; some clients leave
            // it empty, so fall back to the datagram's source.
            (MessageType::Ack, true) if answer.lease.is_none() && req.giaddr.is_unspecified() => {
                if self.at.src.ip().is_unspecified() {
                    Destination::Broadcast
                } else {
                    Destination::Unicast(*self.at.src.ip())
                }
            }
            _ => route::destination(req, answer.yiaddr, nak),
        };
        Some(Reply {
            bytes: encoded.bytes,
            to,
            server_id,
            probe: None,
        })
    }
}

fn kind_name(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Offer => "OFFER",
        MessageType::Ack => "ACK",
        MessageType::Nak => "NAK",
        _ => "REPLY",
    }
}

pub(super) fn required<'a>(code: u8, value: impl Into<Cow<'a, [u8]>>) -> ReplyOption<'a> {
    ReplyOption {
        code,
        value: value.into(),
        required: true,
    }
}

fn optional<'a>(code: u8, value: impl Into<Cow<'a, [u8]>>) -> ReplyOption<'a> {
    ReplyOption {
        code,
        value: value.into(),
        required: false,
    }
}

/// The values of options 51, 58 and 59; `None` for T1/T2 with an infinite
/// lease.
struct LeaseTimes {
    lease: [u8; 4],
    renewal_rebinding: Option<([u8; 4], [u8; 4])>,
}

fn lease_times(lease: LeaseTime, params: &Params) -> LeaseTimes {
    let secs = match lease {
        LeaseTime::Infinite => {
            return LeaseTimes {
                lease: [0xff; 4],
                renewal_rebinding: None,
            }
        }
        LeaseTime::Secs(s) => s,
    };
    let part = |pct: Option<f64>, default: fn(&Params) -> Option<f64>| {
        let t = (f64::from(secs) * pct.unwrap_or_else(|| global_default(default)) / 100.0) as u32;
        t.to_be_bytes()
    };
    LeaseTimes {
        lease: secs.to_be_bytes(),
        renewal_rebinding: Some((
            part(params.renewal_percent, |g| g.renewal_percent),
            part(params.rebind_percent, |g| g.rebind_percent),
        )),
    }
}

/// Option 51, and T1/T2 (58/59) for a finite lease (RFC 2131 §4.4.5).
fn lease_options(times: &LeaseTimes) -> impl Iterator<Item = ReplyOption<'_>> {
    let t1_t2 = times
        .renewal_rebinding
        .as_ref()
        .into_iter()
        .flat_map(|(t1, t2)| {
            [
                required(code::RENEWAL_TIME, &t1[..]),
                required(code::REBINDING_TIME, &t2[..]),
            ]
        });
    std::iter::once(required(code::LEASE_TIME, &times.lease[..])).chain(t1_t2)
}

/// Codes the server sets itself; a request list naming them changes nothing.
const PROTOCOL_CODES: [u8; 12] = [
    code::PAD,
    code::REQUESTED_ADDRESS,
    code::LEASE_TIME,
    code::OVERLOAD,
    code::MESSAGE_TYPE,
    code::SERVER_ID,
    code::PARAMETER_REQUEST_LIST,
    code::MAX_MESSAGE_SIZE,
    code::RENEWAL_TIME,
    code::REBINDING_TIME,
    code::CLIENT_ID,
    code::END,
];

/// The configured options the client gets: with a parameter request list,
/// those it asked for in its order (RFC 2131 §4.3.1), each once; without
/// one, all of them. The subnet mask is always sent.
pub(super) fn parameter_options<'a>(
    req: &Request,
    subnet: &Subnet,
    params: &'a Params,
) -> Vec<ReplyOption<'a>> {
    let mask = subnet.mask().octets();
    let vendor = (!params.vendor_options.is_empty()).then(|| encapsulate(&params.vendor_options));
    let value = |c: u8| -> Option<Cow<'a, [u8]>> {
        match c {
            code::SUBNET_MASK => Some(Cow::Owned(mask.to_vec())),
            code::VENDOR_SPECIFIC if vendor.is_some() => vendor.clone().map(Cow::Owned),
            code::RELAY_AGENT_INFO => None,
            _ => params.options.get(&c).map(|v| Cow::Borrowed(v.as_slice())),
        }
    };
    let mut out: Vec<ReplyOption<'a>> = Vec::with_capacity(16);
    let add = |c: u8, out: &mut Vec<ReplyOption<'a>>| {
        if PROTOCOL_CODES.contains(&c) || out.iter().any(|o| o.code == c) {
            return;
        }
        if let Some(v) = value(c) {
            out.push(ReplyOption {
                code: c,
                value: v,
                required: c == code::SUBNET_MASK,
            });
        }
    };
    match req.option(code::PARAMETER_REQUEST_LIST) {
        Some(list) => {
            for &c in list {
                add(c, &mut out);
            }
            add(code::SUBNET_MASK, &mut out);
        }
        None => {
            add(code::SUBNET_MASK, &mut out);
            let mut all: Vec<u8> = params.options.keys().copied().collect();
            if vendor.is_some() {
                all.push(code::VENDOR_SPECIFIC);
            }
            all.sort_unstable();
            for c in all {
                add(c, &mut out);
            }
        }
    }
    out
}

/// `vendor_option_N` values as option 43 sub-options (RFC 2132 §8.4).
fn encapsulate(subs: &std::collections::BTreeMap<u8, Vec<u8>>) -> Vec<u8> {
    let mut v = Vec::new();
    for (c, data) in subs {
        // The config caps values; a sub-option holds at most 255 bytes.
        let data = &data[..data.len().min(255)];
        v.push(*c);
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    v
}
