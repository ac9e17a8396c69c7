//! `application/x-www-form-urlencoded` (WHATWG URL standard), for form
//! bodies and query strings, and parsing of both. Pure; shared by the
//! helper's refresh request, the tool's flows and the test fakes.

use zeroize::Zeroizing;

/// Encode one name or value as a browser encodes a form: ASCII letters,
/// digits and `*-._` stay, space becomes `+`, every other byte of the UTF-8
/// encoding becomes `%XX`.
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// `k1=v1&k2=v2`, encoded. The result may hold secrets, so it is zeroized
/// when dropped.
pub fn form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// `base?pairs` (or `base&pairs` when base already has a query).
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", &*form(pairs))
}

/// Decode `%XX` and `+`; `None` when the result is not UTF-8 or an escape
/// is malformed.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The pairs of a query string, decoded, in order. Malformed pairs are
/// dropped.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// A key that must appear at most once appeared more often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The only value of `key`; [`Repeated`] if it appears more than once.
pub fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, Repeated> {
    let mut it = pairs.iter().filter(|(k, _)| k == key);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(Repeated);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_a_browser_form() {
        let b = form(&[("a b", "x+y/z=&%é"), ("k", "A-z_0.9*~")]);
        assert_eq!(b.as_str(), "a+b=x%2By%2Fz%3D%26%25%C3%A9&k=A-z_0.9*%7E");
        assert_eq!(form(&[]).as_str(), "");
    }

    #[test]
    fn round_trip() {
        let s = "https://mail.google.com/ a+b&c=d~é";
        assert_eq!(decode(&encode(s)).unwrap(), s);
        assert_eq!(encode("a b/c"), "a+b%2Fc");
        assert_eq!(
            with_query("https://x/a", &[("k", "v w"), ("s", "&")]),
            "https://x/a?k=v+w&s=%26"
        );
        assert_eq!(
            with_query("https://x/a?z=1", &[("k", "v")]),
            "https://x/a?z=1&k=v"
        );
    }

    #[test]
    fn parse() {
        let q = parse_query("code=4%2F0Ab&state=xyz&scope=a+b&flag&bad=%zz");
        assert_eq!(single(&q, "code").unwrap(), Some("4/0Ab"));
        assert_eq!(single(&q, "scope").unwrap(), Some("a b"));
        assert_eq!(single(&q, "flag").unwrap(), Some(""));
        assert_eq!(single(&q, "bad").unwrap(), None);
        assert_eq!(single(&q, "missing").unwrap(), None);
        let q = parse_query("code=a&code=b");
        assert!(single(&q, "code").is_err());
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%ff"), None);
    }
}
