//! Times as the person reads them, in local time.

use crate::dom::now_ms;

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAY_MS: u64 = 24 * 3600 * 1000;

fn date(ms: u64) -> js_sys::Date {
    js_sys::Date::new(&(ms as f64).into())
}

/// "14:05".
pub fn clock(ms: u64) -> String {
    let d = date(ms);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The calendar day, for comparing.
pub fn day(ms: u64) -> (u32, u32, u32) {
    let d = date(ms);
    (d.get_full_year(), d.get_month(), d.get_date())
}

/// "14:05" today, "3 Mar" otherwise (the chat list).
pub fn short_time(ms: u64) -> String {
    if day(ms) == day(now_ms()) {
        return clock(ms);
    }
    let d = date(ms);
    format!("{} {}", d.get_date(), MONTHS[(d.get_month() as usize).min(11)])
}

/// "Today", "Yesterday" or "3 Mar 2026" (day separators in a chat).
pub fn day_label(ms: u64) -> String {
    let now = now_ms();
    if day(ms) == day(now) {
        return "Today".into();
    }
    if day(ms) == day(now.saturating_sub(DAY_MS)) {
        return "Yesterday".into();
    }
    let d = date(ms);
    format!("{} {} {}", d.get_date(), MONTHS[(d.get_month() as usize).min(11)], d.get_full_year())
}

/// "5s", "30s", "4m", "1h", "7d": a short span, rounded down to its largest unit.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// "5 minutes", "3 hours", "2 days" (how long until something happens), rounded up.
pub fn duration_words(ms: u64) -> String {
    let minutes = ms.div_ceil(60_000);
    let (n, unit) = match minutes {
        0..60 => (minutes, "minute"),
        60..1440 => (minutes.div_ceil(60), "hour"),
        _ => (minutes.div_ceil(1440), "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
