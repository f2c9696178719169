//! Wall-clock and duration formatting for reports, without a date crate.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` as RFC 3339 in UTC with microseconds, e.g.
/// `2026-11-28T15:17:18.123456Z`. Times before 1970 print as the epoch.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_micros()
    );
    out
}

/// Year, month, day of the `days`-th day after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A duration as milliseconds with two decimals, e.g. `12.35ms`.
pub(crate) fn millis(duration: Duration) -> String {
    let micros = duration.as_micros();
    let hundredths = (micros + 5) / 10;
    format!("{}.{:02}ms", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap_day = UNIX_EPOCH + Duration::new(951_782_400 + 3_723, 456_789_000);
        assert_eq!(rfc3339(leap_day), "2000-02-29T01:02:03.456789Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_798_416_000);
        assert_eq!(rfc3339(later), "2026-12-28T00:00:00.000000Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn millis_round_to_hundredths() {
        assert_eq!(millis(Duration::from_micros(12_345)), "12.35ms");
        assert_eq!(millis(Duration::ZERO), "0.00ms");
        assert_eq!(millis(Duration::from_secs(2)), "2000.00ms");
    }
}
