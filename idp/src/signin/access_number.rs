//! Access numbers: what a sign-in page shows and the person types into (or scans with)
//! their device.
//!
//! Nine digits: eight uniformly random ones and a Luhn check digit, which catches every
//! single mistyped digit and most swapped neighbours before the device asks anything.
//! Eight random digits are 10^8 values; with at most `max_signins` sign-ins waiting (10 000
//! by default) and each address allowed a few failed look-ups per window
//! ([`super::LOOKUP_FAILURES`] per [`super::LOOKUP_WINDOW_SECS`]), an address finds a
//! waiting number by guessing with odds of about 10^-3 per window at most, and what it
//! finds is only the chance to sign a stranger's browser in as itself (the code goes to
//! the browser that shows the number, never to the device).

use rand_core::RngCore;

/// Random digits in an access number.
pub const RANDOM_DIGITS: usize = 8;
/// Every digit, the check digit last.
pub const DIGITS: usize = RANDOM_DIGITS + 1;

/// A well-formed access number (check digit verified). Only [`AccessNumber::generate`]
/// and [`AccessNumber::parse`] make one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessNumber(String);

/// Why typed text is not an access number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessNumberError {
    /// Not nine digits (spaces and dashes aside).
    #[error("an access number is {DIGITS} digits")]
    Length,
    /// The check digit does not match: a digit was mistyped.
    #[error("the access number is mistyped (its check digit does not match)")]
    CheckDigit,
}

/// The Luhn check digit of `digits` (each 0–9).
fn luhn(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    // `sum % 10` is below 10, so the digit fits.
    u8::try_from((10 - sum % 10) % 10).unwrap_or(0)
}

impl AccessNumber {
    /// A new random access number.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        // Rejection sampling: 4_200_000_000 is the largest multiple of 10^8 below 2^32.
        let value = loop {
            let candidate = rng.next_u32();
            if candidate < 4_200_000_000 {
                break candidate % 100_000_000;
            }
        };
        let random = format!("{value:08}");
        let digits: Vec<u8> = random.bytes().map(|b| b - b'0').collect();
        Self(format!("{random}{}", luhn(&digits)))
    }

    /// Reads typed text: nine digits, spaces and dashes ignored, the check digit right.
    pub fn parse(text: &str) -> Result<Self, AccessNumberError> {
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .take(DIGITS + 1)
            .collect();
        if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccessNumberError::Length);
        }
        let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        if luhn(&values[..RANDOM_DIGITS]) != values[RANDOM_DIGITS] {
            return Err(AccessNumberError::CheckDigit);
        }
        Ok(Self(digits))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits grouped for reading aloud: `1234 5678 9`.
    pub fn grouped(&self) -> String {
        let (a, rest) = self.0.split_at(4);
        let (b, c) = rest.split_at(4);
        format!("{a} {b} {c}")
    }
}

impl std::fmt::Display for AccessNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_number_reads_back_in_any_grouping_and_a_typo_is_caught() {
        let mut rng = rand_core::OsRng;
        for _ in 0..200 {
            let number = AccessNumber::generate(&mut rng);
            assert_eq!(number.as_str().len(), DIGITS);
            assert_eq!(AccessNumber::parse(number.as_str()).unwrap(), number);
            assert_eq!(AccessNumber::parse(&number.grouped()).unwrap(), number);
            // Every single-digit typo is caught by the check digit.
            for position in 0..DIGITS {
                let mut typo = number.as_str().as_bytes().to_vec();
                typo[position] = b'0' + (typo[position] - b'0' + 1) % 10;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(
                    AccessNumber::parse(&typo),
                    Err(AccessNumberError::CheckDigit),
                    "{typo}"
                );
            }
        }
        // The textbook Luhn example: 7992739871 has check digit 3.
        assert_eq!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
        for bad in [
            "",
            "12345678",
            "1234567890",
            "12345678a",
            "１２３４５６７８９",
        ] {
            assert_eq!(
                AccessNumber::parse(bad),
                Err(AccessNumberError::Length),
                "{bad}"
            );
        }
    }
}
