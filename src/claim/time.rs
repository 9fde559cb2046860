//! Service dates and times as the messages write them.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Parses the date-times real systems send: `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-ddTHH:mm:ss`,
/// `yyyy/MM/dd HH:mm:ss`, `yyyyMMddHHmmss`, or a bare date (midnight). Fractions are ignored.
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.trim().as_bytes();
    let (date, rest) = parse_date_prefix(b)?;
    let rest = match rest.first() {
        None => return date.and_hms_opt(0, 0, 0),
        Some(b' ' | b'T') => &rest[1..],
        Some(_) if b.len() >= 14 && b[..8].iter().all(u8::is_ascii_digit) => rest,
        Some(_) => return None,
    };
    let (h, m, sec) = if rest.len() >= 8 && rest[2] == b':' && rest[5] == b':' {
        (num(&rest[0..2])?, num(&rest[3..5])?, num(&rest[6..8])?)
    } else if rest.len() >= 6 && rest[..6].iter().all(u8::is_ascii_digit) {
        (num(&rest[0..2])?, num(&rest[2..4])?, num(&rest[4..6])?)
    } else if rest.len() == 5 && rest[2] == b':' {
        (num(&rest[0..2])?, num(&rest[3..5])?, 0)
    } else {
        return None;
    };
    let t = NaiveTime::from_hms_opt(h, m, sec)?;
    Some(NaiveDateTime::new(date, t))
}

/// Parses a date (`yyyy-MM-dd`, `yyyy/MM/dd`, `yyyyMMdd`), ignoring any time part.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    parse_date_prefix(s.trim().as_bytes()).map(|(d, _)| d)
}

fn parse_date_prefix(b: &[u8]) -> Option<(NaiveDate, &[u8])> {
    if b.len() >= 10 && (b[4] == b'-' || b[4] == b'/') && b[7] == b[4] {
        let d = NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?;
        Some((d, &b[10..]))
    } else if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
        let d = NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[4..6])?, num(&b[6..8])?)?;
        Some((d, &b[8..]))
    } else {
        None
    }
}

fn num(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Age in whole years, months and days on `on` (the line's service date, never the wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age {
    pub days: i64,
    pub months: i64,
    pub years: i64,
}

impl Age {
    pub fn between(birth: NaiveDate, on: NaiveDate) -> Option<Age> {
        if on < birth {
            return None;
        }
        let days = (on - birth).num_days();
        let months = on.years_since(birth).map_or(0, |y| i64::from(y) * 12) + extra_months(birth, on);
        let years = i64::from(on.years_since(birth)?);
        Some(Age { days, months, years })
    }

    /// Human text: `15天`, `5个月`, `7岁`.
    pub fn text(&self) -> String {
        if self.days < 31 {
            format!("{}天", self.days)
        } else if self.years < 1 {
            format!("{}个月", self.months)
        } else {
            format!("{}岁", self.years)
        }
    }
}

/// Whole months past the last birthday.
fn extra_months(birth: NaiveDate, on: NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut m = i64::from(on.month()) - i64::from(birth.month());
    if on.day() < birth.day() {
        m -= 1;
    }
    m.rem_euclid(12)
}

/// `YYYY-MM-DD`, as `format("%Y-%m-%d")` writes it, without parsing a format string per call (the
/// history write formats two per fee line).
pub fn date_text(d: NaiveDate) -> String {
    let mut s = String::with_capacity(19);
    push_date(&mut s, d);
    s
}

/// `YYYY-MM-DD HH:MM:SS`, as `format("%Y-%m-%d %H:%M:%S")` writes it (seconds only).
pub fn datetime_text(t: NaiveDateTime) -> String {
    let mut s = String::with_capacity(19);
    push_date(&mut s, t.date());
    if s.len() != 10 {
        return t.format("%Y-%m-%d %H:%M:%S").to_string();
    }
    for (sep, n) in [(' ', t.hour()), (':', t.minute()), (':', t.second())] {
        s.push(sep);
        push_digits(&mut s, n, 2);
    }
    s
}

fn push_date(s: &mut String, d: NaiveDate) {
    let Ok(y) = u32::try_from(d.year()) else {
        s.push_str(&d.format("%Y-%m-%d").to_string());
        return;
    };
    if y > 9999 {
        s.push_str(&d.format("%Y-%m-%d").to_string());
        return;
    }
    push_digits(s, y, 4);
    s.push('-');
    push_digits(s, d.month(), 2);
    s.push('-');
    push_digits(s, d.day(), 2);
}

fn push_digits(s: &mut String, n: u32, width: u32) {
    for i in (0..width).rev() {
        s.push(char::from(b'0' + ((n / 10u32.pow(i)) % 10) as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_formats_seen_in_the_field() {
        let want = NaiveDate::from_ymd_opt(2025, 3, 5).unwrap().and_hms_opt(8, 30, 0).unwrap();
        assert_eq!(parse_datetime("2025-03-05 08:30:00"), Some(want));
        assert_eq!(parse_datetime("2025-03-05T08:30:00"), Some(want));
        assert_eq!(parse_datetime("2025/03/05 08:30:00"), Some(want));
        assert_eq!(parse_datetime("20250305083000"), Some(want));
        assert_eq!(parse_datetime("2025-03-05 08:30:00.123"), Some(want));
        assert_eq!(parse_datetime("2025-03-05").unwrap().date(), want.date());
        assert_eq!(parse_datetime("2025-02-30 00:00:00"), None);
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime(""), None);
    }

    #[test]
    fn age_on_the_service_date() {
        let b = NaiveDate::from_ymd_opt(2018, 6, 15).unwrap();
        let a = Age::between(b, NaiveDate::from_ymd_opt(2025, 6, 14).unwrap()).unwrap();
        assert_eq!(a.years, 6);
        assert_eq!(a.months, 83);
        let a = Age::between(b, NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()).unwrap();
        assert_eq!(a.years, 7);
        let n = Age::between(b, NaiveDate::from_ymd_opt(2018, 7, 1).unwrap()).unwrap();
        assert_eq!((n.days, n.months, n.years), (16, 0, 0));
        assert!(Age::between(b, NaiveDate::from_ymd_opt(2018, 1, 1).unwrap()).is_none());
    }

    proptest::proptest! {
        #[test]
        fn text_is_what_chrono_formats(days in -1_000_000i32..4_000_000, secs in 0u32..86_400, nanos in 0u32..1_000_000_000) {
            let d = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or_default();
            let t = d.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).unwrap_or_default());
            proptest::prop_assert_eq!(date_text(d), d.format("%Y-%m-%d").to_string());
            proptest::prop_assert_eq!(datetime_text(t), t.format("%Y-%m-%d %H:%M:%S").to_string());
        }
    }
}
