//! The national 医保 interface on the wire: the envelope, the transaction bodies, lenient scalars.
//!
//! Architecture Invariant: this is the only module that knows JSON field names. It knows nothing of
//! rules or HTTP. The bytes a proxy forwards are never re-serialised from these types.

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
    if head.infno.is_empty() {
        return Err(ParseError::Missing("infno".into()));
    }
    Ok(head)
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
    let mut in_str = false;
    let mut esc = false;
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
                    return Err(ParseError::TooDeep(MAX_DEPTH));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keeps_input_raw_and_reads_infno_as_number_or_string() {
        let h = parse_head(br#"{"infno":2204,"msgid":"M1","input":{"feedetail":[]}}"#).unwrap();
        assert_eq!(h.infno.as_str(), "2204");
        assert_eq!(h.input.unwrap().get(), r#"{"feedetail":[]}"#);
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
