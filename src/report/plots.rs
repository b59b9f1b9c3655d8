//! Plots of a run, drawn with plotters into SVG (inlined in report.html) and PNG (files, and data: URIs
//! in report.html).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`fonts/`, Bitstream Vera licence) through
//! plotters' `ab_glyph` feature, so rendering needs no system fonts and looks the same everywhere.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::files::RunResult;
use super::summary::merged;
use crate::measure::LatencyHistogram;

static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
/// Pixel size of every plot.
pub const SIZE: (u32, u32) = (960, 540);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a constant, valid TrueType file; a failure here would show as missing text
        // in every plot and is caught by the plot tests.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// (x, y) points in order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
}

/// A shaded x range (a run phase).
#[derive(Debug, Clone)]
pub struct Band {
    /// Legend text.
    pub label: &'static str,
    /// Start and end on the x axis.
    pub from: f64,
    pub to: f64,
    /// Colour (drawn translucent).
    pub color: RGBColor,
}

/// A 2-D line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Phase bands behind the lines.
    pub bands: Vec<Band>,
}

/// A figure: one or more charts stacked vertically, saved under `name`.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem (`cpu_memory`).
    pub name: &'static str,
    /// What it shows, for the report text.
    pub caption: &'static str,
    /// Stacked charts.
    pub charts: Vec<Chart>,
}

/// A rendered figure.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The figure.
    pub name: &'static str,
    /// Caption.
    pub caption: &'static str,
    /// SVG document.
    pub svg: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const RED_: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// The palette, for figures drawn in sibling modules.
pub mod colors {
    use plotters::style::RGBColor;
    pub const BLUE: RGBColor = super::BLUE_;
    pub const ORANGE: RGBColor = super::ORANGE;
    pub const GREEN: RGBColor = super::GREEN_;
    pub const RED: RGBColor = super::RED_;
    pub const PURPLE: RGBColor = super::PURPLE;
}

fn bands(r: &RunResult) -> Vec<Band> {
    let p = &r.manifest.scenario.phases;
    let end = r.series.last().map_or(p.end_s, |row| (row.t_s + 1) as f64);
    let clip = |x: f64| x.min(end);
    let steady = &r.summary.steady;
    vec![
        Band {
            label: "ramp",
            from: 0.0,
            to: clip(p.join_end_s),
            color: ORANGE,
        },
        Band {
            label: "steady (averaged)",
            from: clip(steady.start_s as f64),
            to: clip(steady.end_s as f64),
            color: GREEN_,
        },
        Band {
            label: "leave",
            from: clip(p.steady_end_s),
            to: clip(p.end_s),
            color: BLUE_,
        },
    ]
}

/// A step CDF of a histogram in milliseconds; `None` when it is empty.
pub fn cdf_line(label: &str, h: &LatencyHistogram, color: RGBColor) -> Option<Line> {
    (!h.is_empty()).then(|| Line {
        label: format!("{label} (n={})", h.count()),
        // Drawn as steps: a straight line between buckets would invent values in between.
        points: h
            .cdf()
            .into_iter()
            .scan(0.0, |below, (us, f)| {
                let x = us as f64 / 1000.0;
                let step = [(x, *below), (x, f)];
                *below = f;
                Some(step)
            })
            .flatten()
            .collect(),
        color,
    })
}

/// The figures of a run: server CPU and memory, bandwidth, join and one-way latency CDFs, jitter
/// CDFs per track kind, and media loss per second.
pub fn figures(r: &RunResult) -> Vec<Figure> {
    let t = |row: &crate::measure::Snapshot| row.t_s as f64;
    let series = |f: &dyn Fn(&crate::measure::Snapshot) -> Option<f64>| -> Vec<(f64, f64)> {
        r.series
            .iter()
            .filter_map(|row| Some((t(row), f(row)?)))
            .collect()
    };
    let b = bands(r);
    let time = "time since start (s)".to_owned();
    // A job load has no media: its figure, and the target's CPU/memory when they were probed.
    if let Some(figures) = super::jobload::figures(r) {
        return figures;
    }
    let mut out = vec![
        Figure {
            name: "cpu_memory",
            caption: "Target CPU (cores) and resident memory over time; shaded: ramp, steady window, leave",
            charts: vec![
                Chart {
                    title: "Target CPU".into(),
                    x_desc: time.clone(),
                    y_desc: "cores".into(),
                    lines: vec![Line {
                        label: "CPU".into(),
                        points: series(&|r| r.server_cpu_cores),
                        color: RED_,
                    }],
                    bands: b.clone(),
                },
                Chart {
                    title: "Target memory (RSS)".into(),
                    x_desc: time.clone(),
                    y_desc: "MB".into(),
                    lines: vec![Line {
                        label: "RSS".into(),
                        points: series(&|r| r.server_rss_bytes.map(|b| b as f64 / 1e6)),
                        color: PURPLE,
                    }],
                    bands: b.clone(),
                },
            ],
        },
        Figure {
            name: "bandwidth",
            caption: "Target bandwidth on the wire (IP + UDP + payload + L2 overhead), in and out",
            charts: vec![Chart {
                title: "Target bandwidth".into(),
                x_desc: time.clone(),
                y_desc: "Mbit/s".into(),
                lines: vec![
                    Line {
                        label: "in (to target)".into(),
                        points: series(&|r| Some(r.bw_in_bps / 1e6)),
                        color: BLUE_,
                    },
                    Line {
                        label: "out (from target)".into(),
                        points: series(&|r| Some(r.bw_out_bps / 1e6)),
                        color: ORANGE,
                    },
                ],
                bands: b.clone(),
            }],
        },
    ];
    let join = r
        .histograms
        .get("join.first_media")
        .cloned()
        .unwrap_or_default();
    let connect = r
        .histograms
        .get("join.ice_connected")
        .cloned()
        .unwrap_or_default();
    out.push(Figure {
        name: "join_cdf",
        caption: "Join latency CDF from the scheduled join time",
        charts: vec![Chart {
            title: "Join latency (CDF)".into(),
            x_desc: "ms after the scheduled join".into(),
            y_desc: "fraction of sessions".into(),
            lines: [
                cdf_line("ICE connected", &connect, BLUE_),
                cdf_line("first media", &join, ORANGE),
            ]
            .into_iter()
            .flatten()
            .collect(),
            bands: Vec::new(),
        }],
    });
    let mut latency_lines = Vec::new();
    let mut jitter_lines = Vec::new();
    for (kind, color) in [("audio", BLUE_), ("screen", ORANGE), ("video", GREEN_)] {
        if let Some(h) = r.histograms.get(&format!("latency.{kind}")) {
            latency_lines.extend(cdf_line(kind, h, color));
        }
        if let Some(h) = r.histograms.get(&format!("jitter.{kind}")) {
            jitter_lines.extend(cdf_line(kind, h, color));
        }
    }
    if latency_lines.len() > 1 {
        latency_lines.extend(cdf_line("all", &merged(&r.histograms, "latency"), RED_));
    }
    out.push(Figure {
        name: "latency_cdf",
        caption: "One-way media latency CDF (intended send time → receipt), per track kind",
        charts: vec![Chart {
            title: "One-way latency (CDF)".into(),
            x_desc: "ms".into(),
            y_desc: "fraction of packets".into(),
            lines: latency_lines,
            bands: Vec::new(),
        }],
    });
    let mut loss_lines = Vec::new();
    for (kind, color) in [("audio", BLUE_), ("screen", ORANGE), ("video", GREEN_)] {
        if let Some(h) = r.histograms.get(&format!("loss.{kind}")) {
            // Stored in parts per million; plotted in percent.
            loss_lines.extend(cdf_line(kind, h, color).map(|mut l| {
                l.points.iter_mut().for_each(|p| p.0 /= 10.0);
                l
            }));
        }
    }
    out.push(Figure {
        name: "track_quality",
        caption: "Per-stream jitter and loss distributions per track kind, and media loss per second",
        charts: vec![
            Chart {
                title: "Loss per received stream (CDF)".into(),
                x_desc: "% of the stream's packets lost".into(),
                y_desc: "fraction of stream-seconds".into(),
                lines: loss_lines,
                bands: Vec::new(),
            },
            Chart {
                title: "Jitter per received stream (CDF)".into(),
                x_desc: "ms".into(),
                y_desc: "fraction of stream-seconds".into(),
                lines: jitter_lines,
                bands: Vec::new(),
            },
            Chart {
                title: "Media loss".into(),
                x_desc: time,
                y_desc: "% of expected packets".into(),
                lines: vec![Line {
                    label: "loss".into(),
                    points: series(&|r| (r.expected > 0).then(|| 100.0 * r.loss())),
                    color: RED_,
                }],
                bands: b,
            },
        ],
    });
    if r.summary.jobs.started > 0 {
        let start = r.histograms.get("job.start").cloned().unwrap_or_default();
        let total = r.histograms.get("job.total").cloned().unwrap_or_default();
        let secs = |l: Option<Line>| {
            l.map(|mut l| {
                l.points.iter_mut().for_each(|p| p.0 /= 1000.0);
                l
            })
        };
        out.push(Figure {
            name: "jobs",
            caption: "Recording/transcription jobs: running over time, and job latency CDFs",
            charts: vec![
                Chart {
                    title: "Running jobs".into(),
                    x_desc: "time since start (s)".into(),
                    y_desc: "jobs".into(),
                    lines: vec![Line {
                        label: "running".into(),
                        points: series(&|r| Some(r.jobs_running as f64)),
                        color: PURPLE,
                    }],
                    bands: bands(r),
                },
                Chart {
                    title: "Job latency (CDF)".into(),
                    x_desc: "s after submission".into(),
                    y_desc: "fraction of jobs".into(),
                    lines: [
                        secs(cdf_line("running", &start, BLUE_)),
                        secs(cdf_line("done", &total, ORANGE)),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                    bands: Vec::new(),
                },
            ],
        });
    }
    out
}

fn range(lines: &[Line], pick: impl Fn(&(f64, f64)) -> f64, floor_zero: bool) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in lines.iter().flat_map(|l| l.points.iter()) {
        lo = lo.min(pick(p));
        hi = hi.max(pick(p));
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if floor_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    (lo, hi + (hi - lo) * 0.05)
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (x0, mut x1) = range(&chart.lines, |p| p.0, true);
    for b in &chart.bands {
        x1 = x1.max(b.to);
    }
    let (_, y1) = range(&chart.lines, |p| p.1, true);
    let mut c = ChartBuilder::on(area)
        .caption(&chart.title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc(&chart.x_desc)
        .y_desc(&chart.y_desc)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for band in chart.bands.iter().filter(|b| b.to > b.from) {
        let color = band.color.mix(0.12);
        c.draw_series(std::iter::once(Rectangle::new(
            [(band.from, 0.0), (band.to, y1)],
            color.filled(),
        )))
        .map_err(err)?
        .label(band.label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
    }
    for line in &chart.lines {
        let color = line.color;
        c.draw_series(LineSeries::new(
            line.points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(line.label.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    if chart.lines.iter().all(|l| l.points.is_empty()) {
        area.draw(&Text::new(
            "not measured in this run",
            (
                area.dim_in_pixel().0 as i32 / 2 - 110,
                area.dim_in_pixel().1 as i32 / 2,
            ),
            (FAMILY, 18),
        ))
        .map_err(err)?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((figure.charts.len().max(1), 1));
    for (panel, chart) in panels.iter().zip(&figure.charts) {
        draw_chart(panel, chart)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Renders a figure to SVG text and to a PNG file at `png_path`, returning both.
pub fn render(figure: &Figure, png_path: &Path) -> Result<Rendered, String> {
    register_font();
    let size = (
        SIZE.0,
        SIZE.1 * figure.charts.len().max(1) as u32 * 3 / 4 + SIZE.1 / 4,
    );
    let mut svg = String::new();
    draw_figure(
        SVGBackend::with_string(&mut svg, size).into_drawing_area(),
        figure,
    )?;
    draw_figure(
        BitMapBackend::new(png_path, size).into_drawing_area(),
        figure,
    )?;
    let png = std::fs::read(png_path).map_err(|e| format!("{}: {e}", png_path.display()))?;
    Ok(Rendered {
        name: figure.name,
        caption: figure.caption,
        svg,
        png,
    })
}
