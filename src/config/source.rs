//! The lexical layer of dhcpd.conf: sections and `key = value` lines, each
//! with the line it came from, so every later error can name its line.
//!
//! rust-ini checks the syntax too, but it keeps no line numbers for keys and
//! returns only the first of two equal keys, so the index is built here.

use super::ConfigError;

/// SCO's limit: a line holds at most 1023 characters with its newline.
pub const MAX_LINE: usize = 1023;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The header without brackets, e.g. `subnet 10.0.0.0/24`.
    pub header: String,
    pub line: usize,
    pub entries: Vec<Entry>,
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
fn normalized_header(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    for word in h.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn unquote(v: &str) -> &str {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if v.len() >= 2 => inner,
        _ => v,
    }
}

/// Split the file into sections. Syntax errors go to `errors`; the lines
/// around them are still read, so one run reports every mistake.
pub fn lex(text: &str, file: &str, errors: &mut Vec<ConfigError>) -> Vec<Section> {
    lex_file(text, file, false, errors)
}

/// As [`lex`], for files whose first keys stand before any section
/// (aasd.conf): they go to a section with an empty header.
pub fn lex_with_top(text: &str, file: &str, errors: &mut Vec<ConfigError>) -> Vec<Section> {
    lex_file(text, file, true, errors)
}

fn lex_file(
    text: &str,
    file: &str,
    top_level: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<Section> {
    let err = |line: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    let before = errors.len();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.len() + 1 > MAX_LINE {
            errors.push(err(
                line,
                format!("line is longer than {MAX_LINE} characters"),
            ));
            continue;
        }
        // A lone carriage return, NUL or escape is no text an editor shows
        // as it is (and INI readers count a lone CR as a line end).
        if let Some((at, c)) = control_char(raw) {
            errors.push(err(
                line,
                format!("control character {:?} in column {}", c, at + 1),
            ));
            continue;
        }
        let body = strip_comment(raw).trim();
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
        let Some((key, value)) = body.split_once('=') else {
            errors.push(err(
                line,
                format!("expected \"key = value\" or a [section], found \"{body}\""),
            ));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push(err(
                line,
                format!("\"{key}\" is not a key (letters, digits and _)"),
            ));
            continue;
        }
        if sections.is_empty() && top_level {
            sections.push(Section {
                header: String::new(),
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
            key: key.to_string(),
            value: unquote(value.trim()).to_string(),
            line,
        });
    }
    // A second opinion from rust-ini, once our own reading found no fault.
    // What it refuses beyond that starts at a quote or a backslash (an
    // unclosed quoted value, escapes): without either it has nothing to
    // add, and a file of thousands of clients is read at every start.
    let special = |b: &u8| matches!(b, b'"' | b'\'' | b'\\');
    if errors.len() == before && text.as_bytes().iter().any(special) {
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
                key: "domain_name".into(),
                value: "a#b".into(),
                line: 3
            }
        );
        assert_eq!(s[1].header, "subnet 10.0.0.0/8");
        assert_eq!(s[1].line, 5);
        assert_eq!(s[1].entries[0].value, "x y");
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
