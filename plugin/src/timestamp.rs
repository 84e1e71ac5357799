//! Jira's `issue.fields.updated` timestamps, e.g. `2023-01-01T00:00:00.000+0000`.
//!
//! Parsed by hand: one fixed format, and a date crate would add more to the component than this
//! whole module.

/// Unix milliseconds of `YYYY-MM-DDTHH:MM:SS[.fff](Z|+HHMM|+HH:MM|-HHMM|-HH:MM)`.
pub fn parse_millis(s: &str) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), ..] => {
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let minutes =
                digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jira_timestamps() {
        assert_eq!(parse_millis("1970-01-01T00:00:00.000+0000"), Some(0));
        assert_eq!(
            parse_millis("2023-01-01T00:00:00.000+0000"),
            Some(1_672_531_200_000)
        );
        assert_eq!(
            parse_millis("2023-01-01T01:00:00.250+0100"),
            Some(1_672_531_200_250)
        );
        assert_eq!(
            parse_millis("2022-12-31T19:00:00-05:00"),
            Some(1_672_531_200_000)
        );
        assert_eq!(
            parse_millis("2024-02-29T12:00:00Z"),
            Some(1_709_208_000_000)
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "yesterday",
            "2023-01-01",
            "2023-13-01T00:00:00.000+0000",
            "2023-01-01T00:00:00.+0000",
            "2023-01-01T00:00:00.000+00",
            "2023-01-01T00:00:00.000",
            "２０２３-01-01T00:00:00.000+0000",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }
}
