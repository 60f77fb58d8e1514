//! Value parsers: text from the file to typed values or wire bytes. Each
//! error says what was expected; the caller adds file, line and key.

use std::fmt;
use std::net::Ipv4Addr;

use super::optable::Kind;
use super::{LeaseTime, OptType};

/// Longest value one option may carry; longer ones are split on the wire
/// (RFC 3396), but a reply has no room for more anyway.
pub const MAX_OPTION_LEN: usize = 1024;
/// 49,674 days: SCO's largest finite lease.
const MAX_LEASE_SECS: u64 = 49_674 * 86_400;
/// IFNAMSIZ: Linux interface names have at most 15 bytes and a NUL.
const MAX_IFNAME: usize = 15;
/// The `file` field of a reply holds 127 bytes and a NUL.
const MAX_BOOT_FILE: usize = 127;

/// What a value should have been; each names the text it got where that helps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    NotAddress(String),
    NoAddresses,
    NotAddressPairs,
    NotWholeNumber {
        text: String,
        min: i128,
        max: i128,
    },
    NoNumbers,
    NotYesNo(String),
    /// Above 0 and below 100 (T1, T2).
    NotPercent(String),
    /// From 0 to 100 (`pad_lease`).
    NotPad(String),
    NotLeaseTime(String),
    LeaseTooLong(String),
    NotHex(String),
    NotHardwareAddress(String),
    NotPrintable,
    NoText,
    NotDomainName(String),
    NoDomainNames,
    NotRoute(String),
    NoRoutes,
    /// An encoded option longer than [`MAX_OPTION_LEN`].
    TooLong(usize),
    NoProbeTimeout,
    NotGroupName,
    NotOneWord,
    NotHostPort(String),
    NotInterfaceName(String),
    NoInterfaces,
    NotBootFile,
    NotOptionType(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValueError::*;
        match self {
            NotAddress(v) => write!(f, "\"{v}\" is not an IPv4 address (a.b.c.d)"),
            NoAddresses => f.write_str("expected one or more IPv4 addresses"),
            NotAddressPairs => f.write_str("expected pairs of IPv4 addresses"),
            NotWholeNumber { text, min, max } => {
                write!(f, "\"{text}\" is not a whole number from {min} to {max}")
            }
            NoNumbers => f.write_str("expected one or more numbers"),
            NotYesNo(v) => write!(f, "\"{v}\" is not yes or no"),
            NotPercent(v) => write!(f, "\"{v}\" is not a percentage above 0 and below 100"),
            NotPad(v) => write!(f, "\"{v}\" is not a percentage from 0 to 100"),
            NotLeaseTime(v) => write!(
                f,
                "\"{v}\" is not a lease time (seconds, or a number with s/m/h/d, or \"infinite\")"
            ),
            LeaseTooLong(v) => write!(f, "\"{v}\" is longer than 49674 days; use \"infinite\""),
            NotHex(v) => write!(f, "\"{v}\" is not hex bytes (like 01:02:0a)"),
            NotHardwareAddress(v) => write!(
                f,
                "\"{v}\" is not a hardware address (1 to 16 hex bytes separated by colons)"
            ),
            NotPrintable => f.write_str("expected printable ASCII text"),
            NoText => f.write_str("expected text"),
            NotDomainName(v) => write!(f, "\"{v}\" is not a domain name"),
            NoDomainNames => f.write_str("expected one or more domain names"),
            NotRoute(v) => write!(f, "\"{v}\" is not a route (a.b.c.d/len router)"),
            NoRoutes => f.write_str("expected one or more routes (a.b.c.d/len router)"),
            TooLong(n) => write!(f, "value is {n} bytes; at most {MAX_OPTION_LEN} fit"),
            // The key is named twice: the caller adds it again in front.
            NoProbeTimeout => f.write_str("expected 1 to 10000 milliseconds"),
            NotGroupName => f.write_str("expected a group name"),
            NotOneWord => f.write_str("expected one word without blanks"),
            NotHostPort(v) => write!(f, "\"{v}\" is not host:port"),
            NotInterfaceName(v) => write!(f, "\"{v}\" is not an interface name"),
            NoInterfaces => f.write_str("expected interface names, such as eth0, eth1"),
            NotBootFile => write!(
                f,
                "expected ASCII text of at most {MAX_BOOT_FILE} bytes (the file field)"
            ),
            NotOptionType(v) => write!(
                f,
                "\"{v}\" is not one of int8, uint8, int16, uint16, int32, uint32, boolean, ip, \
                 string, binary"
            ),
        }
    }
}

impl std::error::Error for ValueError {}

type Result<T> = std::result::Result<T, ValueError>;

pub fn ip(v: &str) -> Result<Ipv4Addr> {
    v.parse().map_err(|_| ValueError::NotAddress(v.to_string()))
}

fn items(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

pub fn ip_list(v: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for item in items(v) {
        out.extend_from_slice(&ip(item)?.octets());
    }
    if out.is_empty() {
        return Err(ValueError::NoAddresses);
    }
    Ok(out)
}

/// A whole number from 0 to `max`.
pub fn whole(v: &str, max: u64) -> Result<u64> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ValueError::NotWholeNumber {
            text: v.to_string(),
            min: 0,
            max: i128::from(max),
        }),
    }
}

/// [`whole`] with its message as text, as aasd.conf's reader takes it.
pub fn uint(v: &str, max: u64) -> std::result::Result<u64, String> {
    whole(v, max).map_err(|e| e.to_string())
}

pub fn int(v: &str, min: i64, max: i64) -> Result<i64> {
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ValueError::NotWholeNumber {
            text: v.to_string(),
            min: i128::from(min),
            max: i128::from(max),
        }),
    }
}

pub fn boolean(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(ValueError::NotYesNo(v.to_string())),
    }
}

pub fn percent(v: &str) -> Result<f64> {
    match v.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(ValueError::NotPercent(v.to_string())),
    }
}

/// `pad_lease`: a percentage that may be 0 or 100.
pub fn pad_percent(v: &str) -> Result<f64> {
    match v.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(ValueError::NotPad(v.to_string())),
    }
}

/// `probe_timeout`: 1 to 10000 milliseconds.
pub fn probe_timeout(v: &str) -> Result<u32> {
    match whole(v, 10_000)? {
        0 => Err(ValueError::NoProbeTimeout),
        n => Ok(n as u32),
    }
}

/// One word without blanks, such as a group name or a password.
fn word(v: &str, bad: ValueError) -> Result<String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        Err(bad)
    } else {
        Ok(v.to_string())
    }
}

pub fn group_name(v: &str) -> Result<String> {
    word(v, ValueError::NotGroupName)
}

pub fn password(v: &str) -> Result<String> {
    word(v, ValueError::NotOneWord)
}

/// `host:port`, both parts there; they are looked up when used.
pub fn host_port(v: &str) -> Result<String> {
    let ok = v
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && !p.is_empty());
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError::NotHostPort(v.to_string()))
    }
}

/// Interface names separated by commas or blanks.
pub fn interface_names(v: &str) -> Result<Vec<String>> {
    let names: Vec<String> = v
        .split([',', ' ', '\t'])
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    let bad = names
        .iter()
        .find(|n| n.len() > MAX_IFNAME || n.contains('/') || n.chars().any(char::is_control));
    match (bad, names.is_empty()) {
        (Some(b), _) => Err(ValueError::NotInterfaceName(b.clone())),
        (None, true) => Err(ValueError::NoInterfaces),
        (None, false) => Ok(names),
    }
}

/// `boot_file`: what the reply's file field holds.
pub fn boot_file(v: &str) -> Result<String> {
    if v.len() > MAX_BOOT_FILE || !v.is_ascii() {
        Err(ValueError::NotBootFile)
    } else {
        Ok(v.to_string())
    }
}

/// The `type` of an `[option N]`.
pub fn opt_type(v: &str) -> Result<OptType> {
    Ok(match v {
        "int8" => OptType::Int8,
        "uint8" => OptType::Uint8,
        "int16" => OptType::Int16,
        "uint16" => OptType::Uint16,
        "int32" => OptType::Int32,
        "uint32" => OptType::Uint32,
        "boolean" => OptType::Boolean,
        "ip" => OptType::Ip,
        "string" => OptType::String,
        "binary" => OptType::Binary,
        _ => return Err(ValueError::NotOptionType(v.to_string())),
    })
}

/// Seconds, or a number with s/m/h/d, or `infinite`.
pub fn lease_time(v: &str) -> Result<LeaseTime> {
    if v.eq_ignore_ascii_case("infinite") {
        return Ok(LeaseTime::Infinite);
    }
    let bad = || ValueError::NotLeaseTime(v.to_string());
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
        return Err(ValueError::LeaseTooLong(v.to_string()));
    }
    Ok(LeaseTime::Secs(secs as u32))
}

/// `01:02:0a`, `01 02 0a` or `01020a`.
pub fn hex(v: &str) -> Result<Vec<u8>> {
    let digits: String = v
        .chars()
        .filter(|c| *c != ':' && *c != '-' && !c.is_whitespace())
        .collect();
    let bad = || ValueError::NotHex(v.to_string());
    if digits.is_empty() || !digits.len().is_multiple_of(2) || !digits.is_ascii() {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// Colon-separated hex bytes, each one or two digits (a hardware address).
pub fn hw_addr(v: &str) -> Result<Vec<u8>> {
    // By hand, digit by digit: every [client] header of the file comes
    // here, at every start under inetd. A `+` may lead a byte, as
    // u8::from_str_radix lets it.
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let pair = |p: &[u8]| Some(digit(p[0])? << 4 | digit(p[1])?);
    // The usual form, 00:40:05:12:34:56, read in one go.
    let b = v.as_bytes();
    if b.len() == 17 && (2..17).step_by(3).all(|i| b[i] == b':') {
        let mut six = [0u8; 6];
        let read = six
            .iter_mut()
            .zip((0..17).step_by(3))
            .all(|(byte, i)| pair(&b[i..i + 2]).map(|p| *byte = p).is_some());
        if read {
            return Ok(six.to_vec());
        }
    }
    let mut bytes = Vec::with_capacity(6);
    // The parts between colons, cut by hand (str::split costs more than
    // the digits do).
    let mut rest = v.as_bytes();
    loop {
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        let byte = match rest[..end] {
            [a] | [b'+', a] => digit(a),
            [a, b] => digit(a).zip(digit(b)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match byte {
            Some(b) if bytes.len() < 16 => bytes.push(b),
            _ => return Err(ValueError::NotHardwareAddress(v.to_string())),
        }
        if end == rest.len() {
            return Ok(bytes);
        }
        rest = &rest[end + 1..];
    }
}

fn text(v: &str) -> Result<Vec<u8>> {
    if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ValueError::NotPrintable);
    }
    if v.is_empty() {
        return Err(ValueError::NoText);
    }
    Ok(v.as_bytes().to_vec())
}

/// RFC 1035 §3.1 names, uncompressed, as RFC 3397 allows.
fn domain_list(v: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for name in items(v) {
        for label in name.trim_end_matches('.').split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(ValueError::NotDomainName(name.to_string()));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
    if out.is_empty() {
        return Err(ValueError::NoDomainNames);
    }
    Ok(out)
}

/// RFC 3442: for each route, the prefix length, the significant octets of
/// the destination, and the router.
fn classless_routes(v: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for route in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || ValueError::NotRoute(route.to_string());
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
        return Err(ValueError::NoRoutes);
    }
    Ok(out)
}

/// Encode a named option's value.
pub fn encode(kind: Kind, v: &str) -> Result<Vec<u8>> {
    let bytes = match kind {
        Kind::Ip => ip(v)?.octets().to_vec(),
        Kind::IpList => ip_list(v)?,
        Kind::IpPairs => {
            let b = ip_list(v)?;
            if !b.len().is_multiple_of(8) {
                return Err(ValueError::NotAddressPairs);
            }
            b
        }
        Kind::U8 => vec![whole(v, 255)? as u8],
        Kind::U16 => (whole(v, 65_535)? as u16).to_be_bytes().to_vec(),
        Kind::U32 => (whole(v, u64::from(u32::MAX))? as u32)
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
                out.extend_from_slice(&(whole(item, 65_535)? as u16).to_be_bytes());
            }
            if out.is_empty() {
                return Err(ValueError::NoNumbers);
            }
            out
        }
        Kind::DomainList => domain_list(v)?,
        Kind::ClasslessRoutes => classless_routes(v)?,
    };
    if bytes.len() > MAX_OPTION_LEN {
        return Err(ValueError::TooLong(bytes.len()));
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
            encode(Kind::U8, "256").unwrap_err().to_string(),
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

    /// Each error is a std::error::Error whose text is the one the
    /// administrator always got (the manual and scripts quote them).
    #[test]
    fn errors_print_as_before() {
        fn text<T: std::fmt::Debug>(r: Result<T>) -> String {
            let e: Box<dyn std::error::Error> = Box::new(r.unwrap_err());
            e.to_string()
        }
        let cases = [
            (
                text(ip("10.0.0")),
                "\"10.0.0\" is not an IPv4 address (a.b.c.d)",
            ),
            (text(ip_list(" , ")), "expected one or more IPv4 addresses"),
            (
                text(whole("-1", 255)),
                "\"-1\" is not a whole number from 0 to 255",
            ),
            (
                uint("x", 9).unwrap_err(),
                "\"x\" is not a whole number from 0 to 9",
            ),
            (
                text(int("3000000000", -5, 7)),
                "\"3000000000\" is not a whole number from -5 to 7",
            ),
            (text(boolean("maybe")), "\"maybe\" is not yes or no"),
            (
                text(percent("100")),
                "\"100\" is not a percentage above 0 and below 100",
            ),
            (
                text(pad_percent("101")),
                "\"101\" is not a percentage from 0 to 100",
            ),
            (text(probe_timeout("0")), "expected 1 to 10000 milliseconds"),
            (text(group_name("a b")), "expected a group name"),
            (text(password("")), "expected one word without blanks"),
            (text(host_port("h:")), "\"h:\" is not host:port"),
            (
                text(interface_names("eth0,a/b")),
                "\"a/b\" is not an interface name",
            ),
            (
                text(interface_names(", ")),
                "expected interface names, such as eth0, eth1",
            ),
            (
                text(boot_file("é")),
                "expected ASCII text of at most 127 bytes (the file field)",
            ),
            (
                text(opt_type("float")),
                "\"float\" is not one of int8, uint8, int16, uint16, int32, uint32, boolean, \
                 ip, string, binary",
            ),
            (
                text(lease_time("1w")),
                "\"1w\" is not a lease time (seconds, or a number with s/m/h/d, or \"infinite\")",
            ),
            (
                text(lease_time("49675d")),
                "\"49675d\" is longer than 49674 days; use \"infinite\"",
            ),
            (text(hex("0")), "\"0\" is not hex bytes (like 01:02:0a)"),
            (
                text(hw_addr("1::2")),
                "\"1::2\" is not a hardware address (1 to 16 hex bytes separated by colons)",
            ),
            (
                text(encode(Kind::Text, "a\tb")),
                "expected printable ASCII text",
            ),
            (text(encode(Kind::Text, "")), "expected text"),
            (
                text(encode(Kind::DomainList, "a..b")),
                "\"a..b\" is not a domain name",
            ),
            (
                text(encode(Kind::DomainList, ",")),
                "expected one or more domain names",
            ),
            (
                text(encode(Kind::ClasslessRoutes, "10.0.0.0/8")),
                "\"10.0.0.0/8\" is not a route (a.b.c.d/len router)",
            ),
            (
                text(encode(Kind::ClasslessRoutes, ",")),
                "expected one or more routes (a.b.c.d/len router)",
            ),
            (
                text(encode(Kind::IpPairs, "10.0.0.1")),
                "expected pairs of IPv4 addresses",
            ),
            (
                text(encode(Kind::U16List, ",")),
                "expected one or more numbers",
            ),
            (
                text(encode(Kind::Text, &"x".repeat(1025))),
                "value is 1025 bytes; at most 1024 fit",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
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
