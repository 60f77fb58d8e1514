//! What RFC 2132 (and RFC 3442 for option 121) allows in an option's
//! value: one table of lengths and ranges, checked on the wire bytes, so a
//! named option and `option_N = hex` are held to the same rules.

/// The length a value may have.
#[derive(Clone, Copy, Debug)]
enum Len {
    Fixed(usize),
    /// A whole number of `unit`-byte items, at least `min` bytes.
    Items {
        unit: usize,
        min: usize,
    },
    AtLeast(usize),
}

/// A rule on the value beyond its length.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Any,
    /// 0 or 1.
    Flag,
    U8In(u8, u8),
    U16AtLeast(u16),
    /// Every 16-bit item at least this.
    EachU16AtLeast(u16),
    OneOf(&'static [u8]),
    /// Address pairs whose first address (a destination) is not 0.0.0.0.
    NoDefaultDestination,
    /// RFC 3442 route descriptors.
    ClasslessRoutes,
}

use std::fmt;

use Len::*;
use Rule::*;

const ADDRS: Len = Items { unit: 4, min: 4 };
const PAIRS: Len = Items { unit: 8, min: 8 };
const TEXT: Len = AtLeast(1);

/// (code, length, rule, where the RFC says so), in code order.
const RULES: &[(u8, Len, Rule, &str)] = &[
    (2, Fixed(4), Any, "RFC 2132 §3.4"),
    (3, ADDRS, Any, "RFC 2132 §3.5"),
    (4, ADDRS, Any, "RFC 2132 §3.6"),
    (5, ADDRS, Any, "RFC 2132 §3.7"),
    (6, ADDRS, Any, "RFC 2132 §3.8"),
    (7, ADDRS, Any, "RFC 2132 §3.9"),
    (8, ADDRS, Any, "RFC 2132 §3.10"),
    (9, ADDRS, Any, "RFC 2132 §3.11"),
    (10, ADDRS, Any, "RFC 2132 §3.12"),
    (11, ADDRS, Any, "RFC 2132 §3.13"),
    (12, TEXT, Any, "RFC 2132 §3.14"),
    (13, Fixed(2), Any, "RFC 2132 §3.15"),
    (14, TEXT, Any, "RFC 2132 §3.16"),
    (15, TEXT, Any, "RFC 2132 §3.17"),
    (16, Fixed(4), Any, "RFC 2132 §3.18"),
    (17, TEXT, Any, "RFC 2132 §3.19"),
    (18, TEXT, Any, "RFC 2132 §3.20"),
    (19, Fixed(1), Flag, "RFC 2132 §4.1"),
    (20, Fixed(1), Flag, "RFC 2132 §4.2"),
    (21, PAIRS, Any, "RFC 2132 §4.3"),
    (22, Fixed(2), U16AtLeast(576), "RFC 2132 §4.4"),
    (23, Fixed(1), U8In(1, 255), "RFC 2132 §4.5"),
    (24, Fixed(4), Any, "RFC 2132 §4.6"),
    (
        25,
        Items { unit: 2, min: 2 },
        EachU16AtLeast(68),
        "RFC 2132 §4.7",
    ),
    (26, Fixed(2), U16AtLeast(68), "RFC 2132 §5.1"),
    (27, Fixed(1), Flag, "RFC 2132 §5.2"),
    (28, Fixed(4), Any, "RFC 2132 §5.3"),
    (29, Fixed(1), Flag, "RFC 2132 §5.4"),
    (30, Fixed(1), Flag, "RFC 2132 §5.5"),
    (31, Fixed(1), Flag, "RFC 2132 §5.6"),
    (32, Fixed(4), Any, "RFC 2132 §5.7"),
    (33, PAIRS, NoDefaultDestination, "RFC 2132 §5.8"),
    (34, Fixed(1), Flag, "RFC 2132 §6.1"),
    (35, Fixed(4), Any, "RFC 2132 §6.2"),
    (36, Fixed(1), Flag, "RFC 2132 §6.3"),
    (37, Fixed(1), U8In(1, 255), "RFC 2132 §7.1"),
    (38, Fixed(4), Any, "RFC 2132 §7.2"),
    (39, Fixed(1), Flag, "RFC 2132 §7.3"),
    (40, TEXT, Any, "RFC 2132 §8.1"),
    (41, ADDRS, Any, "RFC 2132 §8.2"),
    (42, ADDRS, Any, "RFC 2132 §8.3"),
    (43, AtLeast(1), Any, "RFC 2132 §8.4"),
    (44, ADDRS, Any, "RFC 2132 §8.5"),
    (45, ADDRS, Any, "RFC 2132 §8.6"),
    (46, Fixed(1), OneOf(&[1, 2, 4, 8]), "RFC 2132 §8.7"),
    (47, TEXT, Any, "RFC 2132 §8.8"),
    (48, ADDRS, Any, "RFC 2132 §8.9"),
    (49, ADDRS, Any, "RFC 2132 §8.10"),
    (56, TEXT, Any, "RFC 2132 §9.9"),
    (60, TEXT, Any, "RFC 2132 §9.13"),
    (64, TEXT, Any, "RFC 2132 §8.11"),
    (65, ADDRS, Any, "RFC 2132 §8.12"),
    (66, TEXT, Any, "RFC 2132 §9.4"),
    (67, TEXT, Any, "RFC 2132 §9.5"),
    (68, Items { unit: 4, min: 0 }, Any, "RFC 2132 §8.13"),
    (69, ADDRS, Any, "RFC 2132 §8.14"),
    (70, ADDRS, Any, "RFC 2132 §8.15"),
    (71, ADDRS, Any, "RFC 2132 §8.16"),
    (72, ADDRS, Any, "RFC 2132 §8.17"),
    (73, ADDRS, Any, "RFC 2132 §8.18"),
    (74, ADDRS, Any, "RFC 2132 §8.19"),
    (75, ADDRS, Any, "RFC 2132 §8.20"),
    (76, ADDRS, Any, "RFC 2132 §8.21"),
    (121, AtLeast(5), ClasslessRoutes, "RFC 3442"),
];

/// A value its RFC does not allow, and where the RFC says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    code: u8,
    broken: Broken,
    rfc: &'static str,
}

/// Which rule a value breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Broken {
    Length {
        want: usize,
        got: usize,
    },
    Items {
        unit: usize,
        at_least_one: bool,
        got: usize,
    },
    Empty,
    Short {
        min: usize,
    },
    NotFlag(u8),
    Range {
        lo: u8,
        hi: u8,
        got: u8,
    },
    Below {
        min: u16,
        got: u16,
    },
    EachBelow {
        min: u16,
        got: u16,
    },
    NotOneOf {
        allowed: &'static [u8],
        got: u8,
    },
    DefaultDestination,
    Route(RouteFault),
}

/// What is wrong in RFC 3442 route descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteFault {
    PrefixAbove32(u8),
    CutShort,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code;
        match &self.broken {
            Broken::Length { want, got } => {
                write!(f, "option {code} is {want} bytes long, not {got}")
            }
            Broken::Items {
                unit,
                at_least_one,
                got,
            } => {
                let what = match unit {
                    4 => "addresses",
                    8 => "address pairs",
                    _ => "16-bit numbers",
                };
                let one = if *at_least_one { ", at least one" } else { "" };
                write!(
                    f,
                    "option {code} holds whole {what} ({unit} bytes each{one}), not {got} bytes"
                )
            }
            Broken::Empty => write!(f, "option {code} cannot be empty"),
            Broken::Short { min } => write!(f, "option {code} needs at least {min} bytes"),
            Broken::NotFlag(got) => write!(f, "option {code} is 0 or 1, not {got}"),
            Broken::Range { lo, hi, got } => write!(f, "option {code} is {lo} to {hi}, not {got}"),
            Broken::Below { min, got } => write!(f, "option {code} is at least {min}, not {got}"),
            Broken::EachBelow { min, got } => {
                write!(
                    f,
                    "every value of option {code} is at least {min}, not {got}"
                )
            }
            Broken::NotOneOf { allowed, got } => {
                write!(f, "option {code} is one of {allowed:?}, not {got}")
            }
            Broken::DefaultDestination => write!(
                f,
                "option {code} cannot have destination 0.0.0.0 (the default route)"
            ),
            Broken::Route(RouteFault::PrefixAbove32(width)) => {
                write!(f, "option {code}: prefix length {width} is above 32")
            }
            Broken::Route(RouteFault::CutShort) => write!(f, "option {code}: a route is cut short"),
        }?;
        write!(f, " ({})", self.rfc)
    }
}

impl std::error::Error for RuleError {}

/// Check a value for option `code`; the error says what the RFC wants.
/// Codes not in the table (user-defined, later RFCs) pass.
pub fn check(code: u8, v: &[u8]) -> Result<(), RuleError> {
    let Some(&(_, len, rule, rfc)) = RULES.iter().find(|r| r.0 == code) else {
        return Ok(());
    };
    let n = v.len();
    let fail = |broken: Broken| Err(RuleError { code, broken, rfc });
    match len {
        Fixed(want) if n != want => return fail(Broken::Length { want, got: n }),
        Items { unit, min } if n < min || !n.is_multiple_of(unit) => {
            return fail(Broken::Items {
                unit,
                at_least_one: min > 0,
                got: n,
            })
        }
        AtLeast(1) if n == 0 => return fail(Broken::Empty),
        AtLeast(min) if n < min => return fail(Broken::Short { min }),
        _ => {}
    }
    let u16_at = |i: usize| u16::from_be_bytes([v[i], v[i + 1]]);
    match rule {
        Any => Ok(()),
        Flag if v[0] > 1 => fail(Broken::NotFlag(v[0])),
        U8In(lo, hi) if !(lo..=hi).contains(&v[0]) => fail(Broken::Range { lo, hi, got: v[0] }),
        U16AtLeast(min) if u16_at(0) < min => fail(Broken::Below {
            min,
            got: u16_at(0),
        }),
        EachU16AtLeast(min) => match (0..n).step_by(2).map(u16_at).find(|x| *x < min) {
            Some(got) => fail(Broken::EachBelow { min, got }),
            None => Ok(()),
        },
        OneOf(allowed) if !allowed.contains(&v[0]) => fail(Broken::NotOneOf { allowed, got: v[0] }),
        NoDefaultDestination if v.chunks(8).any(|p| p[..4] == [0; 4]) => {
            fail(Broken::DefaultDestination)
        }
        ClasslessRoutes => classless_routes(v).or_else(|f| fail(Broken::Route(f))),
        _ => Ok(()),
    }
}

/// RFC 3442 §2: each route is a prefix length (0-32), the significant
/// octets of the destination, and a router.
fn classless_routes(mut v: &[u8]) -> Result<(), RouteFault> {
    while let Some((&width, rest)) = v.split_first() {
        if width > 32 {
            return Err(RouteFault::PrefixAbove32(width));
        }
        let len = usize::from(width).div_ceil(8) + 4;
        if rest.len() < len {
            return Err(RouteFault::CutShort);
        }
        v = &rest[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_names_only_known_options() {
        for w in RULES.windows(2) {
            assert!(w[0].0 < w[1].0, "{:?}", w[1].0);
        }
        for (code, ..) in RULES {
            assert!(super::super::optable::reserved(*code).is_none(), "{code}");
        }
    }

    #[test]
    fn ranges_lengths_and_routes() {
        let ok: &[(u8, &[u8])] = &[
            (22, &[2, 64]),
            (23, &[1]),
            (23, &[255]),
            (26, &[0, 68]),
            (37, &[64]),
            (25, &[0, 68, 5, 220]),
            (33, &[10, 0, 0, 0, 10, 0, 0, 1]),
            (46, &[8]),
            (68, &[]),
            (121, &[0, 10, 0, 0, 1, 8, 10, 10, 0, 0, 1]),
            (150, &[1, 2, 3]),
        ];
        for (c, v) in ok {
            assert_eq!(check(*c, v), Ok(()), "{c} {v:?}");
        }
        let bad: &[(u8, &[u8], &str)] = &[
            (
                22,
                &[2, 63],
                "option 22 is at least 576, not 575 (RFC 2132 §4.4)",
            ),
            (23, &[0], "option 23 is 1 to 255, not 0"),
            (26, &[0, 67], "at least 68, not 67"),
            (37, &[0], "option 37 is 1 to 255, not 0"),
            (33, &[0, 0, 0, 0, 10, 0, 0, 1], "destination 0.0.0.0"),
            (21, &[10, 0, 0, 0, 255, 0, 0], "whole address pairs"),
            (3, &[10, 0, 0, 1, 10], "whole addresses"),
            (3, &[], "at least one"),
            (
                25,
                &[0, 68, 0, 20],
                "every value of option 25 is at least 68, not 20",
            ),
            (2, &[0, 0, 1], "option 2 is 4 bytes long, not 3"),
            (19, &[2], "option 19 is 0 or 1, not 2"),
            (46, &[3], "option 46 is one of [1, 2, 4, 8], not 3"),
            (15, &[], "option 15 cannot be empty"),
            (121, &[0, 1, 2], "needs at least 5 bytes"),
            (121, &[33, 0, 0, 0, 0, 0], "prefix length 33"),
            (121, &[24, 10, 0, 0, 10, 0], "cut short"),
        ];
        for (c, v, want) in bad {
            let e = check(*c, v).unwrap_err().to_string();
            assert!(e.contains(want), "{c} {v:?}: {e}");
        }
    }
}
