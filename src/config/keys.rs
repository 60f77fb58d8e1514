//! The keys of dhcpd.conf, one table per section: each key's name, the
//! value it has when the file leaves it out (written as the file would
//! write it, and read the same way), and how a value is stored.
//!
//! The parser reads by these tables, a parsed [`Config`](super::Config)
//! gets its defaults from them, and so does a reply's lease when no set
//! of parameters names one; in.dhcpd.conf(5) states the same defaults
//! (a test below holds the page to them).

use super::value::{self, ValueError};
use super::{Params, ServerParams, UserOption};

/// One key of a section.
pub struct Key<T: 'static> {
    pub name: &'static str,
    /// The value when the file leaves the key out; `None`: not set.
    pub default: Option<&'static str>,
    /// Read a value of the file and store it.
    pub read: fn(&mut T, &str) -> Result<(), ValueError>,
}

/// `[server]`.
pub const SERVER: &[Key<ServerParams>] = &[
    Key {
        name: "aas_socket",
        default: Some("/run/aasd.sock"),
        read: |s, v| {
            s.aas_socket = v.into();
            Ok(())
        },
    },
    Key {
        name: "aas_group",
        // Found at start-up: see privilege::socket_group.
        default: None,
        read: |s, v| {
            s.aas_group = Some(value::group_name(v)?);
            Ok(())
        },
    },
    Key {
        name: "aas_address",
        default: None,
        read: |s, v| {
            s.aas_address = Some(value::host_port(v)?);
            Ok(())
        },
    },
    Key {
        name: "aas_password",
        default: None,
        read: |s, v| {
            s.aas_password = Some(value::password(v)?);
            Ok(())
        },
    },
    Key {
        name: "lease_res_time",
        default: Some("10"),
        read: |s, v| {
            s.lease_res_time = value::whole(v, 86_400)? as u32;
            Ok(())
        },
    },
    Key {
        name: "pad_lease",
        default: Some("1"),
        read: |s, v| {
            s.pad_lease = value::pad_percent(v)?;
            Ok(())
        },
    },
    Key {
        name: "probe",
        default: Some("no"),
        read: |s, v| {
            s.probe = value::boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "probe_timeout",
        default: Some("500"),
        read: |s, v| {
            s.probe_timeout = value::probe_timeout(v)?;
            Ok(())
        },
    },
    Key {
        name: "option_overload",
        default: Some("no"),
        read: |s, v| {
            s.option_overload = value::boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "decline_time",
        default: Some("3600"),
        read: |s, v| {
            s.decline_time = value::whole(v, u64::from(u32::MAX))? as u32;
            Ok(())
        },
    },
    Key {
        name: "bootp_dynamic",
        default: Some("no"),
        read: |s, v| {
            s.bootp_dynamic = value::boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "authoritative",
        default: Some("no"),
        read: |s, v| {
            s.authoritative = value::boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "interfaces",
        // Every interface.
        default: None,
        read: |s, v| {
            s.interfaces = value::interface_names(v)?;
            Ok(())
        },
    },
];

/// The lease fields of `[global]`, `[subnet]`, the classes and `[client]`.
/// Their defaults are `[global]`'s; the other sections inherit.
pub const LEASE_FIELDS: &[Key<Params>] = &[
    Key {
        name: "lease_time",
        default: Some("1d"),
        read: |p, v| {
            p.lease_time = Some(value::lease_time(v)?);
            Ok(())
        },
    },
    Key {
        name: "max_lease_time",
        default: Some("7d"),
        read: |p, v| {
            p.max_lease_time = Some(value::lease_time(v)?);
            Ok(())
        },
    },
    Key {
        name: "renewal_percent",
        default: Some("50"),
        read: |p, v| {
            p.renewal_percent = Some(value::percent(v)?);
            Ok(())
        },
    },
    Key {
        name: "rebind_percent",
        default: Some("87.5"),
        read: |p, v| {
            p.rebind_percent = Some(value::percent(v)?);
            Ok(())
        },
    },
    Key {
        name: "next_server",
        default: None,
        read: |p, v| {
            p.next_server = Some(value::ip(v)?);
            Ok(())
        },
    },
    Key {
        name: "boot_file",
        default: None,
        read: |p, v| {
            p.boot_file = Some(value::boot_file(v)?);
            Ok(())
        },
    },
];

/// `[option N]`: a user-defined option.
pub const OPTION: &[Key<UserOption>] = &[
    Key {
        name: "name",
        default: None,
        read: |u, v| {
            u.name = v.to_string();
            Ok(())
        },
    },
    Key {
        name: "type",
        default: None,
        read: |u, v| {
            u.ty = value::opt_type(v)?;
            Ok(())
        },
    },
    Key {
        name: "array",
        default: Some("no"),
        read: |u, v| {
            u.array = value::boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "min",
        default: None,
        read: |u, v| {
            u.min = Some(bound(v)?);
            Ok(())
        },
    },
    Key {
        name: "max",
        default: None,
        read: |u, v| {
            u.max = Some(bound(v)?);
            Ok(())
        },
    },
    Key {
        name: "min_length",
        default: None,
        read: |u, v| {
            u.min_length = Some(value::whole(v, value::MAX_OPTION_LEN as u64)? as usize);
            Ok(())
        },
    },
    Key {
        name: "max_length",
        default: None,
        read: |u, v| {
            u.max_length = Some(value::whole(v, value::MAX_OPTION_LEN as u64)? as usize);
            Ok(())
        },
    },
];

/// `min` and `max` of a user option: anything an int32 or a uint32 holds.
fn bound(v: &str) -> Result<i64, ValueError> {
    value::int(v, i64::from(i32::MIN), i64::from(u32::MAX))
}

pub fn find<T>(table: &'static [Key<T>], name: &str) -> Option<&'static Key<T>> {
    table.iter().find(|k| k.name == name)
}

/// The names of a table, `a, b, c`.
pub fn names<T>(table: &[Key<T>]) -> String {
    table.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The candidate a mistyped key most likely meant: the nearest within a
/// few edits (more for longer names), if there is one.
pub fn nearest<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let most = match key.len() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edits(key, c), c))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "x"?` after an unknown key's message, or nothing.
pub fn did_you_mean<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(key, candidates)
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

/// Edits from `a` to `b`: inserted, deleted or changed characters, and
/// two neighbours swapped (optimal string alignment distance).
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: edits from the first i characters of a to the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let change = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + change);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Store the default of every key of `table` that `given` does not name.
pub fn set_defaults<T>(table: &[Key<T>], into: &mut T, given: impl Fn(&str) -> bool) {
    for key in table {
        if let (Some(text), false) = (key.default, given(key.name)) {
            // The defaults are read like the file's values; the tests
            // below read every one, so this cannot fail at run time.
            (key.read)(into, text).unwrap_or_else(|e| panic!("default of {}: {e}", key.name));
        }
    }
}

/// `[global]`'s lease fields when the file sets none of them.
pub fn global_defaults() -> Params {
    let mut g = Params::default();
    set_defaults(LEASE_FIELDS, &mut g, |_| false);
    g
}

/// One of `[global]`'s defaults, for a set of parameters that does not
/// descend from a parsed `[global]` (which has them all).
pub fn global_default<T>(field: fn(&Params) -> Option<T>) -> T {
    field(&global_defaults()).expect("LEASE_FIELDS gives this field a default")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, LeaseTime};

    /// Each `.It Cm key ...` item of the page with the defaults its text
    /// states (`(default 10)`, `Defaults 1d and 7d.`), one per key of the item.
    fn stated_defaults(page: &str) -> Vec<(Vec<String>, Vec<String>)> {
        let mut items: Vec<(Vec<String>, String)> = Vec::new();
        for line in page.lines() {
            if let Some(head) = line.strip_prefix(".It ") {
                let words: Vec<&str> = head.split_whitespace().collect();
                let keys = words
                    .windows(2)
                    .filter(|w| w[0] == "Cm")
                    .map(|w| w[1].to_string())
                    .collect();
                items.push((keys, String::new()));
            } else if line.starts_with(".El") || line.starts_with(".Bl") {
                items.push((Vec::new(), String::new()));
            } else if let Some((_, body)) = items.last_mut() {
                // A macro line keeps its arguments: `.Pa /run/aasd.sock ) .`
                let text = match line.strip_prefix('.') {
                    Some(m) => m.split_once(' ').map_or("", |(_, args)| args),
                    None => line,
                };
                body.push(' ');
                body.push_str(text);
            }
        }
        let mut out = Vec::new();
        for (keys, body) in items {
            let words: Vec<&str> = body.split_whitespace().collect();
            // "Default:" introduces prose, not a value.
            let Some(at) = words
                .iter()
                .position(|w| ["(default", "(defaults", "Defaults"].contains(w))
            else {
                continue;
            };
            let mut values = Vec::new();
            for w in &words[at + 1..] {
                if *w == "and" {
                    continue;
                }
                let v = w.trim_end_matches([')', ';', ',', '.']);
                if !v.is_empty() {
                    values.push(v.to_string());
                }
                if w.ends_with([')', ';', ',', '.']) {
                    break;
                }
            }
            out.push((keys, values));
        }
        out
    }

    #[test]
    fn the_manual_states_the_defaults_of_the_tables() {
        let page = include_str!("../../man/in.dhcpd.conf.5");
        let stated = stated_defaults(page);
        let mut checked = Vec::new();
        for (keys, values) in &stated {
            assert_eq!(keys.len(), values.len(), "{keys:?} {values:?}");
            for (key, value) in keys.iter().zip(values) {
                let default = find(SERVER, key)
                    .map(|k| k.default)
                    .or_else(|| find(LEASE_FIELDS, key).map(|k| k.default))
                    .unwrap_or_else(|| panic!("the page gives {key} a default; no table has it"));
                assert_eq!(default, Some(value.as_str()), "{key}");
                checked.push(key.as_str());
            }
        }
        let with_defaults = SERVER
            .iter()
            .map(|k| (k.name, k.default))
            .chain(LEASE_FIELDS.iter().map(|k| (k.name, k.default)));
        for (name, default) in with_defaults {
            assert_eq!(
                default.is_some(),
                checked.contains(&name),
                "{name}: the table's default is {default:?}; the page must state it, \
                 and only then"
            );
        }
        // The reading of the page is not vacuous.
        assert!(checked.len() >= 13, "{checked:?}");
    }

    #[test]
    fn every_default_reads_and_a_file_without_keys_has_them() {
        let c = parse("[option 200]\nname = x\ntype = uint8\n", "t.conf").unwrap();
        assert_eq!(c.server, ServerParams::default());
        assert_eq!(c.server.aas_socket, std::path::Path::new("/run/aasd.sock"));
        assert_eq!(c.global, global_defaults());
        assert_eq!(
            global_default(|g| g.max_lease_time),
            LeaseTime::Secs(7 * 86_400)
        );
        assert!(!c.user_options[0].array);
        // A [global] that sets some fields keeps those and gets the rest.
        let c = parse(
            "[global]\nlease_time = 1h\nrenewal_percent = 40\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(c.global.lease_time, Some(LeaseTime::Secs(3600)));
        assert_eq!(c.global.renewal_percent, Some(40.0));
        assert_eq!(c.global.max_lease_time, global_defaults().max_lease_time);
        assert_eq!(c.global.rebind_percent, global_defaults().rebind_percent);
    }

    #[test]
    fn names_are_unique_and_listed_in_order() {
        assert_eq!(
            names(SERVER),
            "aas_socket, aas_group, aas_address, aas_password, lease_res_time, pad_lease, \
             probe, probe_timeout, option_overload, decline_time, bootp_dynamic, \
             authoritative, interfaces"
        );
        for table in [names(SERVER), names(LEASE_FIELDS), names(OPTION)] {
            let list: Vec<&str> = table.split(", ").collect();
            for (i, n) in list.iter().enumerate() {
                assert!(!list[..i].contains(n), "{n} twice");
            }
        }
    }

    #[test]
    fn a_mistyped_key_gets_a_guess() {
        let got: Vec<String> = parse(
            "[server]\nprobe_timout = 100\nfoo = 1\n[global]\nlease_tme = 1h\n\
             domain_name_server = 10.0.0.1\n[subnet 10.0.0.0/24]\npoll = P\n\
             [option 200]\nname = x\ntype = ip\narary = yes\n",
            "t.conf",
        )
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
        let ends = [
            "; did you mean \"probe_timeout\"?",
            "interfaces",
            "; did you mean \"lease_time\"?",
            "; did you mean \"domain_name_servers\"?",
            "; did you mean \"pool\"?",
            "; did you mean \"array\"?",
        ];
        assert_eq!(got.len(), ends.len(), "{got:#?}");
        for (g, end) in got.iter().zip(ends) {
            assert!(g.ends_with(end), "{g}\n  should end with {end}");
        }
        assert_eq!(nearest("xyz", ["lease_time"]), None);
        assert_eq!(nearest("foo", ["pool"]), None);
        assert_eq!(edits("arary", "array"), 1);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
