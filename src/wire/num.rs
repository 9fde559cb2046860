//! Fixed-point decimals as the national interface sends them.
//!
//! Amounts (`N16,2`), unit prices (`N16,6`) and quantities (`N16,4`) arrive as JSON numbers or as
//! strings, depending on the HIS. They are parsed into an `i64` count of `10^-SCALE` units from their
//! decimal text, never through float arithmetic. A JSON number reaches us as the `f64` that serde_json
//! parsed (correctly rounded, `float_roundtrip`); its shortest round-trip text (ryu) is the decimal the
//! sender wrote for every value with at most 15 significant digits, which covers every `N16,2` amount
//! below 10^13 元. That text is then parsed exactly like a string.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Why a decimal was refused. Static strings: this sits on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumError {
    #[error("not a decimal number")]
    Syntax,
    #[error("too many decimal places")]
    Precision,
    #[error("number out of range")]
    Range,
}

/// Parses decimal text (`-12.50`, `+3`, `1e2`, `0.600`) into units of `10^-scale`.
/// Trailing zeros beyond `scale` are accepted; any other extra digit is a [`NumError::Precision`].
pub fn parse_fixed(text: &str, scale: u32) -> Result<i64, NumError> {
    let s = text.trim().as_bytes();
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let (neg, mut i) = match s[0] {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    // Collect the significant digits and the position of the decimal point.
    let mut mantissa: i128 = 0;
    let mut frac_digits: i32 = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut dropped_nonzero = false;
    let mut digits = 0u32;
    while i < s.len() {
        let c = s[i];
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                if digits < 30 {
                    mantissa = mantissa * 10 + i128::from(c - b'0');
                    if mantissa != 0 {
                        digits += 1;
                    }
                    if seen_point {
                        frac_digits += 1;
                    }
                } else if !seen_point {
                    return Err(NumError::Range);
                } else if c != b'0' {
                    dropped_nonzero = true;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(NumError::Syntax),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(NumError::Syntax);
    }
    let mut exp: i32 = 0;
    if i < s.len() {
        // Exponent part.
        i += 1;
        let (eneg, start) = match s.get(i) {
            Some(b'-') => (true, i + 1),
            Some(b'+') => (false, i + 1),
            _ => (false, i),
        };
        if start >= s.len() {
            return Err(NumError::Syntax);
        }
        for &c in &s[start..] {
            if !c.is_ascii_digit() {
                return Err(NumError::Syntax);
            }
            exp = exp.saturating_mul(10).saturating_add(i32::from(c - b'0'));
            if exp > 400 {
                return Err(NumError::Range);
            }
        }
        if eneg {
            exp = -exp;
        }
    }
    if dropped_nonzero {
        return Err(NumError::Precision);
    }
    // value = mantissa * 10^(exp - frac_digits); we want value * 10^scale.
    let shift = exp - frac_digits + scale as i32;
    let mut v = mantissa;
    if shift >= 0 {
        for _ in 0..shift {
            v = v.checked_mul(10).ok_or(NumError::Range)?;
            if v > i128::from(i64::MAX) {
                return Err(NumError::Range);
            }
        }
    } else {
        for _ in 0..(-shift) {
            if v % 10 != 0 {
                return Err(NumError::Precision);
            }
            v /= 10;
        }
    }
    if v > i128::from(i64::MAX) {
        return Err(NumError::Range);
    }
    let v = v as i64;
    Ok(if neg { -v } else { v })
}

/// Formats `units` of `10^-scale` as plain decimal text with exactly `min_frac` to `scale` decimals
/// (trailing zeros beyond `min_frac` trimmed).
pub fn format_fixed(units: i64, scale: u32, min_frac: u32) -> String {
    let mut s = String::with_capacity(24);
    write_fixed(&mut s, units, scale, min_frac);
    s
}

/// [`format_fixed`] appended to `out`: digits written by hand, without the formatting machinery or
/// a temporary string (hit messages and evidence render several amounts each).
pub fn write_fixed(out: &mut String, units: i64, scale: u32, min_frac: u32) {
    let scale = scale.min(18);
    let abs = units.unsigned_abs();
    let div = 10u64.pow(scale);
    let int = abs / div;
    let mut frac = abs % div;
    let mut width = scale;
    while width > min_frac && frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    // i64::MIN is 19 digits; a sign, a point and 18 decimals fit in 40 bytes.
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    for _ in 0..width {
        at -= 1;
        buf[at] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    if width > 0 {
        at -= 1;
        buf[at] = b'.';
    }
    let mut n = int;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if units < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits, '.' and '-' were written.
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// A fixed-point wire decimal with `S` decimal places. `None` inside `Option<Fixed<S>>` is an
/// absent field, a JSON `null` or an empty string (real HIS systems send all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed<const S: u32>(pub i64);

/// `N16,2` amounts in fen.
pub type Amount = Fixed<2>;
/// `N16,4` quantities in 1/10000 units.
pub type Quantity = Fixed<4>;
/// `N16,6` unit prices in 1/1000000 元.
pub type UnitPrice = Fixed<6>;

struct FixedVisitor<const S: u32>;

impl<'de, const S: u32> Visitor<'de> for FixedVisitor<S> {
    type Value = Option<Fixed<S>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a decimal number with at most {S} decimal places, as a number or a string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let m = 10i64.pow(S);
        v.checked_mul(m).map(|x| Some(Fixed(x))).ok_or_else(|| E::custom(NumError::Range))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let v = i64::try_from(v).map_err(|_| E::custom(NumError::Range))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !v.is_finite() {
            return Err(E::custom(NumError::Range));
        }
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        parse_fixed(text, S).map(|x| Some(Fixed(x))).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.trim().is_empty() {
            return Ok(None);
        }
        parse_fixed(v, S).map(|x| Some(Fixed(x))).map_err(E::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Deserializes an optional fixed decimal (absent, null and "" are `None`).
pub fn opt_fixed<'de, D: Deserializer<'de>, const S: u32>(d: D) -> Result<Option<Fixed<S>>, D::Error> {
    d.deserialize_any(FixedVisitor::<S>)
}

/// How strictly a request field's decimal is read ([`strict_fixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// The national field may be negative (退单: `cnt`, `det_item_fee_sumamt` of a refund line).
    Any,
    /// The national field is never negative (unit prices, settlement totals).
    NonNegative,
}

/// Checks the text of a request decimal as the national `N16,S` type allows it: an optional `-`
/// (when `sign` allows it), at most `16 - S` integer digits, at most `S` decimals (trailing zeros
/// beyond them carry no value and are accepted), no exponent, no `+`, nothing else.
/// Static reasons: this sits on the hot path.
pub fn check_wire_decimal<const S: u32>(text: &str, sign: Sign) -> Result<(), &'static str> {
    let t = text.trim().as_bytes();
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if neg && sign == Sign::NonNegative {
        return Err("negative value not allowed for this field");
    }
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return Err(if digits.iter().any(|&b| b == b'e' || b == b'E') {
            "exponent not allowed in a decimal"
        } else {
            "not a decimal number"
        });
    }
    let significant = int.iter().skip_while(|&&b| b == b'0').count();
    if significant > (16 - S as usize) {
        return Err("number out of range");
    }
    if let Some(f) = frac {
        if f.iter().any(|&b| b == b'e' || b == b'E') {
            return Err("exponent not allowed in a decimal");
        }
        if f.is_empty() || !f.iter().all(u8::is_ascii_digit) {
            return Err("not a decimal number");
        }
        if f.iter().skip(S as usize).any(|&b| b != b'0') {
            return Err("too many decimal places");
        }
    }
    Ok(())
}

/// A request field's decimal read strictly from its JSON text (see [`check_wire_decimal`]): a JSON
/// number or a string holding one; absent, `null` and `""` are `None`; `true`, `[]`, `{}` are refused.
/// Needs a deserializer over borrowed text (every request body is parsed from its bytes).
///
/// # Errors
/// The reason, at the field's path.
pub fn strict_fixed<'de, D: Deserializer<'de>, const S: u32>(d: D, sign: Sign) -> Result<Option<Fixed<S>>, D::Error> {
    let Some(raw) = <Option<&'de serde_json::value::RawValue> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let text = raw.get();
    let owned;
    let value = match text.as_bytes().first() {
        Some(b'"') if text.contains('\\') => {
            owned = serde_json::from_str::<String>(text).map_err(|_| de::Error::custom("not a decimal number"))?;
            owned.as_str()
        }
        Some(b'"') => &text[1..text.len() - 1],
        Some(b'-' | b'0'..=b'9') => text,
        _ => return Err(de::Error::custom("invalid type: expected a decimal number, as a number or a string")),
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    check_wire_decimal::<S>(value, sign).map_err(de::Error::custom)?;
    parse_fixed(value, S).map(|x| Some(Fixed(x))).map_err(de::Error::custom)
}

/// [`strict_fixed`] for a field that may be negative.
///
/// # Errors
/// As [`strict_fixed`].
pub fn signed<'de, D: Deserializer<'de>, const S: u32>(d: D) -> Result<Option<Fixed<S>>, D::Error> {
    strict_fixed(d, Sign::Any)
}

/// [`strict_fixed`] for a field that is never negative.
///
/// # Errors
/// As [`strict_fixed`].
pub fn unsigned<'de, D: Deserializer<'de>, const S: u32>(d: D) -> Result<Option<Fixed<S>>, D::Error> {
    strict_fixed(d, Sign::NonNegative)
}

impl<'de, const S: u32> serde::Deserialize<'de> for Fixed<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(FixedVisitor::<S>)? {
            Some(v) => Ok(v),
            None => Err(de::Error::custom("empty value")),
        }
    }
}

impl<const S: u32> serde::Serialize for Fixed<S> {
    /// Serialized as a JSON number text with `min(S,2)` decimals (`30.00`, `0.6`→`0.60`).
    fn serialize<Se: serde::Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        let text = format_fixed(self.0, S, S.min(2));
        // serde_json's Number has no exact-decimal constructor without arbitrary_precision, so the
        // exact text goes out through RawValue.
        let raw = serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<const S: u32> fmt::Display for Fixed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.0, S, S.min(2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(parse_fixed("0.60", 2), Ok(60));
        assert_eq!(parse_fixed("30", 2), Ok(3000));
        assert_eq!(parse_fixed("-1.5", 2), Ok(-150));
        assert_eq!(parse_fixed("+2.00", 2), Ok(200));
        assert_eq!(parse_fixed("0.000100", 6), Ok(100));
        assert_eq!(parse_fixed("1e2", 2), Ok(10000));
        assert_eq!(parse_fixed("1.5E-1", 2), Ok(15));
        assert_eq!(parse_fixed(" 12.3400 ", 2), Ok(1234));
    }

    #[test]
    fn refuses_extra_precision_and_garbage() {
        assert_eq!(parse_fixed("0.605", 2), Err(NumError::Precision));
        assert_eq!(parse_fixed("1e-3", 2), Err(NumError::Precision));
        assert_eq!(parse_fixed("abc", 2), Err(NumError::Syntax));
        assert_eq!(parse_fixed("1.2.3", 2), Err(NumError::Syntax));
        assert_eq!(parse_fixed("-", 2), Err(NumError::Syntax));
        assert_eq!(parse_fixed("1e", 2), Err(NumError::Syntax));
        assert_eq!(parse_fixed("NaN", 2), Err(NumError::Syntax));
        assert_eq!(parse_fixed("99999999999999999999", 2), Err(NumError::Range));
        assert_eq!(parse_fixed("1e400", 2), Err(NumError::Range));
    }

    #[test]
    fn json_numbers_and_strings_give_the_same_value() {
        #[derive(serde::Deserialize)]
        struct T {
            a: Amount,
            #[serde(default, deserialize_with = "opt_fixed")]
            b: Option<UnitPrice>,
        }
        let x: T = serde_json::from_str(r#"{"a":0.6,"b":"0.100000"}"#).unwrap();
        assert_eq!(x.a, Fixed(60));
        assert_eq!(x.b, Some(Fixed(100_000)));
        let y: T = serde_json::from_str(r#"{"a":"0.60","b":""}"#).unwrap();
        assert_eq!(y.a, Fixed(60));
        assert_eq!(y.b, None);
        assert!(serde_json::from_str::<T>(r#"{"a":0.605}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a":""}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a":true}"#).is_err());
    }

    #[test]
    fn float_round_trip_is_exact_for_every_cent_below_a_million() {
        for fen in (0..100_000_000i64).step_by(9_973) {
            let text = format_fixed(fen, 2, 2);
            let f: f64 = text.parse().unwrap();
            let mut buf = ryu::Buffer::new();
            assert_eq!(parse_fixed(buf.format_finite(f), 2), Ok(fen), "{text}");
        }
    }

    #[test]
    fn request_decimals_follow_the_national_type() {
        let ok = |t: &str| check_wire_decimal::<2>(t, Sign::NonNegative);
        assert_eq!(ok("12.50"), Ok(()));
        assert_eq!(ok("12.500"), Ok(()), "a trailing zero carries no value");
        assert_eq!(ok("99999999999999.99"), Ok(()));
        assert_eq!(ok("100000000000000"), Err("number out of range"));
        assert_eq!(ok("20.001"), Err("too many decimal places"));
        assert_eq!(ok("1e2"), Err("exponent not allowed in a decimal"));
        assert_eq!(ok("1.5E1"), Err("exponent not allowed in a decimal"));
        assert_eq!(ok("-1.00"), Err("negative value not allowed for this field"));
        assert_eq!(check_wire_decimal::<2>("-1.00", Sign::Any), Ok(()));
        assert_eq!(ok("+1"), Err("not a decimal number"));
        assert_eq!(ok("abc"), Err("not a decimal number"));
        assert_eq!(ok("1."), Err("not a decimal number"));
        assert_eq!(ok(".5"), Err("not a decimal number"));
        assert_eq!(check_wire_decimal::<6>("1234567890.123456", Sign::NonNegative), Ok(()));
        assert_eq!(check_wire_decimal::<6>("12345678901", Sign::NonNegative), Err("number out of range"));
    }

    #[test]
    fn strict_fields_read_numbers_and_strings_and_refuse_everything_else() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "unsigned")]
            a: Option<Amount>,
        }
        let a = |j: &str| serde_json::from_str::<T>(j).map(|t| t.a).map_err(|e| e.to_string());
        assert_eq!(a(r#"{"a":12.5}"#), Ok(Some(Fixed(1250))));
        assert_eq!(a(r#"{"a":"12.50"}"#), Ok(Some(Fixed(1250))));
        assert_eq!(a(r#"{"a":"\u0031"}"#), Ok(Some(Fixed(100))));
        assert_eq!(a(r#"{"a":null}"#), Ok(None));
        assert_eq!(a(r#"{"a":""}"#), Ok(None));
        assert_eq!(a(r#"{}"#), Ok(None));
        for bad in ["1e400", "\"abc\"", "true", "[]", "{}", "20.001", "-5", "\"-5\"", "1e2", "\"\\\"12\\\"\""] {
            assert!(a(&format!(r#"{{"a":{bad}}}"#)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn formats_with_minimum_decimals() {
        assert_eq!(format_fixed(3000, 2, 2), "30.00");
        assert_eq!(format_fixed(-5, 2, 2), "-0.05");
        assert_eq!(format_fixed(100_000, 6, 2), "0.10");
        assert_eq!(format_fixed(123_456, 6, 2), "0.123456");
        assert_eq!(format_fixed(60_000, 4, 0), "6");
        assert_eq!(format_fixed(i64::MIN, 2, 2), "-92233720368547758.08");
        assert_eq!(format_fixed(i64::MAX, 6, 0), "9223372036854.775807");
        assert_eq!(format_fixed(0, 4, 0), "0");
    }

    proptest::proptest! {
        /// The hand-written digits agree with the formatting machinery on every value and scale.
        #[test]
        fn hand_written_digits_agree_with_format(units in proptest::num::i64::ANY, scale in 0u32..=6, min in 0u32..=6) {
            let min = min.min(scale);
            let (neg, abs) = (units < 0, units.unsigned_abs());
            let div = 10u64.pow(scale);
            let (int, mut frac, mut width) = (abs / div, abs % div, scale);
            while width > min && frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            let sign = if neg { "-" } else { "" };
            let want = if width == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac:0w$}", w = width as usize) };
            let mut got = String::from("前缀");
            write_fixed(&mut got, units, scale, min);
            proptest::prop_assert_eq!(got, format!("前缀{want}"));
        }
    }
}
