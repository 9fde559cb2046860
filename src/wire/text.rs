//! Lenient text fields: real HIS systems send codes as strings, numbers or null.

use serde::de::{self, Deserializer, Visitor};
use smol_str::SmolStr;
use std::fmt;

/// A text field that accepts a string, a number, a boolean or null (null and absent are "").
/// Codes such as `gend`, `med_type`, `insutype` and `trig_scen` arrive in any of these forms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(pub SmolStr);

impl Text {
    pub fn as_str(&self) -> &str {
        self.0.trim()
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
    /// `None` when empty, else the trimmed text.
    pub fn opt(&self) -> Option<&str> {
        let s = self.0.trim();
        (!s.is_empty()).then_some(s)
    }
    /// The text, trimmed, `None` when empty (inline text is copied, longer text shared).
    pub fn take(self) -> Option<SmolStr> {
        let t = self.0.trim();
        if t.is_empty() {
            None
        } else if t.len() == self.0.len() {
            Some(self.0)
        } else {
            Some(SmolStr::new(t))
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(SmolStr::new(s))
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number or null")
    }
    // Most national fields (codes, flags, times, short names) fit inline: no allocation per field.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(SmolStr::new(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text(SmolStr::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text(SmolStr::new(itoa::Buffer::new().format(v))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text(SmolStr::new(itoa::Buffer::new().format(v))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        let mut b = ryu::Buffer::new();
        if v.is_finite() {
            Ok(Text(SmolStr::new(b.format_finite(v).trim_end_matches(".0"))))
        } else {
            Err(E::custom("not a finite number"))
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text(SmolStr::new_static(if v { "1" } else { "0" })))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strings_numbers_and_null() {
        let v: Vec<Text> = serde_json::from_str(r#"["01", 1, 2.5, null, true, " 390 "]"#).unwrap();
        assert_eq!(v[0].as_str(), "01");
        assert_eq!(v[1].as_str(), "1");
        assert_eq!(v[2].as_str(), "2.5");
        assert!(v[3].is_empty());
        assert_eq!(v[4].as_str(), "1");
        assert_eq!(v[5].as_str(), "390");
        assert!(serde_json::from_str::<Text>("{}").is_err());
    }
}
