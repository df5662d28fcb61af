//! The Overview's charts: syncs per hour, API calls per day against the quota, failed runs by cause.
//! Drawn as SVG markup on the server (the page carries them with JavaScript off), each with a title, a
//! one-sentence description and its numbers in a table.

use crate::error::AppError;
use cosell::domain::charts::Chart;
use cosell::domain::numbers::thousands;
use leptos::prelude::*;

#[server(endpoint = "overview_charts")]
pub async fn overview_charts() -> Result<Vec<Chart>, AppError> {
    use crate::auth::server::{context, internal, require};
    require(cosell::domain::Access::Viewer).await?;
    let ctx = context()?;
    ctx.engine.charts().await.map_err(internal)
}

/// The charts, one figure each, in a grid.
#[component]
pub fn Charts(charts: Vec<Chart>) -> impl IntoView {
    view! {
        <section class="charts" aria-label="Charts" data-testid="charts">
            {charts.into_iter().map(|chart| view! { <ChartFigure chart/> }).collect_view()}
        </section>
    }
}

#[component]
fn ChartFigure(chart: Chart) -> impl IntoView {
    let drawn = svg(&chart);
    // Columns for the series that hold something (an empty column says nothing).
    let shown: Vec<usize> = (0..chart.series.len())
        .filter(|s| chart.series[*s].values.iter().any(|v| *v > 0))
        .collect();
    let legend: Vec<(String, String)> = shown
        .iter()
        .map(|s| (chart.series[*s].key.clone(), chart.series[*s].label.clone()))
        .collect();
    let Chart {
        key,
        title,
        summary,
        limit,
        table,
        ..
    } = chart;
    // The hourly chart's table is by day.
    let when = if key == "syncs" {
        "Day (UTC)"
    } else {
        "When (UTC)"
    };
    view! {
        <figure class="card chart" data-chart=key.clone()>
            <figcaption><h2>{title.clone()}</h2></figcaption>
            <div class="plot" inner_html=drawn></div>
            {(!legend.is_empty()).then(|| view! {
                <ul class="legend" aria-hidden="true">
                    {legend.iter().map(|(key, label)| view! {
                        <li><span class=format!("swatch s-{key}")></span>{label.clone()}</li>
                    }).collect_view()}
                </ul>
            })}
            <details>
                <summary>"The numbers"</summary>
                {if table.is_empty() {
                    view! { <p class="muted">{summary.clone()}</p> }.into_any()
                } else {
                    view! {
                        <table class="list numbers">
                            <caption>{title}</caption>
                            <thead><tr>
                                <th scope="col">{when}</th>
                                {legend.iter().map(|(_, label)| view! { <th scope="col">{label.clone()}</th> }).collect_view()}
                                <th scope="col">"Total"</th>
                                {limit.as_ref().map(|_| view! { <th scope="col">"Budget"</th> })}
                            </tr></thead>
                            <tbody>
                                {table.into_iter().map(|row| {
                                    let total: i64 = row.values.iter().sum();
                                    view! {
                                        <tr>
                                            <th scope="row" data-label=when>{row.label}</th>
                                            {shown.iter().zip(&legend).map(|(s, (_, label))| view! {
                                                <td data-label=label.clone()>{row.values[*s]}</td>
                                            }).collect_view()}
                                            <td data-label="Total">{total}</td>
                                            {limit.as_ref().map(|l| view! { <td data-label="Budget">{l.value}</td> })}
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </details>
        </figure>
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 26.0;

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 1): the top of the y axis.
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= n {
                return m * step;
            }
        }
        step *= 10;
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the y axis tops, and whether the limit is drawn on it: a limit more than twice the tallest
/// bar would flatten the bars into the axis, so it is named above the plot instead of drawn.
fn scale(chart: &Chart) -> (i64, bool) {
    let bars = nice_ceiling(chart.totals().into_iter().max().unwrap_or(0));
    match &chart.limit {
        Some(limit) if limit.value <= bars * 2 => (nice_ceiling(bars.max(limit.value)), true),
        _ => (bars, false),
    }
}

/// The chart as SVG markup: stacked bars (each with its numbers as a tooltip), a y axis from zero, the
/// limit as a dashed line, ticks under the buckets that carry one. Labelled by its title and summary.
pub fn svg(chart: &Chart) -> String {
    use std::fmt::Write;
    let (top, limit_on_scale) = scale(chart);
    let max = top as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = chart.buckets.len().max(1);
    let band = plot_w / n as f64;
    let bar = (band * 0.8).max(1.0);
    let y = |v: f64| TOP + plot_h - v * plot_h / max;
    let id = format!("chart-{}", escape(&chart.key));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&chart.title),
        escape(&chart.summary)
    );
    // Zero, the top, and the middle when it is a whole number.
    let mut marks = vec![0, top];
    if top % 2 == 0 {
        marks.push(top / 2);
    }
    for v in marks {
        let at = y(v as f64);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 5.0,
            thousands(v)
        );
    }
    // One path per series, a rectangle per bucket that holds something: a tenth of the markup of a
    // <rect> each, which matters at 168 hours × 6 series. The numbers are in the table.
    let mut stacked = vec![0.0; n];
    for series in &chart.series {
        let mut d = String::new();
        for (i, v) in series.values.iter().enumerate() {
            if *v <= 0 {
                continue;
            }
            let x = LEFT + i as f64 * band + (band - bar) / 2.0;
            let (bottom, top) = (y(stacked[i]), y(stacked[i] + *v as f64));
            let _ = write!(d, "M{x:.1} {bottom:.1}V{top:.1}h{bar:.1}V{bottom:.1}Z");
            stacked[i] += *v as f64;
        }
        if !d.is_empty() {
            let _ = write!(
                s,
                r#"<path class="bar s-{}" d="{d}"><title>{}</title></path>"#,
                escape(&series.key),
                escape(&series.label)
            );
        }
    }
    for (i, bucket) in chart.buckets.iter().enumerate() {
        if let Some(tick) = &bucket.tick {
            // Under the bucket's middle; the first and last kept inside the picture.
            let (at, anchor) = match i {
                0 => (LEFT, "start"),
                i if i == n - 1 => (WIDTH - RIGHT, "end"),
                _ => (LEFT + (i as f64 + 0.5) * band, "middle"),
            };
            let _ = write!(
                s,
                r#"<text class="axis" x="{at:.2}" y="{}" text-anchor="{anchor}">{}</text>"#,
                HEIGHT - 6.0,
                escape(tick)
            );
        }
    }
    if let Some(limit) = &chart.limit {
        let label = escape(&limit.label);
        if limit_on_scale {
            let at = y(limit.value as f64);
            let _ = write!(
                s,
                r#"<line class="limit" x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}"/><text class="limit" x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
                WIDTH - RIGHT,
                WIDTH - RIGHT - 4.0,
                at + 16.0,
            );
        } else {
            let _ = write!(
                s,
                r#"<text class="limit" x="{}" y="{TOP}" text-anchor="end">{label}, far above this scale</text>"#,
                WIDTH - RIGHT,
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosell::domain::charts::{Bucket, Limit, Series};

    fn chart(values: Vec<i64>, limit: Option<i64>) -> Chart {
        Chart {
            key: "calls-partner_center".into(),
            title: "API calls <per day>".into(),
            summary: "3 calls & more".into(),
            buckets: (0..values.len())
                .map(|i| Bucket {
                    label: format!("day {i}"),
                    tick: (i == 0).then(|| "first".to_string()),
                })
                .collect(),
            series: vec![Series {
                key: "calls".into(),
                label: "API calls".into(),
                values,
            }],
            limit: limit.map(|value| Limit {
                label: format!("Daily quota: {value}"),
                value,
            }),
            table: Vec::new(),
        }
    }

    #[test]
    fn the_axis_tops_at_a_round_number_at_or_above_the_peak() {
        assert_eq!(
            [0, 1, 3, 7, 10, 11, 180, 10_000, 10_001].map(nice_ceiling),
            [1, 1, 5, 10, 10, 20, 200, 10_000, 20_000]
        );
    }

    #[test]
    fn bars_are_drawn_for_the_buckets_that_hold_something_with_their_numbers() {
        let drawn = svg(&chart(vec![0, 2, 0, 1], Some(4)));
        assert!(drawn.starts_with("<svg"));
        assert!(drawn.contains(
            "<title id=\"chart-calls-partner_center-title\">API calls &lt;per day&gt;</title>"
        ));
        assert!(
            drawn
                .contains("<desc id=\"chart-calls-partner_center-desc\">3 calls &amp; more</desc>")
        );
        // One path for the series, a rectangle for each of the two buckets with calls.
        assert_eq!(drawn.matches("<path").count(), 1);
        assert_eq!(drawn.matches('Z').count(), 2);
        assert!(
            drawn.contains(r#"<path class="bar s-calls" d="M"#),
            "{drawn}"
        );
        assert!(drawn.contains("<title>API calls</title>"));
        // The limit line, at the top of a 5-high axis (two thirds of the way up, at 4).
        assert!(
            drawn.contains(r#"<line class="limit" x1="60" x2="712" y1="46.0" y2="46.0"/>"#),
            "{drawn}"
        );
        assert!(drawn.contains(">Daily quota: 4</text>"));
        assert!(drawn.contains(r#">5</text>"#), "the axis tops at 5");
        // A quota far above the bars is named, not drawn (the bars would be flat).
        let low = svg(&chart(vec![0, 2, 0, 1], Some(10_000)));
        assert!(!low.contains("<line class=\"limit\""));
        assert!(
            low.contains(">Daily quota: 10000, far above this scale</text>"),
            "{low}"
        );
        assert!(
            low.contains(r#">2</text>"#),
            "the axis tops at the tallest bar"
        );
        assert_eq!(drawn.matches(">first</text>").count(), 1);
        // Nothing to show: an empty axis, no bars.
        assert_eq!(svg(&chart(vec![0; 4], None)).matches("<path").count(), 0);
    }
}
