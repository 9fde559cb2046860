//! The national 医保 interface on the wire: the envelope, the transaction bodies, lenient scalars.
//!
//! Architecture Invariant: this is the only module that knows JSON field names. It knows nothing of
//! rules or HTTP. The bytes a proxy forwards are never re-serialised from these types.

pub mod cds;
pub mod envelope;
pub mod error;
pub mod infno;
pub mod num;
pub mod text;
pub mod tx;

pub use envelope::{split_exchange, OwnResponse, RequestHead, ResponseEnvelope};
pub use error::ParseError;
pub use infno::Infno;
pub use num::{Amount, Fixed, Quantity, UnitPrice};
pub use text::Text;

/// The largest body claimgate reads (a 1,000-line 2301 is about 0.7 MB).
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The deepest JSON nesting a message may have (3101 reaches 6; serde_json stops at 128 anyway).
const MAX_DEPTH: usize = 32;

/// Parses the request head (everything but `input`). The body was size-limited by the caller.
///
/// # Errors
/// [`ParseError`] naming the problem: not JSON, too deeply nested, not an object, no `infno`.
pub fn parse_head(body: &[u8]) -> Result<RequestHead<'_>, ParseError> {
    let head = parse_head_any(body)?;
    if head.infno.is_empty() {
        return Err(ParseError::Missing("infno".into()));
    }
    Ok(head)
}

/// [`parse_request`] on a route that names the transaction in its path (`…/callService/2204`, as
/// 广东's gateways are called): the body's `infno` when it has one (it must then be the path's),
/// else the path's. `None`: the plain route, as [`parse_request`].
///
/// # Errors
/// As [`parse_request`]; `infno` when the body's and the path's differ.
pub fn parse_request_for<'a>(body: &'a [u8], path_infno: Option<&str>) -> Result<RequestHead<'a>, ParseError> {
    with_path_infno(body, path_infno, parse_request)
}

/// [`parse_head`] with the route's path `infno` as [`parse_request_for`] takes it.
///
/// # Errors
/// As [`parse_request_for`].
pub fn parse_head_for<'a>(body: &'a [u8], path_infno: Option<&str>) -> Result<RequestHead<'a>, ParseError> {
    with_path_infno(body, path_infno, parse_head)
}

fn with_path_infno<'a>(
    body: &'a [u8],
    path_infno: Option<&str>,
    parse: fn(&'a [u8]) -> Result<RequestHead<'a>, ParseError>,
) -> Result<RequestHead<'a>, ParseError> {
    let Some(p) = path_infno.map(str::trim).filter(|p| !p.is_empty()) else { return parse(body) };
    match parse(body) {
        Ok(h) if h.infno.as_str() == p => Ok(h),
        Ok(h) => {
            Err(ParseError::field("infno", format!("{} does not match the infno {p} in the path", h.infno.as_str())))
        }
        Err(ParseError::Missing(f)) if f == "infno" => {
            let mut h = parse_head_any(body)?;
            h.infno = Text::from(p);
            Ok(h)
        }
        Err(e) => Err(e),
    }
}

/// The head, whatever its `infno` (even none).
fn parse_head_any(body: &[u8]) -> Result<RequestHead<'_>, ParseError> {
    check_depth(body)?;
    let head: RequestHead<'_> = match serde_json::from_slice(body) {
        Ok(h) => h,
        Err(_) => {
            // Re-parse only on failure, to name the field that broke.
            let de = &mut serde_json::Deserializer::from_slice(body);
            let r: Result<RequestHead<'_>, _> = serde_path_to_error::deserialize(de);
            return Err(match r {
                Err(e) => ParseError::from_path("", e),
                Ok(_) => ParseError::Json("invalid JSON".into()),
            });
        }
    };
    Ok(head)
}

/// Parses the whole request in one pass where it can: the head and, for a fee upload (2204 /
/// 2301) whose `infno` precedes `input`, the typed body as it is met (`RequestHead::fee`) — the
/// two-step [`parse_head`] + [`parse_body`] scans a 1,000-line upload twice. Anything else, and
/// every error, takes the two-step path, so errors read the same.
///
/// # Errors
/// As [`parse_head`].
pub fn parse_request(body: &[u8]) -> Result<RequestHead<'_>, ParseError> {
    check_depth(body)?;
    // JSON is UTF-8 throughout: the two-step parse refuses invalid bytes anywhere (its raw `input`
    // must be text), so the one pass reads only valid text, including the fields it skips.
    let Ok(text) = std::str::from_utf8(body) else { return parse_head(body) };
    let mut de = serde_json::Deserializer::from_str(text);
    if let Ok(envelope::OnePass(h)) = serde::Deserialize::deserialize(&mut de) {
        if de.end().is_ok() && !h.infno.is_empty() {
            return Ok(h);
        }
    }
    parse_head(body)
}

/// The gateway's answer `body` with `reminders` appended to its `warn_msg` (after `；` when it
/// has one); `None` when the body is not a JSON object (relayed as it is).
pub fn append_warn_msg(body: &[u8], reminders: String) -> Option<Vec<u8>> {
    let mut v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let merged = match v.get("warn_msg").and_then(|x| x.as_str()).filter(|x| !x.is_empty()) {
        Some(prev) => format!("{prev}；{reminders}"),
        None => reminders,
    };
    *v.as_object_mut()?.entry("warn_msg").or_insert(serde_json::Value::Null) = serde_json::Value::String(merged);
    Some(serde_json::to_vec(&v).unwrap_or_default())
}

/// Parses a transaction body, naming the failing field path (`input.feedetail[3].cnt`) on error.
///
/// # Errors
/// [`ParseError::Field`] or [`ParseError::Json`].
pub fn parse_body<'a, T: serde::Deserialize<'a>>(raw: &'a str, prefix: &str) -> Result<T, ParseError> {
    // The fast path is plain serde; the path-tracking parse runs only to explain a failure.
    match serde_json::from_str(raw) {
        Ok(v) => Ok(v),
        Err(plain) => {
            let de = &mut serde_json::Deserializer::from_str(raw);
            match serde_path_to_error::deserialize::<_, T>(de) {
                Err(e) => Err(ParseError::from_path(prefix, e)),
                Ok(_) => Err(ParseError::Json(plain.to_string())),
            }
        }
    }
}

/// Refuses JSON nested deeper than [`MAX_DEPTH`] before any structure is built.
/// A byte scan that skips string contents; it does not validate (serde does that next).
fn check_depth(body: &[u8]) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                // Most of a claim's bytes are inside strings, where only `"` and `\` matter:
                // jump from one to the next (memchr is vectorised) instead of looking at each byte.
                i += 1;
                loop {
                    let Some(k) = body.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) else {
                        // An unterminated string: nothing nests after it; serde reports it.
                        return Ok(());
                    };
                    i += k;
                    if body[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::TooDeep(MAX_DEPTH));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time scan `check_depth` replaced: the reference it must agree with.
    fn depth_reference(body: &[u8]) -> Result<(), ()> {
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        for &b in body {
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(());
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }

    #[test]
    fn a_fee_upload_is_read_in_one_pass_when_infno_comes_first_and_in_two_otherwise() {
        let first = br#"{"infno":"2204","msgid":"M1","input":{"feedetail":[{"feedetl_sn":"1","cnt":"2"}]}}"#;
        let h = parse_request(first).unwrap();
        assert!(h.input.is_none());
        assert_eq!(h.with_fee(|f| f.map(|f| f.feedetail.len())), Some(1));
        let last = br#"{"input":{"feedetail":[]},"infno":"2204","msgid":"M1"}"#;
        let h = parse_request(last).unwrap();
        assert!(h.with_fee(|f| f.is_none()));
        assert_eq!(h.input.unwrap().get(), r#"{"feedetail":[]}"#);
        // Not a fee upload: input stays raw.
        let other = br#"{"infno":"2207","input":{"data":{}}}"#;
        assert!(parse_request(other).unwrap().input.is_some());
    }

    #[test]
    fn the_one_pass_parse_falls_back_so_errors_and_ciphertext_read_as_before() {
        // A bad quantity: the two-step parse names the field when the body is read.
        let bad = br#"{"infno":"2204","input":{"feedetail":[{"cnt":"x"}]}}"#;
        let h = parse_request(bad).unwrap();
        assert!(h.with_fee(|f| f.is_none()) && h.input.is_some(), "fell back to the raw input");
        // Ciphertext (SM4): a string input, kept raw for the caller to recognise.
        let sm4 = br#"{"infno":"2204","enc_type":"SM4","input":"QUJD"}"#;
        assert_eq!(parse_request(sm4).unwrap().input.unwrap().get(), r#""QUJD""#);
        // Same refusals as parse_head.
        assert!(parse_request(b"1").is_err());
        assert!(parse_request(br#"{"infno":"2204","infno":"2301"}"#).is_err());
        assert!(parse_request(format!("{}{}", "[".repeat(40), "]".repeat(40)).as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn depth_scan_agrees_with_the_byte_at_a_time_reference(
            body in proptest::collection::vec(prop::sample::select(b"{}[]\"\\a:,".to_vec()), 0..200)
        ) {
            prop_assert_eq!(check_depth(&body).is_ok(), depth_reference(&body).is_ok());
        }
    }

    #[test]
    fn head_keeps_input_raw_and_reads_infno_as_number_or_string() {
        let h = parse_head(br#"{"infno":2204,"msgid":"M1","input":{"feedetail":[]}}"#).unwrap();
        assert_eq!(h.infno.as_str(), "2204");
        assert_eq!(h.input.unwrap().get(), r#"{"feedetail":[]}"#);
    }

    #[test]
    fn the_path_names_the_transaction_when_the_body_does_not() {
        let body = br#"{"msgid":"M1","input":{"data":{}}}"#;
        assert_eq!(parse_request_for(body, Some("2206")).unwrap().infno.as_str(), "2206");
        assert!(matches!(parse_request_for(body, None), Err(ParseError::Missing(_))));
        let both = br#"{"infno":"2206","msgid":"M1","input":{"data":{}}}"#;
        assert_eq!(parse_head_for(both, Some("2206")).unwrap().infno.as_str(), "2206");
        let e = parse_request_for(both, Some("2207")).unwrap_err();
        assert!(e.to_string().contains("does not match the infno 2207 in the path"), "{e}");
    }

    #[test]
    fn head_errors_name_the_problem() {
        assert!(matches!(parse_head(b"not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse_head(br#"{"msgid":"x"}"#), Err(ParseError::Missing(_))));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(parse_head(deep.as_bytes()), Err(ParseError::TooDeep(_))));
        let e = parse_head(br#"{"infno":{"a":1}}"#).unwrap_err();
        assert!(e.to_string().contains("infno"), "{e}");
    }

    #[test]
    fn body_errors_name_the_field_path() {
        let raw = r#"{"feedetail":[{"feedetl_sn":"1","cnt":"abc"}]}"#;
        let e = parse_body::<tx::FeeUploadInput>(raw, "input").unwrap_err();
        assert!(e.to_string().contains("input.feedetail[0].cnt"), "{e}");
    }
}
