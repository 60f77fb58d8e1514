//! A client's host name as the AAS carries it (`host=` in ALLOC, the last
//! word of a `QUERY ... hostname` row): one word of graphic ASCII, every
//! other byte and `%` written `%XX`, at most 255 bytes. A name is whatever
//! the client sent (option 12 or 81), so it may hold anything; written so,
//! it stays one word, and in log lines and on terminals it shows nothing
//! but what it is.

/// The longest word the AAS keeps (its limit for names).
pub const MAX: usize = 255;

/// `name` as a word; `None` for an empty one. A name that would not fit
/// is cut at a whole byte's escape.
pub fn word(name: &[u8]) -> Option<String> {
    let mut out = String::new();
    for &b in name {
        let next = if b.is_ascii_graphic() && b != b'%' {
            char::from(b).to_string()
        } else {
            format!("%{b:02X}")
        };
        if out.len() + next.len() > MAX {
            break;
        }
        out.push_str(&next);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_printable_word() {
        assert_eq!(word(b"printer-1").as_deref(), Some("printer-1"));
        assert_eq!(word(b"my pc%\n").as_deref(), Some("my%20pc%25%0A"));
        assert_eq!(word("café".as_bytes()).as_deref(), Some("caf%C3%A9"));
        assert_eq!(word(b""), None);
        let long = word(&[b'\x01'; 100]).unwrap();
        assert_eq!(long.len(), 255, "85 escapes of 3 bytes");
        assert_eq!(word(&[b'a'; 300]).unwrap().len(), 255);
    }
}
