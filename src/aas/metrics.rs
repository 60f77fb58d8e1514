//! The Prometheus text exposition format (version 0.0.4), and the pool
//! gauges in it: what `aasadmin stats --prometheus` prints and what
//! in.aasd's metrics listener serves, under the same names, so a site
//! may watch a host either way.
//!
//! The format: each metric family is introduced once by `# HELP` and
//! `# TYPE` lines, followed by all its samples, `name{label="value"} N`.

use std::fmt::Write;

use super::lease::Stats;

/// The media type of a page in this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Only grows (and starts from 0 again when its process restarts).
    Counter,
}

/// A page being written: families one after another.
#[derive(Debug, Default)]
pub struct Page {
    text: String,
    /// The family whose samples may follow.
    current: String,
    /// Every family begun, so none is begun twice.
    begun: Vec<String>,
}

impl Page {
    pub fn new() -> Page {
        Page::default()
    }

    /// Begin family `name`: its HELP and TYPE lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        assert!(valid_name(name), "metric name {name:?}");
        assert!(!self.begun.iter().any(|b| b == name), "{name} begun twice");
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self.begun.push(name.to_string());
        self.current = name.to_string();
    }

    /// One sample of the family begun last.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        assert!(!self.current.is_empty(), "a sample before its family");
        self.text.push_str(&self.current);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| {
                    assert!(valid_label(k), "label name {k:?}");
                    format!("{k}=\"{}\"", label_value(v))
                })
                .collect();
            let _ = write!(self.text, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn text(self) -> String {
        self.text
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not one of the reserved `__` names.
fn valid_label(name: &str) -> bool {
    !name.starts_with("__") && !name.contains(':') && valid_name(name)
}

/// A label value as the format writes it: `\`, `"` and newline escaped.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The pool gauges: (name, help, count).
type Gauge = (&'static str, &'static str, fn(&Stats) -> u64);

const POOL_GAUGES: [Gauge; 7] = [
    ("aasd_pool_size", "Addresses in the pool.", |s| s.size),
    (
        "aasd_pool_free",
        "Addresses of the pool free to allocate.",
        |s| s.free,
    ),
    (
        "aasd_pool_offered",
        "Addresses of the pool reserved for a client that was offered them.",
        |s| s.offered,
    ),
    (
        "aasd_pool_leased",
        "Addresses of the pool leased to a client.",
        |s| s.leased,
    ),
    (
        "aasd_pool_declined",
        "Addresses of the pool out of use because a client declined them.",
        |s| s.declined,
    ),
    (
        "aasd_pool_disabled",
        "Addresses of the pool disabled by an administrator and held by nobody.",
        |s| s.disabled,
    ),
    (
        "aasd_pool_reserved",
        "Addresses of the pool reserved for one client (a pinned address) and held by nobody.",
        |s| s.reserved,
    ),
];

/// One family per pool gauge, a sample per pool, labelled `pool`.
pub fn pool_gauges(page: &mut Page, pools: &[Stats]) {
    for (name, help, count) in POOL_GAUGES {
        page.family(name, Kind::Gauge, help);
        for s in pools {
            page.sample(&[("pool", &s.name)], count(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut page = Page::new();
        page.family("aasd_x_total", Kind::Counter, "Things\\counted\nhere.");
        page.sample(&[], 3);
        page.sample(&[("pool", "a\"b\\c\nd"), ("kind", "lease")], 0);
        assert_eq!(
            page.text(),
            "# HELP aasd_x_total Things\\\\counted\\nhere.\n\
             # TYPE aasd_x_total counter\n\
             aasd_x_total 3\n\
             aasd_x_total{pool=\"a\\\"b\\\\c\\nd\",kind=\"lease\"} 0\n"
        );
    }

    #[test]
    #[should_panic(expected = "begun twice")]
    fn a_family_is_begun_once() {
        let mut page = Page::new();
        page.family("a", Kind::Gauge, "A.");
        page.family("a", Kind::Gauge, "A.");
    }

    #[test]
    fn names() {
        assert!(valid_name("aasd_pool_size") && valid_name("a:b") && valid_name("_x1"));
        assert!(!valid_name("") && !valid_name("1x") && !valid_name("a-b"));
        assert!(valid_label("pool") && !valid_label("__name") && !valid_label("a:b"));
    }

    #[test]
    fn every_pool_in_every_gauge() {
        let pools = [
            Stats {
                name: "A".into(),
                size: 10,
                free: 7,
                leased: 2,
                offered: 1,
                ..Stats::default()
            },
            Stats {
                name: "B".into(),
                size: 1,
                reserved: 1,
                ..Stats::default()
            },
        ];
        let mut page = Page::new();
        pool_gauges(&mut page, &pools);
        let text = page.text();
        for line in [
            "# TYPE aasd_pool_size gauge",
            "aasd_pool_size{pool=\"A\"} 10",
            "aasd_pool_free{pool=\"A\"} 7",
            "aasd_pool_leased{pool=\"A\"} 2",
            "aasd_pool_offered{pool=\"A\"} 1",
            "aasd_pool_declined{pool=\"B\"} 0",
            "aasd_pool_reserved{pool=\"B\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(text.lines().count(), 7 * 4);
    }
}
