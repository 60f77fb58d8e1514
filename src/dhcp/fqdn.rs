//! The client FQDN option (81, RFC 4702) in an OFFER or ACK, for a server
//! that updates no DNS: the flags say so (N set, S cleared, O set when the
//! client's S asked otherwise), so the client registers its own name, and a
//! partial name, or a bare host name, comes back qualified with the
//! client's `domain_name`.

/// RFC 4702 §2.1 flag bits.
const S: u8 = 0x01;
const O: u8 = 0x02;
const E: u8 = 0x04;
const N: u8 = 0x08;

/// RFC 4702 §2.2: the RCODE fields are deprecated; a server sends 255.
const RCODE_SERVER: u8 = 255;

/// A name as the client sent it: its labels, and whether it is complete
/// (ends with the root label, or with a dot in the ASCII form).
struct Name {
    labels: Vec<Vec<u8>>,
    full: bool,
}

/// Option 81 for the reply to a client that sent `sent`, or `None` when
/// `sent` is malformed (the request is still served, without it).
/// `domain` qualifies a partial name; `host_name` stands in for an empty one.
pub fn reply(sent: &[u8], domain: Option<&[u8]>, host_name: Option<&[u8]>) -> Option<Vec<u8>> {
    let (&flags, rest) = sent.split_first()?;
    let wire = flags & E != 0;
    let name = rest.get(2..)?; // past RCODE1 and RCODE2
    let mut name = if wire {
        from_wire(name)?
    } else {
        from_ascii(name)?
    };
    if name.labels.is_empty() {
        if let Some(h) = host_name {
            name = from_ascii(h)?;
        }
    }
    // A single label is a host name, even with the root label after it
    // (ISC dhclient sends `send fqdn.fqdn "pc1"` so), never a top-level
    // domain: it is qualified as ISC dhcpd does with its ddns-domainname.
    if (!name.full || name.labels.len() == 1) && !name.labels.is_empty() {
        if let Some(d) = domain.and_then(from_ascii) {
            let mut qualified = name.labels.clone();
            qualified.extend(d.labels);
            // RFC 1035 §2.3.4: at most 255 bytes in wire form.
            if qualified.iter().map(|l| l.len() + 1).sum::<usize>() < 255 {
                name = Name {
                    labels: qualified,
                    full: true,
                };
            }
        }
    }
    let mut out = vec![N | (flags & E) | if flags & S != 0 { O } else { 0 }];
    out.extend([RCODE_SERVER, RCODE_SERVER]);
    if wire {
        for l in &name.labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        if name.full {
            out.push(0);
        }
    } else {
        out.extend(name.labels.join(&b'.'));
        if name.full && !name.labels.is_empty() {
            out.push(b'.');
        }
    }
    Some(out)
}

/// The name a client sent in option 81, its labels joined by dots;
/// `None` when it sent none or a malformed option.
pub fn client_name(sent: &[u8]) -> Option<Vec<u8>> {
    let (&flags, rest) = sent.split_first()?;
    let name = rest.get(2..)?;
    let name = if flags & E != 0 {
        from_wire(name)?
    } else {
        from_ascii(name)?
    };
    (!name.labels.is_empty()).then(|| name.labels.join(&b'.'))
}

fn label_ok(l: &[u8]) -> bool {
    !l.is_empty() && l.len() <= 63 && l.iter().all(|b| b.is_ascii_graphic() && *b != b'.')
}

/// RFC 1035 labels without compression; no root label means partial.
fn from_wire(mut v: &[u8]) -> Option<Name> {
    let mut labels = Vec::new();
    while let Some((&len, rest)) = v.split_first() {
        if len == 0 {
            return rest.is_empty().then_some(Name { labels, full: true });
        }
        let l = rest.get(..usize::from(len))?;
        if !label_ok(l) {
            return None;
        }
        labels.push(l.to_vec());
        v = &rest[l.len()..];
    }
    Some(Name {
        labels,
        full: false,
    })
}

/// The deprecated ASCII form: a trailing dot means fully qualified.
fn from_ascii(v: &[u8]) -> Option<Name> {
    let v = v.strip_suffix(&[0]).unwrap_or(v); // a C string's NUL
    let full = v.ends_with(b".");
    let v = v.strip_suffix(b".").unwrap_or(v);
    if v.is_empty() {
        return Some(Name {
            labels: Vec::new(),
            full: false,
        });
    }
    let labels: Vec<Vec<u8>> = v.split(|b| *b == b'.').map(<[u8]>::to_vec).collect();
    labels
        .iter()
        .all(|l| label_ok(l))
        .then_some(Name { labels, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: Option<&[u8]> = Some(b"example.test");

    #[test]
    fn the_name_a_client_sent() {
        assert_eq!(
            client_name(b"\x01\0\0pc1.example.test").unwrap(),
            b"pc1.example.test"
        );
        assert_eq!(client_name(b"\x05\0\0\x03pc1\x02ex\0").unwrap(), b"pc1.ex");
        assert_eq!(client_name(b"\x00\0\0"), None);
        assert_eq!(client_name(b"\x04\0\0\x09pc"), None, "a label past the end");
        assert_eq!(client_name(b"\x00"), None);
    }

    #[test]
    fn flags_say_the_server_updates_nothing() {
        // S asked for: N set, S cleared, O set; E kept.
        assert_eq!(
            reply(b"\x05\0\0\x04host", DOMAIN, None).unwrap()[0],
            N | E | O
        );
        // S not asked: no override.
        assert_eq!(reply(b"\x04\0\0\x04host", DOMAIN, None).unwrap()[0], N | E);
        assert_eq!(reply(b"\x00\0\0host", DOMAIN, None).unwrap()[0], N);
        // N asked by the client: the same answer.
        assert_eq!(reply(b"\x0c\0\0\x04host", DOMAIN, None).unwrap()[0], N | E);
        assert_eq!(
            &reply(b"\x05\0\0\x04host", None, None).unwrap()[1..3],
            [255, 255]
        );
    }

    #[test]
    fn partial_names_are_qualified_and_full_ones_kept() {
        assert_eq!(
            reply(b"\x05\0\0\x04host", DOMAIN, None).unwrap(),
            b"\x0e\xff\xff\x04host\x07example\x04test\x00"
        );
        assert_eq!(
            reply(b"\x05\0\0\x04host\x03org\x00", DOMAIN, None).unwrap(),
            b"\x0e\xff\xff\x04host\x03org\x00"
        );
        // One label with the root label: a host name all the same.
        assert_eq!(
            reply(b"\x05\0\0\x04host\x00", DOMAIN, None).unwrap(),
            b"\x0e\xff\xff\x04host\x07example\x04test\x00"
        );
        assert_eq!(
            reply(b"\x01\0\0host", DOMAIN, None).unwrap(),
            b"\x0a\xff\xffhost.example.test."
        );
        assert_eq!(
            reply(b"\x01\0\0host.org.", DOMAIN, None).unwrap(),
            b"\x0a\xff\xffhost.org."
        );
        // No domain_name: the partial name comes back as it was.
        assert_eq!(
            reply(b"\x05\0\0\x04host", None, None).unwrap(),
            b"\x0e\xff\xff\x04host"
        );
        // No name: the configured host_name, qualified.
        assert_eq!(
            reply(b"\x05\0\0", DOMAIN, Some(b"pc1")).unwrap(),
            b"\x0e\xff\xff\x03pc1\x07example\x04test\x00"
        );
        assert_eq!(reply(b"\x05\0\0", DOMAIN, None).unwrap(), b"\x0e\xff\xff");
    }

    #[test]
    fn malformed_names_get_no_option() {
        for bad in [
            &b""[..],
            b"\x05\0",
            b"\x05\0\0\x05host",
            b"\x05\0\0\x00\x04host",
            b"\x05\0\0\x02a.",
            b"\x01\0\0a..b",
            b"\x01\0\0a b",
        ] {
            assert_eq!(reply(bad, DOMAIN, None), None, "{bad:?}");
        }
    }
}
