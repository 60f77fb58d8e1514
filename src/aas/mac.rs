//! Finding a DHCP client by its hardware address, whichever form of key
//! in.dhcpd stored it under: `subnet/htype/aa:bb:..` for a client without
//! a client identifier, `subnet/id/HEX` for one with (option 61). An
//! identifier that is a hardware type and the address (RFC 2132 §9.14, as
//! udhcpc and iPXE send it), or an RFC 4361 one whose DUID is a DUID-LLT
//! or DUID-LL (RFC 8415 §11.2, §11.4, as dhcpcd sends it), names the same
//! address. An administrator types the MAC; the key is in.aasd's business.

/// A hardware address as typed: hex bytes separated by `:` or `-`, or
/// plain hex digits; 1 to 16 bytes.
pub fn parse(s: &str) -> Option<Vec<u8>> {
    let bytes = if s.contains([':', '-']) {
        s.split([':', '-'])
            .map(|b| {
                (1..=2).contains(&b.len()).then_some(())?;
                u8::from_str_radix(b, 16).ok()
            })
            .collect()
    } else {
        hex_bytes(s)
    };
    bytes.filter(|b| (1..=16).contains(&b.len()))
}

/// Plain hex digits, two a byte, any length.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Whether the AAS client key `key` names the hardware address `mac`.
pub fn in_key(key: &str, mac: &[u8]) -> bool {
    let mut parts = key.splitn(3, '/');
    let (Some(_subnet), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if kind != "id" {
        // subnet/htype/aa:bb:...
        return kind.parse::<u8>().is_ok() && parse(rest).as_deref() == Some(mac);
    }
    match hex_bytes(rest).as_deref() {
        // Type 0 is opaque text (RFC 2132 §9.14), 255 an IAID and a DUID.
        Some([255, _, _, _, _, duid @ ..]) => duid_address(duid) == Some(mac),
        Some([t, addr @ ..]) if *t != 0 && *t != 255 => addr == mac,
        _ => false,
    }
}

/// The link-layer address in a DUID-LLT (type 1: hardware type, time,
/// address) or DUID-LL (type 3: hardware type, address).
fn duid_address(duid: &[u8]) -> Option<&[u8]> {
    match duid {
        [0, 1, _, _, _, _, _, _, addr @ ..] | [0, 3, _, _, addr @ ..] if !addr.is_empty() => {
            Some(addr)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x10];

    #[test]
    fn addresses_as_typed() {
        for s in [
            "02:77:00:00:00:10",
            "02-77-00-00-00-10",
            "027700000010",
            "2:77:0:0:0:10",
        ] {
            assert_eq!(parse(s).as_deref(), Some(&MAC[..]), "{s}");
        }
        for bad in [
            "",
            "02:77:",
            "0g:77",
            "027",
            "02:777:00",
            &"00".repeat(17),
            "é1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_key_form_of_one_address() {
        for key in [
            "10.77.0.0/1/02:77:00:00:00:10",
            "10.78.0.0/1/02:77:00:00:00:10",
            "10.77.0.0/id/01027700000010",
            // dhcpcd: 255, IAID, DUID-LLT (type 1, htype 1, time, MAC).
            "10.77.0.0/id/ff00000001000100012c9f5a7b027700000010",
            // DUID-LL (type 3, htype 1, MAC).
            "10.77.0.0/id/ff0000000100030001027700000010",
        ] {
            assert!(in_key(key, &MAC), "{key}");
        }
        for key in [
            "10.77.0.0/1/02:77:00:00:00:11",
            "10.77.0.0/id/00027700000010",
            "10.77.0.0/id/0102770000001000",
            "10.77.0.0/id/ff000000010002000102770000001",
            "10.77.0.0/id/ff00000001000200012c9f5a7b027700000010",
            "line1",
            "ppp/line/3",
            "10.77.0.0/id/zz",
        ] {
            assert!(!in_key(key, &MAC), "{key}");
        }
    }
}
