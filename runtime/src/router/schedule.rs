//! Recurring maintenance windows: `"sat,sun 02:00-04:00 +00:00"`.

use chrono::{
    DateTime, Datelike, Duration as Span, FixedOffset, NaiveTime, Timelike, Utc, Weekday,
};

/// A weekly recurring time range in a fixed UTC offset.
#[derive(Clone, Debug, PartialEq)]
pub struct WeeklyWindow {
    /// Days on which the window starts, Monday = index 0.
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    offset: FixedOffset,
}

fn weekday(text: &str) -> Result<usize, String> {
    let day = match text.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        other => {
            return Err(format!(
                "{other:?} is not a weekday; use mon, tue, wed, thu, fri, sat, sun"
            ));
        }
    };
    Ok(day.num_days_from_monday() as usize)
}

fn time(text: &str) -> Result<NaiveTime, String> {
    if text == "24:00" {
        return NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(|| "24:00".to_owned());
    }
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| format!("{text:?} is not a time of day; write HH:MM (02:00, 23:30)"))
}

impl WeeklyWindow {
    /// Parses `DAYS HH:MM-HH:MM OFFSET`, e.g. `"mon-fri 22:00-02:00 +03:00"` (a window from
    /// 22:00 on each listed day to 02:00 the next morning). DAYS is `*` or a comma list of
    /// days and day ranges; OFFSET is optional (`+00:00`).
    pub fn parse(text: &str) -> Result<WeeklyWindow, String> {
        let hint = "write it like \"sat,sun 02:00-04:00 +00:00\"";
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days_text, range, offset_text) = match parts.as_slice() {
            [days, range] => (*days, *range, "+00:00"),
            [days, range, offset] => (*days, *range, *offset),
            _ => return Err(format!("{text:?}: {hint}")),
        };
        let mut days = [false; 7];
        if days_text == "*" {
            days = [true; 7];
        } else {
            for item in days_text.split(',') {
                match item.split_once('-') {
                    Some((from, to)) => {
                        let (from, to) = (weekday(from)?, weekday(to)?);
                        let mut day = from;
                        loop {
                            days[day] = true;
                            if day == to {
                                break;
                            }
                            day = (day + 1) % 7;
                        }
                    }
                    None => days[weekday(item)?] = true,
                }
            }
        }
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| format!("{range:?} is not a time range; {hint}"))?;
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(format!("{range:?} is empty: start and end are the same"));
        }
        let offset = DateTime::parse_from_str(
            &format!("2000-01-01T00:00:00{offset_text}"),
            "%Y-%m-%dT%H:%M:%S%:z",
        )
        .map(|time| *time.offset())
        .map_err(|_| format!("{offset_text:?} is not a UTC offset; write +00:00 or -05:30"))?;
        Ok(WeeklyWindow {
            days,
            start,
            end,
            offset,
        })
    }

    /// The window is open at `now`.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.offset);
        let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())
            .unwrap_or(NaiveTime::MIN);
        let today = local.weekday().num_days_from_monday() as usize;
        if self.start < self.end {
            self.days[today] && time >= self.start && time < self.end
        } else {
            // Past midnight: the evening part belongs to today, the morning part to the day
            // the window started on, yesterday.
            let yesterday = (local - Span::days(1)).weekday().num_days_from_monday() as usize;
            (self.days[today] && time >= self.start) || (self.days[yesterday] && time < self.end)
        }
    }
}
