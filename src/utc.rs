//! UTC calendar arithmetic for file names and display, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second) of `secs` after the Unix epoch, in UTC
/// (days-from-civil inverted, proleptic Gregorian calendar).
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// `civil` of a `SystemTime` (times before 1970 count as 1970).
pub fn civil_of(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    civil(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

/// Whole seconds after the Unix epoch (times before 1970 count as 0).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// "2026-11-24 09:45:00".
pub fn format(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_across_leap_days_and_year_ends() {
        assert_eq!(format(0), "1970-01-01 00:00:00");
        assert_eq!(format(1_795_513_500), "2026-11-24 09:45:00");
        assert_eq!(format(1_835_395_200), "2028-02-29 00:00:00");
        assert_eq!(format(1_798_761_599), "2026-12-31 23:59:59");
    }
}
