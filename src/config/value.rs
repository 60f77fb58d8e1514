//! Value parsers: text from the file to typed values or wire bytes. Each
//! error says what was expected; the caller adds file, line and key.

use std::net::Ipv4Addr;

use super::optable::Kind;
use super::LeaseTime;

/// Longest value one option may carry; longer ones are split on the wire
/// (RFC 3396), but a reply has no room for more anyway.
pub const MAX_OPTION_LEN: usize = 1024;
/// 49,674 days: SCO's largest finite lease.
const MAX_LEASE_SECS: u64 = 49_674 * 86_400;

pub fn ip(v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("\"{v}\" is not an IPv4 address (a.b.c.d)"))
}

fn items(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

pub fn ip_list(v: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for item in items(v) {
        out.extend_from_slice(&ip(item)?.octets());
    }
    if out.is_empty() {
        return Err("expected one or more IPv4 addresses".into());
    }
    Ok(out)
}

pub fn uint(v: &str, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("\"{v}\" is not a whole number from 0 to {max}")),
    }
}

pub fn int(v: &str, min: i64, max: i64) -> Result<i64, String> {
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("\"{v}\" is not a whole number from {min} to {max}")),
    }
}

pub fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("\"{v}\" is not yes or no")),
    }
}

pub fn percent(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(format!("\"{v}\" is not a percentage above 0 and below 100")),
    }
}

/// Seconds, or a number with s/m/h/d, or `infinite`.
pub fn lease_time(v: &str) -> Result<LeaseTime, String> {
    if v.eq_ignore_ascii_case("infinite") {
        return Ok(LeaseTime::Infinite);
    }
    let bad = || {
        format!("\"{v}\" is not a lease time (seconds, or a number with s/m/h/d, or \"infinite\")")
    };
    let (digits, unit) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1),
        Some((i, 'm')) => (&v[..i], 60),
        Some((i, 'h')) => (&v[..i], 3600),
        Some((i, 'd')) => (&v[..i], 86_400),
        _ => (v, 1),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    if secs > MAX_LEASE_SECS {
        return Err(format!(
            "\"{v}\" is longer than 49674 days; use \"infinite\""
        ));
    }
    Ok(LeaseTime::Secs(secs as u32))
}

/// `01:02:0a`, `01 02 0a` or `01020a`.
pub fn hex(v: &str) -> Result<Vec<u8>, String> {
    let digits: String = v
        .chars()
        .filter(|c| *c != ':' && *c != '-' && !c.is_whitespace())
        .collect();
    let bad = || format!("\"{v}\" is not hex bytes (like 01:02:0a)");
    if digits.is_empty() || !digits.len().is_multiple_of(2) || !digits.is_ascii() {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// Colon-separated hex bytes, each one or two digits (a hardware address).
pub fn hw_addr(v: &str) -> Result<Vec<u8>, String> {
    let bytes: Result<Vec<u8>, _> = v
        .split(':')
        .map(|b| match b.len() {
            1 | 2 => u8::from_str_radix(b, 16).map_err(|_| ()),
            _ => Err(()),
        })
        .collect();
    match bytes {
        Ok(b) if !b.is_empty() && b.len() <= 16 => Ok(b),
        _ => Err(format!(
            "\"{v}\" is not a hardware address (1 to 16 hex bytes separated by colons)"
        )),
    }
}

fn text(v: &str) -> Result<Vec<u8>, String> {
    if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("expected printable ASCII text".into());
    }
    if v.is_empty() {
        return Err("expected text".into());
    }
    Ok(v.as_bytes().to_vec())
}

/// RFC 1035 §3.1 names, uncompressed, as RFC 3397 allows.
fn domain_list(v: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for name in items(v) {
        for label in name.trim_end_matches('.').split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(format!("\"{name}\" is not a domain name"));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
    if out.is_empty() {
        return Err("expected one or more domain names".into());
    }
    Ok(out)
}

/// RFC 3442: for each route, the prefix length, the significant octets of
/// the destination, and the router.
fn classless_routes(v: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for route in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || format!("\"{route}\" is not a route (a.b.c.d/len router)");
        let mut parts = route.split_whitespace();
        let (Some(dest), Some(router), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let (net, len) = dest.split_once('/').ok_or_else(bad)?;
        let net = ip(net)?;
        let len: u8 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(bad)?;
        out.push(len);
        out.extend_from_slice(&net.octets()[..usize::from(len).div_ceil(8)]);
        out.extend_from_slice(&ip(router)?.octets());
    }
    if out.is_empty() {
        return Err("expected one or more routes (a.b.c.d/len router)".into());
    }
    Ok(out)
}

/// Encode a named option's value.
pub fn encode(kind: Kind, v: &str) -> Result<Vec<u8>, String> {
    let bytes = match kind {
        Kind::Ip => ip(v)?.octets().to_vec(),
        Kind::IpList => ip_list(v)?,
        Kind::IpPairs => {
            let b = ip_list(v)?;
            if !b.len().is_multiple_of(8) {
                return Err("expected pairs of IPv4 addresses".into());
            }
            b
        }
        Kind::U8 => vec![uint(v, 255)? as u8],
        Kind::U16 => (uint(v, 65_535)? as u16).to_be_bytes().to_vec(),
        Kind::U32 => (uint(v, u64::from(u32::MAX))? as u32)
            .to_be_bytes()
            .to_vec(),
        Kind::I32 => (int(v, i64::from(i32::MIN), i64::from(i32::MAX))? as i32)
            .to_be_bytes()
            .to_vec(),
        Kind::Bool => vec![u8::from(boolean(v)?)],
        Kind::Text => text(v)?,
        Kind::U16List => {
            let mut out = Vec::new();
            for item in items(v) {
                out.extend_from_slice(&(uint(item, 65_535)? as u16).to_be_bytes());
            }
            if out.is_empty() {
                return Err("expected one or more numbers".into());
            }
            out
        }
        Kind::DomainList => domain_list(v)?,
        Kind::ClasslessRoutes => classless_routes(v)?,
    };
    if bytes.len() > MAX_OPTION_LEN {
        return Err(format!(
            "value is {} bytes; at most {MAX_OPTION_LEN} fit",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_times() {
        assert_eq!(lease_time("3600"), Ok(LeaseTime::Secs(3600)));
        assert_eq!(lease_time("1d"), Ok(LeaseTime::Secs(86_400)));
        assert_eq!(lease_time("90m"), Ok(LeaseTime::Secs(5400)));
        assert_eq!(lease_time("2h"), Ok(LeaseTime::Secs(7200)));
        assert_eq!(lease_time("10s"), Ok(LeaseTime::Secs(10)));
        assert_eq!(lease_time("infinite"), Ok(LeaseTime::Infinite));
        assert_eq!(lease_time("49674d"), Ok(LeaseTime::Secs(49_674 * 86_400)));
        for bad in [
            "",
            "d",
            "10x",
            "-1",
            "1.5h",
            "49675d",
            "99999999999999999999",
        ] {
            assert!(lease_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(
            encode(Kind::IpList, "10.0.0.1, 10.0.0.2"),
            Ok(vec![10, 0, 0, 1, 10, 0, 0, 2])
        );
        assert_eq!(encode(Kind::IpList, "10.0.0.1 10.0.0.2").unwrap().len(), 8);
        assert!(encode(Kind::IpPairs, "10.0.0.1").is_err());
        assert_eq!(encode(Kind::U16, "1500"), Ok(vec![5, 220]));
        assert_eq!(
            encode(Kind::I32, "-3600"),
            Ok((-3600i32).to_be_bytes().to_vec())
        );
        assert_eq!(encode(Kind::Bool, "yes"), Ok(vec![1]));
        assert_eq!(
            encode(Kind::U8, "256").unwrap_err(),
            "\"256\" is not a whole number from 0 to 255"
        );
        assert_eq!(
            encode(Kind::DomainList, "eng.example.com, example.com"),
            Ok(b"\x03eng\x07example\x03com\x00\x07example\x03com\x00".to_vec())
        );
        assert_eq!(
            encode(
                Kind::ClasslessRoutes,
                "10.0.0.0/8 192.168.2.1, 0.0.0.0/0 192.168.2.1"
            ),
            Ok(vec![8, 10, 192, 168, 2, 1, 0, 192, 168, 2, 1])
        );
        assert!(encode(Kind::Text, "tab\there").is_err());
        assert!(encode(Kind::Text, &"x".repeat(1025)).is_err());
    }

    #[test]
    fn hex_and_hardware() {
        assert_eq!(hex("01:02:0a"), Ok(vec![1, 2, 10]));
        assert_eq!(hex("01 02 0a"), Ok(vec![1, 2, 10]));
        assert_eq!(hex("01020A"), Ok(vec![1, 2, 10]));
        for bad in ["", "1", "0g", "é1"] {
            assert!(hex(bad).is_err(), "{bad}");
        }
        assert_eq!(
            hw_addr("0:40:5:12:34:56"),
            Ok(vec![0, 0x40, 5, 0x12, 0x34, 0x56])
        );
        assert!(hw_addr("00:40::12").is_err());
        assert!(hw_addr(&["aa"; 17].join(":")).is_err());
    }
}
