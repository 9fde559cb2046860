//! Money and quantities as integers. Never a float.

use crate::wire::num::{format_fixed, write_fixed};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// `+`, `+=` and `-` that saturate: a sum of amounts or quantities never wraps around.
macro_rules! saturating_ops {
    ($t:ident) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                $t(self.0.saturating_add(o.0))
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                self.0 = self.0.saturating_add(o.0);
            }
        }
        impl Sub for $t {
            type Output = $t;
            fn sub(self, o: $t) -> $t {
                $t(self.0.saturating_sub(o.0))
            }
        }
    };
}

/// An amount in fen (分, 0.01 元).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);
    pub const fn new(fen: i64) -> Fen {
        Fen(fen)
    }
    pub const fn get(self) -> i64 {
        self.0
    }
    /// Yuan text with two decimals, `"8.00"`.
    pub fn yuan(self) -> String {
        format_fixed(self.0, 2, 2)
    }
    /// [`Fen::yuan`] appended to `out`.
    pub fn write_yuan(self, out: &mut String) {
        write_fixed(out, self.0, 2, 2);
    }
    pub fn saturating_add(self, o: Fen) -> Fen {
        Fen(self.0.saturating_add(o.0))
    }
}

saturating_ops!(Fen);
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.yuan())
    }
}

/// A quantity in 1/10000 units (`cnt` is N16,4). Negative for refund lines (退费).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(i64);

impl Qty {
    pub const ZERO: Qty = Qty(0);
    pub const ONE: Qty = Qty(10_000);
    pub const SCALE: i64 = 10_000;
    pub const fn from_units(u: i64) -> Qty {
        Qty(u)
    }
    pub const fn whole(n: i64) -> Qty {
        Qty(n * Self::SCALE)
    }
    pub const fn units(self) -> i64 {
        self.0
    }
    /// Plain text without trailing zeros, `"1.5"`, `"24"`.
    pub fn text(self) -> String {
        format_fixed(self.0, 4, 0)
    }
    /// [`Qty::text`] appended to `out`.
    pub fn write_text(self, out: &mut String) {
        write_fixed(out, self.0, 4, 0);
    }
    /// Whole days rounded up (a days-supply of 7.5 is 8 days of medicine).
    pub fn ceil_whole(self) -> i64 {
        (self.0 + Self::SCALE - 1).div_euclid(Self::SCALE)
    }
}
saturating_ops!(Qty);

/// A unit price in 1/1000000 元 (`pric` is N16,6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(i64);

impl Price {
    pub const fn from_micro(u: i64) -> Price {
        Price(u)
    }
    pub const fn micro(self) -> i64 {
        self.0
    }
    /// Yuan text with at least two decimals, `"0.10"`, `"0.123456"`.
    pub fn yuan(self) -> String {
        format_fixed(self.0, 6, 2)
    }
    /// [`Price::yuan`] appended to `out`.
    pub fn write_yuan(self, out: &mut String) {
        write_fixed(out, self.0, 6, 2);
    }
    /// `qty × price`, rounded half away from zero to the fen.
    pub fn times(self, q: Qty) -> Fen {
        // micro-yuan × (1/10000 unit) = 1e-10 yuan; to fen divide by 1e8.
        let p = i128::from(self.0) * i128::from(q.0);
        let d: i128 = 100_000_000;
        let r = if p >= 0 { (p + d / 2) / d } else { (p - d / 2) / d };
        Fen(r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_times_quantity_rounds_to_the_fen() {
        assert_eq!(Price::from_micro(100_000).times(Qty::whole(6)), Fen::new(60));
        assert_eq!(Price::from_micro(333_333).times(Qty::whole(3)), Fen::new(100));
        assert_eq!(Price::from_micro(5_000).times(Qty::whole(1)), Fen::new(1));
        assert_eq!(Price::from_micro(100_000).times(Qty::whole(-6)), Fen::new(-60));
    }

    #[test]
    fn texts() {
        assert_eq!(Fen::new(800).yuan(), "8.00");
        assert_eq!(Qty::from_units(15_000).text(), "1.5");
        assert_eq!(Qty::from_units(15_000).ceil_whole(), 2);
        assert_eq!(Price::from_micro(100_000).yuan(), "0.10");
    }
}
