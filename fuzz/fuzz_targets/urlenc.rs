//! Form/URL encoding (`common::urlenc`), used for the helper's request body,
//! the tool's URLs and its redirect parser.
//!
//! Invariants: no panic; `decode(encode(x)) == x` for every string; encoded
//! text uses only the form alphabet; `parse_query(form(pairs))` gives the
//! pairs back; decoding arbitrary text never panics.
#![no_main]

use common::urlenc::{decode, encode, form, parse_query, single, with_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let e = encode(&text);
    assert!(
        e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*-._+%".contains(&b)),
        "{e:?}"
    );
    assert_eq!(decode(&e).as_deref(), Some(&*text));

    // The raw text as a query, as the redirect listener sees one.
    let pairs = parse_query(&text);
    for (k, _) in &pairs {
        let _ = single(&pairs, k);
    }
    let _ = decode(&text);

    // Pairs from the text (split at NUL and SOH) survive a round trip.
    let owned: Vec<(String, String)> = text
        .split('\0')
        .map(|p| {
            let (k, v) = p.split_once('\u{1}').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let refs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = form(&refs);
    assert_eq!(parse_query(&body), owned);
    let url = with_query("https://login.example/authorize", &refs);
    let (_, q) = url.split_once('?').expect("a query");
    assert_eq!(parse_query(q), owned);
});
