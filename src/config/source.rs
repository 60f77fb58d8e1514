//! The lexical layer of dhcpd.conf: sections and `key = value` lines, each
//! with the line it came from, so every later error can name its line.
//!
//! rust-ini checks the syntax too, but it keeps no line numbers for keys and
//! returns only the first of two equal keys, so the index is built here.
//! Keys, values and headers are slices of the text, not copies: a file of
//! thousands of clients is read at every start under inetd.

use std::borrow::Cow;

use super::ConfigError;

/// SCO's limit: a line holds at most 1023 characters with its newline.
pub const MAX_LINE: usize = 1023;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The header without brackets, e.g. `subnet 10.0.0.0/24`; copied only
    /// when its blanks had to be made single spaces.
    pub header: Cow<'a, str>,
    pub line: usize,
    pub entries: Vec<Entry<'a>>,
}

/// Cut a comment: `#` or `;` at the start or after a space or tab, so that
/// a value such as `a#b` keeps its `#`.
fn strip_comment(line: &str) -> &str {
    // Bytes, not characters: the four that matter are ASCII, and no byte
    // of a multi-byte character is one of them.
    if !line.bytes().any(|b| b == b'#' || b == b';') {
        return line;
    }
    let mut prev_blank = true;
    for (i, &b) in line.as_bytes().iter().enumerate() {
        if (b == b'#' || b == b';') && prev_blank {
            return &line[..i];
        }
        prev_blank = b == b' ' || b == b'\t';
    }
    line
}

/// The first control character other than tab, with its byte offset.
fn control_char(line: &str) -> Option<(usize, char)> {
    // Most lines are printable ASCII: nothing to decode then.
    if line
        .bytes()
        .all(|b| (b' '..0x7f).contains(&b) || b == b'\t')
    {
        return None;
    }
    line.char_indices()
        .find(|(_, c)| c.is_control() && *c != '\t')
}

/// A section header with each run of blanks made one space.
fn normalized_header(h: &str) -> Cow<'_, str> {
    let h = h.trim();
    // Most headers are written plainly: ASCII, one space between words.
    let mut plain = true;
    let mut after_blank = false;
    for &b in h.as_bytes() {
        let blank = b.is_ascii_whitespace();
        plain &= b.is_ascii() && !(blank && (b != b' ' || after_blank));
        after_blank = blank;
    }
    if plain {
        return Cow::Borrowed(h);
    }
    let mut out = String::with_capacity(h.len());
    for word in h.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// What one pass over a line's bytes tells, so that the common line (plain
/// ASCII, no comment, no quote) is not read again for each question.
#[derive(Clone, Copy)]
struct Scan(u8);

/// Bits of [`Scan`], and of each byte's entry in [`CLASS`].
const UNPRINTABLE: u8 = 1;
const MARK: u8 = 2;
const QUOTE: u8 = 4;

/// Each byte's bits: a table, so the scan costs a load and an OR a byte.
const CLASS: [u8; 256] = {
    let mut t = [UNPRINTABLE; 256];
    let mut b = b' ';
    while b <= b'~' {
        t[b as usize] = 0;
        b += 1;
    }
    t[b'\t' as usize] = 0;
    t[b'#' as usize] = MARK;
    t[b';' as usize] = MARK;
    t[b'"' as usize] = QUOTE;
    t[b'\'' as usize] = QUOTE;
    t[b'\\' as usize] = QUOTE;
    t
};

impl Scan {
    /// Printable ASCII and tabs only.
    fn printable(self) -> bool {
        self.0 & UNPRINTABLE == 0
    }
    /// A `#` or `;` somewhere.
    fn marks(self) -> bool {
        self.0 & MARK != 0
    }
    /// A quote or backslash somewhere (what rust-ini may refuse).
    fn quotes(self) -> bool {
        self.0 & QUOTE != 0
    }
}

/// As `str::lines` (cut at `\n` or `\r\n`, the last line's end optional),
/// each line with its [`Scan`], in one pass. A line cut at `\r\n` is
/// scanned with its `\r`, so it only takes the slower, exact path.
fn lines(text: &str) -> impl Iterator<Item = (&str, Scan)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        let mut bits = 0;
        let mut end = 0;
        while end < bytes.len() && bytes[end] != b'\n' {
            bits |= CLASS[usize::from(bytes[end])];
            end += 1;
        }
        let line = &rest[..end];
        if end < bytes.len() {
            rest = &rest[end + 1..];
            Some((line.strip_suffix('\r').unwrap_or(line), Scan(bits)))
        } else {
            rest = "";
            Some((line, Scan(bits)))
        }
    })
}

fn unquote(v: &str) -> &str {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if v.len() >= 2 => inner,
        _ => v,
    }
}

/// Split the file into sections. Syntax errors go to `errors`; the lines
/// around them are still read, so one run reports every mistake.
pub fn lex<'a>(text: &'a str, file: &str, errors: &mut Vec<ConfigError>) -> Vec<Section<'a>> {
    lex_file(text, file, false, errors)
}

/// As [`lex`], for files whose first keys stand before any section
/// (aasd.conf): they go to a section with an empty header.
pub fn lex_with_top<'a>(
    text: &'a str,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Section<'a>> {
    lex_file(text, file, true, errors)
}

fn lex_file<'a>(
    text: &'a str,
    file: &str,
    top_level: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<Section<'a>> {
    let err = |line: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    let before = errors.len();
    let mut quotes = false;
    for (i, (raw, facts)) in lines(text).enumerate() {
        let line = i + 1;
        if raw.len() + 1 > MAX_LINE {
            errors.push(err(
                line,
                format!("line is longer than {MAX_LINE} characters"),
            ));
            continue;
        }
        quotes |= facts.quotes();
        // A lone carriage return, NUL or escape is no text an editor shows
        // as it is (and INI readers count a lone CR as a line end).
        if let Some((at, c)) = (!facts.printable()).then(|| control_char(raw)).flatten() {
            errors.push(err(
                line,
                format!("control character {:?} in column {}", c, at + 1),
            ));
            continue;
        }
        // On printable ASCII the only blanks are spaces and tabs.
        let trim = |s: &'a str| {
            if facts.printable() {
                s.trim_ascii()
            } else {
                s.trim()
            }
        };
        let body = trim(if facts.marks() {
            strip_comment(raw)
        } else {
            raw
        });
        if body.is_empty() {
            continue;
        }
        if let Some(rest) = body.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(h) if !h.trim().is_empty() => sections.push(Section {
                    header: normalized_header(h),
                    line,
                    entries: Vec::new(),
                }),
                _ => errors.push(err(
                    line,
                    "expected a section header like [subnet 10.0.0.0/24]".into(),
                )),
            }
            continue;
        }
        let split = body.bytes().position(|b| b == b'=');
        let Some((key, value)) = split.map(|at| (&body[..at], &body[at + 1..])) else {
            errors.push(err(
                line,
                format!("expected \"key = value\" or a [section], found \"{body}\""),
            ));
            continue;
        };
        let key = trim(key);
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push(err(
                line,
                format!("\"{key}\" is not a key (letters, digits and _)"),
            ));
            continue;
        }
        if sections.is_empty() && top_level {
            sections.push(Section {
                header: Cow::Borrowed(""),
                line: 0,
                entries: Vec::new(),
            });
        }
        let Some(section) = sections.last_mut() else {
            errors.push(err(
                line,
                format!("{key}: expected a [section] header before the first key"),
            ));
            continue;
        };
        section.entries.push(Entry {
            key,
            value: unquote(trim(value)),
            line,
        });
    }
    // A second opinion from rust-ini, once our own reading found no fault.
    // What it refuses beyond that starts at a quote or a backslash (an
    // unclosed quoted value, escapes): without either it has nothing to
    // add, and a file of thousands of clients is read at every start.
    if errors.len() == before && quotes {
        if let Err(e) = ini::Ini::load_from_str_noescape(text) {
            // Its "line" for an error at the end of the file can be one past
            // the last: name a line the file has.
            let last = text.lines().count().max(1);
            errors.push(err(e.line.min(last), format!("INI syntax: {}", e.msg)));
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_comments_and_lines() {
        let mut errors = Vec::new();
        let s = lex(
            "# top\n[global]\ndomain_name = a#b ; comment\n\n[subnet   10.0.0.0/8]\nhost_name = \"x y\"\n",
            "f",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].entries[0],
            Entry {
                key: "domain_name",
                value: "a#b",
                line: 3
            }
        );
        assert_eq!(s[1].header, "subnet 10.0.0.0/8");
        assert_eq!(s[1].line, 5);
        assert_eq!(s[1].entries[0].value, "x y");
    }

    #[test]
    fn lines_are_cut_as_str_lines_cuts_them() {
        for text in [
            "", "a", "a\n", "a\r\nb", "a\n\nb\r", "\n", "\r\n\r\n", "a\rb\n",
        ] {
            let ours: Vec<&str> = lines(text).map(|(l, _)| l).collect();
            let std: Vec<&str> = text.lines().collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn headers_keep_their_words_with_one_space_between() {
        assert_eq!(normalized_header("client 1:aa"), "client 1:aa");
        assert!(
            matches!(normalized_header(" subnet  10.0.0.0 "), Cow::Owned(h) if h == "subnet 10.0.0.0")
        );
        assert_eq!(normalized_header("user_class\tx"), "user_class x");
        assert_eq!(
            normalized_header("vendor_class caf\u{e9}  x"),
            "vendor_class caf\u{e9} x"
        );
    }

    #[test]
    fn rust_ini_still_refuses_an_unclosed_quote() {
        let mut errors = Vec::new();
        lex("[global]\ndomain_name = \"example.test\n", "f", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].starts_with("f:2: INI syntax: "), "{text:?}");
    }

    #[test]
    fn syntax_errors_all_reported() {
        let mut errors = Vec::new();
        let long = format!("[global]\nx = {}\n", "a".repeat(1030));
        lex(
            &format!("a = 1\n[global\nno equals\nbad key = 1\n{long}"),
            "f.conf",
            &mut errors,
        );
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "f.conf:1: a: expected a [section] header before the first key",
                "f.conf:2: expected a section header like [subnet 10.0.0.0/24]",
                "f.conf:3: expected \"key = value\" or a [section], found \"no equals\"",
                "f.conf:4: \"bad key\" is not a key (letters, digits and _)",
                "f.conf:6: line is longer than 1023 characters",
            ]
        );
    }
}
