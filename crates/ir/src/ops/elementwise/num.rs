//! Per-element arithmetic with ONNX semantics for every numeric storage type, so the
//! kernels can be written once. Integers wrap on overflow and never trap: integer
//! division and remainder by zero give 0 (ONNX leaves them undefined).

use crate::Elem;
use half::f16;

/// A numeric element type (`u8` also backs Bool, but Bool ops do not go through here).
pub(crate) trait Num: Elem + Copy + PartialOrd {
    const FLOAT: bool;
    const ZERO: Self;
    const ONE: Self;
    /// The bottom and top of the type's range (infinities for floats).
    const LOWEST: Self;
    const HIGHEST: Self;
    /// Integers: the value widened. Floats: truncated toward zero, saturating (NaN is 0).
    fn to_i64(self) -> i64;
    /// Integers: wrapping (like numpy `astype`). Floats: rounded to nearest.
    fn from_i64(v: i64) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// Floats: IEEE division. Integers: truncation toward zero, like C and like
    /// ONNX's reference (`np.divide` then `astype`).
    fn div(self, o: Self) -> Self;
    /// Remainder with the sign of the dividend (C `fmod`, ONNX `Mod` with `fmod=1`).
    fn rem_trunc(self, o: Self) -> Self;
    /// Remainder with the sign of the divisor (Python `%`, ONNX integer `Mod` with `fmod=0`).
    fn rem_floor(self, o: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
}

macro_rules! int_num {
    ($t:ty) => {
        impl Num for $t {
            const FLOAT: bool = false;
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline]
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline]
            fn div(self, o: Self) -> Self {
                if o == 0 {
                    0
                } else {
                    self.wrapping_div(o)
                }
            }
            #[inline]
            fn rem_trunc(self, o: Self) -> Self {
                if o == 0 {
                    0
                } else {
                    self.wrapping_rem(o)
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn rem_floor(self, o: Self) -> Self {
                let r = self.rem_trunc(o);
                if r != 0 && ((r < 0) != (o < 0)) {
                    r.wrapping_add(o)
                } else {
                    r
                }
            }
            #[inline]
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn abs(self) -> Self {
                if self < 0 {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
        }
    };
}
int_num!(i8);
int_num!(u8);
int_num!(i32);
int_num!(i64);

impl Num for f32 {
    const FLOAT: bool = true;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const LOWEST: Self = f32::NEG_INFINITY;
    const HIGHEST: Self = f32::INFINITY;
    #[inline]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline]
    fn from_i64(v: i64) -> Self {
        v as f32
    }
    #[inline]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline]
    fn div(self, o: Self) -> Self {
        self / o
    }
    #[inline]
    fn rem_trunc(self, o: Self) -> Self {
        self % o
    }
    #[inline]
    fn rem_floor(self, o: Self) -> Self {
        let r = self % o;
        if r != 0.0 && ((r < 0.0) != (o < 0.0)) {
            r + o
        } else {
            r
        }
    }
    #[inline]
    fn neg(self) -> Self {
        -self
    }
    #[inline]
    fn abs(self) -> Self {
        f32::abs(self)
    }
}

/// f16 arithmetic is done in f32 and rounded once, which is exact for +, -, * and /.
impl Num for f16 {
    const FLOAT: bool = true;
    const ZERO: Self = f16::ZERO;
    const ONE: Self = f16::ONE;
    const LOWEST: Self = f16::NEG_INFINITY;
    const HIGHEST: Self = f16::INFINITY;
    #[inline]
    fn to_i64(self) -> i64 {
        self.to_f32() as i64
    }
    #[inline]
    fn from_i64(v: i64) -> Self {
        f16::from_f32(v as f32)
    }
    #[inline]
    fn add(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() + o.to_f32())
    }
    #[inline]
    fn sub(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() - o.to_f32())
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() * o.to_f32())
    }
    #[inline]
    fn div(self, o: Self) -> Self {
        f16::from_f32(self.to_f32() / o.to_f32())
    }
    #[inline]
    fn rem_trunc(self, o: Self) -> Self {
        f16::from_f32(self.to_f32().rem_trunc(o.to_f32()))
    }
    #[inline]
    fn rem_floor(self, o: Self) -> Self {
        f16::from_f32(self.to_f32().rem_floor(o.to_f32()))
    }
    #[inline]
    fn neg(self) -> Self {
        -self
    }
    #[inline]
    fn abs(self) -> Self {
        f16::from_bits(self.to_bits() & 0x7fff)
    }
}

/// NaN-propagating maximum, like `np.maximum` (which ONNX `Max` is defined by).
#[inline]
pub(crate) fn max_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    let a_nan = a != a;
    if a_nan || a >= b {
        a
    } else {
        b
    }
}

/// NaN-propagating minimum, like `np.minimum`.
#[inline]
pub(crate) fn min_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    let a_nan = a != a;
    if a_nan || a <= b {
        a
    } else {
        b
    }
}

/// `base` to an integer power with wrapping arithmetic. A negative exponent gives the
/// truncated reciprocal (0 unless `|base| == 1`); `0` to a negative power gives 0, as
/// integer division by zero does here.
pub(crate) fn int_pow(base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 if exp % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        };
    }
    let (mut acc, mut b, mut e) = (1i64, base, exp as u64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    acc
}

/// erf(x)/x on |x| < 1 as a polynomial in x² (lowest degree first): a least-squares fit
/// (numpy Chebyshev fit against mpmath, degree 8) with relative error about 1e-12.
const ERF_SMALL: [f64; 9] = [
    1.128_379_167_095_196_8,
    -0.376_126_388_936_696_37,
    0.112_837_913_784_195_25,
    -0.026_866_138_213_806_26,
    0.005_223_801_554_282_541,
    -0.000_854_300_181_735_755_8,
    0.000_119_606_723_432_343_29,
    -1.393_373_117_577_229_6e-5,
    1.064_856_910_762_926_3e-6,
];

/// erfc(x)·e^(x²) on 1 ≤ x < 6 as a polynomial in u = 4.8·t - 2.2, t = 1/(1 + x/2)
/// (u spans [-1, 1]): the same kind of fit, degree 11, relative error about 1.3e-12.
const ERFC_SCALED: [f64; 12] = [
    0.221_429_540_229_998_36,
    0.161_893_568_040_842_26,
    0.038_560_570_419_848_84,
    0.005_588_816_284_391_345_5,
    0.000_197_139_245_912_698_28,
    -8.079_220_684_648_034e-5,
    -7.340_834_817_246_573e-6,
    1.979_516_529_826_229e-6,
    1.641_665_877_977_959_8e-7,
    -6.989_650_591_947_876e-8,
    -1.249_054_014_225_811_2e-9,
    2.439_404_006_612_41e-9,
];

fn horner(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// The error function, within about 1e-12 (absolute and relative) of the exact value:
/// far more than f32 needs, at the cost of one short polynomial (and one `exp` for
/// |x| ≥ 1). Beyond 6, erf(x) rounds to ±1 even in f64.
pub(crate) fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 1.0 {
        a * horner(&ERF_SMALL, a * a)
    } else if a < 6.0 {
        let u = 4.8 / (1.0 + 0.5 * a) - 2.2;
        1.0 - (-a * a).exp() * horner(&ERFC_SCALED, u)
    } else if a.is_nan() {
        return x;
    } else {
        1.0
    };
    r.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_and_remainders() {
        // numpy: np.trunc(-7/2) = -3, np.fmod(-7, 2) = -1, np.mod(-7, 2) = 1, np.mod(7, -2) = -1
        assert_eq!(Num::div(-7i32, 2), -3);
        assert_eq!(Num::div(7i8, -2), -3);
        assert_eq!(Num::rem_trunc(-7i64, 2), -1);
        assert_eq!(Num::rem_floor(-7i64, 2), 1);
        assert_eq!(Num::rem_floor(7i64, -2), -1);
        assert_eq!(Num::rem_floor(-6i32, 3), 0);
        assert_eq!(Num::rem_floor(200u8, 7), 4);
        // no traps on zero divisors or overflow
        assert_eq!(Num::div(5i32, 0), 0);
        assert_eq!(Num::rem_floor(5i32, 0), 0);
        assert_eq!(Num::div(i32::MIN, -1), i32::MIN);
        assert_eq!(Num::rem_trunc(i64::MIN, -1), 0);
        assert_eq!(Num::abs(i8::MIN), i8::MIN);
        // float python-style remainder: np.mod(-4.5, 2) = 1.5, np.fmod(-4.5, 2) = -0.5
        assert_eq!(Num::rem_floor(-4.5f32, 2.0), 1.5);
        assert_eq!(Num::rem_trunc(-4.5f32, 2.0), -0.5);
    }

    #[test]
    fn nan_propagating_min_max() {
        assert!(max_nan(f32::NAN, 1.0).is_nan());
        assert!(max_nan(1.0, f32::NAN).is_nan());
        assert!(min_nan(f32::NAN, 1.0).is_nan());
        assert!(min_nan(1.0f32, f32::NAN).is_nan());
        assert_eq!(max_nan(2, 3), 3);
        assert_eq!(min_nan(2, 3), 2);
    }

    #[test]
    fn integer_powers() {
        assert_eq!(int_pow(3, 4), 81);
        assert_eq!(int_pow(-2, 5), -32);
        assert_eq!(int_pow(2, 64), 0); // wraps
        assert_eq!(int_pow(5, 0), 1);
        assert_eq!(int_pow(2, -1), 0);
        assert_eq!(int_pow(-1, -3), -1);
        assert_eq!(int_pow(-1, -4), 1);
    }

    #[test]
    fn erf_matches_reference_values() {
        // math.erf from CPython (correctly rounded to ~1 ulp)
        let cases = [
            (0.0, 0.0),
            (1e-8, 1.1283791670955126e-08),
            (0.3, 0.3286267594591274),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753108),
            (1.99, 0.995111413199617),
            (2.01, 0.9955248493552482),
            (2.0, 0.9953222650189527),
            (2.9, 0.9999589021219005),
            (3.0, 0.9999779095030014),
            (3.5, 0.9999992569016276),
            (5.0, 0.9999999999984626),
            (7.0, 1.0),
            (1e-300, 1.1283791670955126e-300),
            (0.999_999, 0.8427003778418023),
            (1.000_001, 0.8427012080567972),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 1e-12, "erf({x}) = {} want {want}", erf(x));
            assert!((erf(-x) + want).abs() < 1e-12);
        }
        assert!(erf(f64::NAN).is_nan());
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
    }
}
