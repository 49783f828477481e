//! A check's value over time as server-rendered SVG, as Seyren drew Graphite's graphs: the
//! value, its warn and error lines, and its state changes marked. One pass over the values;
//! each pixel column draws the range its values span, so a week of 10 s values (60,480) makes
//! a path of at most one segment per column, and the page stays small.

use std::fmt::Write as _;

use crate::notify::Level;

use super::html::escape;

pub struct Chart<'a> {
    /// What the chart is of, for people and screen readers.
    pub title: &'a str,
    /// (time, value) oldest first; `None` where the check had no data.
    pub values: &'a [(i64, Option<f64>)],
    pub from_us: i64,
    pub to_us: i64,
    pub warn: Option<f64>,
    pub error: Option<f64>,
    /// (time, level changed to).
    pub changes: &'a [(i64, Level)],
    pub width: u32,
    pub height: u32,
}

const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;

#[derive(Clone, Copy)]
struct Column {
    min: f64,
    max: f64,
    /// Whether it also held values without data.
    no_data: bool,
    any: bool,
}

const EMPTY: Column = Column {
    min: f64::INFINITY,
    max: f64::NEG_INFINITY,
    no_data: false,
    any: false,
};

/// Round tick steps: 1, 2 or 5 times a power of ten.
fn step(span: f64, ticks: f64) -> f64 {
    let raw = span / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.001..1e6).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

pub fn render(c: &Chart<'_>) -> String {
    let width = f64::from(c.width.max(200));
    let height = f64::from(c.height.max(120));
    let plot_w = width - LEFT - RIGHT;
    let plot_h = height - TOP - BOTTOM;
    let span = (c.to_us - c.from_us).max(1) as f64;
    let columns = plot_w.floor().max(1.0) as usize;
    let mut cols = vec![EMPTY; columns];
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut last = None;
    for &(t, v) in c.values {
        if t < c.from_us || t > c.to_us {
            continue;
        }
        let i = (((t - c.from_us) as f64 / span) * columns as f64) as usize;
        let col = &mut cols[i.min(columns - 1)];
        match v {
            Some(v) if v.is_finite() => {
                col.min = col.min.min(v);
                col.max = col.max.max(v);
                col.any = true;
                lo = lo.min(v);
                hi = hi.max(v);
                last = Some(v);
            }
            _ => col.no_data = true,
        }
    }
    for t in [c.warn, c.error].into_iter().flatten() {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo, hi) = (lo - pad, hi + pad);
    }
    let y_step = step(hi - lo, 4.0);
    let lo = (lo / y_step).floor() * y_step;
    let hi = (hi / y_step).ceil() * y_step;
    let y = |v: f64| TOP + plot_h - (v - lo) / (hi - lo) * plot_h;
    let x_of = |t: i64| LEFT + (t - c.from_us) as f64 / span * plot_w;

    let mut s = String::with_capacity(16 * 1024 + columns * 24);
    let title = escape(c.title);
    let summary = match (last, lo, hi) {
        (Some(l), _, _) => format!("latest {}", number(l)),
        _ => "no values in this range".to_owned(),
    };
    let _ = write!(
        s,
        "<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {width} {height}' \
         width='{width}' height='{height}' role='img' aria-label='{title}: {summary}'>\
         <title>{title}: {summary}</title>"
    );
    // The y grid and its labels.
    let mut v = lo;
    while v <= hi + y_step / 2.0 {
        let yy = y(v);
        let _ = write!(
            s,
            "<line class='grid' x1='{LEFT}' x2='{:.1}' y1='{yy:.1}' y2='{yy:.1}'/>\
             <text class='axis' x='{:.1}' y='{:.1}' text-anchor='end'>{}</text>",
            width - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            number(v)
        );
        v += y_step;
    }
    // The x axis: hours for a day or less, days beyond.
    let hour = 3_600_000_000i64;
    let t_step = [
        hour / 4,
        hour / 2,
        hour,
        2 * hour,
        3 * hour,
        6 * hour,
        12 * hour,
        24 * hour,
        48 * hour,
    ]
    .into_iter()
    .find(|st| span / (*st as f64) <= 8.0)
    .unwrap_or(7 * 24 * hour);
    let days = span > 36.0 * hour as f64;
    let mut t = (c.from_us / t_step + 1) * t_step;
    while t < c.to_us {
        let xx = x_of(t);
        let label = chrono::DateTime::from_timestamp_micros(t).map_or(String::new(), |d| {
            if days {
                d.format("%a %d").to_string()
            } else {
                d.format("%H:%M").to_string()
            }
        });
        let _ = write!(
            s,
            "<line class='grid' x1='{xx:.1}' x2='{xx:.1}' y1='{TOP}' y2='{:.1}'/>\
             <text class='axis' x='{xx:.1}' y='{:.1}' text-anchor='middle'>{label}</text>",
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
        t += t_step;
    }
    // Thresholds, named in words as well as by colour.
    for (class, name, value) in [("warn", "warn", c.warn), ("error", "error", c.error)] {
        if let Some(v) = value {
            let yy = y(v);
            let _ = write!(
                s,
                "<line class='threshold {class}' x1='{LEFT}' x2='{:.1}' y1='{yy:.1}' y2='{yy:.1}'/>\
                 <text class='threshold-label {class}' x='{:.1}' y='{:.1}' text-anchor='end'>{name} {}</text>",
                width - RIGHT,
                width - RIGHT - 2.0,
                yy - 3.0,
                number(v)
            );
        }
    }
    // The value: per column, the range of its values, joined column to column.
    s.push_str("<path class='value' d='");
    let mut drawing = false;
    let mut no_data = Vec::new();
    for (i, col) in cols.iter().enumerate() {
        let xx = LEFT + i as f64 + 0.5;
        if col.no_data {
            no_data.push(xx);
        }
        if !col.any {
            drawing = false;
            continue;
        }
        let (a, b) = (y(col.max), y(col.min));
        let _ = write!(s, "{}{xx:.1},{a:.1}", if drawing { 'L' } else { 'M' });
        if (b - a).abs() >= 0.5 {
            let _ = write!(s, "L{xx:.1},{b:.1}");
        }
        drawing = true;
    }
    s.push_str("'/>");
    // No data, as a strip under the plot.
    if !no_data.is_empty() {
        s.push_str("<path class='no-data' d='");
        for xx in no_data {
            let _ = write!(s, "M{xx:.1},{:.1}v4", TOP + plot_h + 1.0);
        }
        s.push_str("'><title>no data</title></path>");
    }
    // State changes: a line and the level's symbol, with the time for a pointer's hover.
    for &(t, level) in c.changes {
        if t < c.from_us || t > c.to_us {
            continue;
        }
        let xx = x_of(t);
        let when = crate::store::rfc3339(t);
        let _ = write!(
            s,
            "<g class='change {l}'><title>{l} from {when}</title>\
             <line x1='{xx:.1}' x2='{xx:.1}' y1='{TOP}' y2='{:.1}'/>\
             <text x='{xx:.1}' y='{:.1}' text-anchor='middle'>{}</text></g>",
            TOP + plot_h,
            TOP + plot_h + 30.0,
            super::html::symbol(level),
            l = level.as_str(),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_of_ten_second_values_draws_one_segment_per_column_with_lines_and_marks() {
        let from = 1_700_000_000_000_000i64;
        let values: Vec<(i64, Option<f64>)> = (0..60_480)
            .map(|i| {
                let t = from + i * 10_000_000;
                let v = if i % 1000 == 7 {
                    None
                } else {
                    Some((i % 97) as f64)
                };
                (t, v)
            })
            .collect();
        let to = from + 7 * 86_400_000_000;
        let svg = render(&Chart {
            title: "<script>alert(1)</script>",
            values: &values,
            from_us: from,
            to_us: to,
            warn: Some(80.0),
            error: Some(120.0),
            changes: &[
                (from + 3_600_000_000, Level::Error),
                (from + 7_200_000_000, Level::Ok),
            ],
            width: 800,
            height: 240,
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<script>"), "the title is escaped");
        assert!(
            svg.contains("warn 80") && svg.contains("error 120"),
            "{svg}"
        );
        assert!(svg.contains("class='change ERROR'") && svg.contains("class='change OK'"));
        assert!(svg.contains("class='no-data'"));
        let path = svg
            .split("class='value' d='")
            .nth(1)
            .and_then(|p| p.split('\'').next())
            .unwrap_or_default();
        let points = path.matches(['M', 'L']).count();
        assert!(
            (700..=1600).contains(&points),
            "about two points per column, got {points}"
        );
        assert!(svg.len() < 64 * 1024, "{} bytes", svg.len());
    }

    #[test]
    fn no_values_still_draws_axes_and_thresholds() {
        let svg = render(&Chart {
            title: "empty",
            values: &[],
            from_us: 0,
            to_us: 3_600_000_000,
            warn: Some(0.5),
            error: None,
            changes: &[],
            width: 400,
            height: 200,
        });
        assert!(svg.contains("no values in this range") && svg.contains("warn 0.5"));
    }
}
