//! Time as Ceilometer writes it: naive UTC ISO strings like Python's `datetime`
//! (`isoformat()` for sample timestamps, `str()` for notification timestamps) and the
//! monotonic clock in float seconds like `time.monotonic()`. No calendar crate needed.

use std::time::{SystemTime, UNIX_EPOCH};

/// A sample's `timestamp`: Python's `datetime.utcnow().isoformat()`,
/// `2025-01-02T03:04:05.123456`, with `.ffffff` left out when microseconds are 0.
pub fn polling_timestamp(now: SystemTime) -> String {
    format_utc(now, 'T')
}

/// A notification's `timestamp`: Python's `str(datetime.utcnow())`,
/// `2025-01-02 03:04:05.123456` (space separator, same fraction rule).
pub fn notification_timestamp(now: SystemTime) -> String {
    format_utc(now, ' ')
}

/// Seconds of the host's monotonic clock as a float, like Python's `time.monotonic()`
/// (which Ceilometer puts in `monotonic_time`): integer nanoseconds divided by 1e9.
pub fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC exists on
    // every platform the agent runs on (Linux).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    let ns = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    ns as f64 / 1e9
}

/// Microseconds since the Unix epoch, floored (CPython's `utcnow` rounds down).
fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            // Floor for times before 1970: -0.5 µs is -1 µs.
            let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            let rem = d.subsec_nanos() % 1000 != 0;
            -us - i64::from(rem)
        }
    }
}

fn format_utc(t: SystemTime, sep: char) -> String {
    let us = unix_micros(t);
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02}{sep}{hh:02}:{mm:02}:{ss:02}.{micros:06}")
    }
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1000)
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_722), (2023, 12, 31));
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn civil_dates_are_consecutive() {
        // Walk 1900..2200 day by day: each day is the previous one plus one.
        let mut prev = civil_from_days(-25_567); // 1900-01-01
        assert_eq!(prev, (1900, 1, 1));
        let month_len = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for days in -25_566..84_000 {
            let cur = civil_from_days(days);
            let (y, m, d) = prev;
            let want = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(cur, want, "day {days}");
            prev = cur;
        }
    }

    #[test]
    fn timestamps_format_like_python_datetime() {
        // 2025-01-02T03:04:05.123456 is 1735787045.123456
        assert_eq!(
            polling_timestamp(at(1_735_787_045, 123_456)),
            "2025-01-02T03:04:05.123456"
        );
        assert_eq!(
            notification_timestamp(at(1_735_787_045, 987_654)),
            "2025-01-02 03:04:05.987654"
        );
        assert_eq!(
            polling_timestamp(at(1_735_787_045, 0)),
            "2025-01-02T03:04:05"
        );
        assert_eq!(
            polling_timestamp(at(1_735_787_045, 1)),
            "2025-01-02T03:04:05.000001"
        );
        // sub-microsecond parts are floored, not rounded
        assert_eq!(
            polling_timestamp(UNIX_EPOCH + Duration::new(0, 999)),
            "1970-01-01T00:00:00"
        );
        assert_eq!(
            polling_timestamp(UNIX_EPOCH - Duration::new(0, 500)),
            "1969-12-31T23:59:59.999999"
        );
        // the capture's notification timestamp: "ts": 1795316035.790326
        assert_eq!(
            notification_timestamp(at(1_795_316_035, 790_326)),
            "2026-11-22 02:53:55.790326"
        );
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(a > 0.0 && b >= a);
    }
}
