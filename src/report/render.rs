//! `report.md` and a single-file `report.html` from a [`RunResult`]: the summary sections, then the
//! plots (`plots/*.svg` and `plots/*.png` beside them).
//!
//! The HTML is self-contained: styles inline, SVG inline (without its `xmlns` URL, which HTML does
//! not need), PNG as `data:` URIs, no script, no external URL. Every piece of text from the run
//! (scenario name, thresholds, end detail, host) is escaped.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::files::RunResult;
use super::plots::{self, Rendered};
use super::table::escape_html;
use super::text::{headline, sections};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw plot {name}: {message}")]
    Plot { name: String, message: String },
}

/// Paths written by [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `plots/<name>.svg` and `.png`.
    pub plots: Vec<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io {
        path: path.to_owned(),
        source,
    }
}

fn about(r: &RunResult) -> Vec<(&'static str, String)> {
    let m = &r.manifest;
    vec![
        (
            "Scenario",
            format!("{} (seed {})", m.scenario.name, m.scenario.seed),
        ),
        (
            "Target",
            format!(
                "{}{}{}; CPU/memory from {:?}",
                m.target.kind,
                m.target
                    .version
                    .as_ref()
                    .map_or(String::new(), |v| format!(" {v}")),
                m.target
                    .address
                    .as_ref()
                    .map_or(String::new(), |a| format!(" at {a}")),
                m.target.probe
            )
            .to_lowercase(),
        ),
        (
            "Harness host",
            format!(
                "{} ({}, {} cores, kernel {})",
                m.host.hostname, m.host.cpu_model, m.host.cores, m.host.kernel
            ),
        ),
        ("Tool", format!("{} {}", m.tool.name, m.tool.version)),
        (
            "Bandwidth accounting",
            format!(
                "IP ({:?}) + UDP + payload + {} B L2 per packet",
                m.wire.ip, m.wire.l2_bytes
            ),
        ),
        (
            "Shards",
            if m.shards.is_empty() {
                "1 (unsharded)".to_owned()
            } else {
                m.shards
                    .iter()
                    .map(|s| format!("{}/{} on {}", s.index, s.count, s.hostname))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ]
}

/// Renders the plots into `dir/plots/` and writes `dir/report.md` and `dir/report.html`.
pub fn write_report(result: &RunResult, dir: &Path) -> Result<ReportFiles, RenderError> {
    let plot_dir = dir.join("plots");
    fs::create_dir_all(&plot_dir).map_err(io(&plot_dir))?;
    let mut rendered = Vec::new();
    let mut plot_files = Vec::new();
    for figure in plots::figures(result) {
        let png_path = plot_dir.join(format!("{}.png", figure.name));
        let r = plots::render(&figure, &png_path).map_err(|message| RenderError::Plot {
            name: figure.name.to_owned(),
            message,
        })?;
        let svg_path = plot_dir.join(format!("{}.svg", figure.name));
        fs::write(&svg_path, &r.svg).map_err(io(&svg_path))?;
        plot_files.push(svg_path);
        plot_files.push(png_path);
        rendered.push(r);
    }
    let markdown = dir.join("report.md");
    fs::write(&markdown, to_markdown(result, &rendered)).map_err(io(&markdown))?;
    let html = dir.join("report.html");
    fs::write(&html, to_html(result, &rendered)).map_err(io(&html))?;
    Ok(ReportFiles {
        markdown,
        html,
        plots: plot_files,
    })
}

/// The Markdown report; plots are linked from `plots/`.
pub fn to_markdown(result: &RunResult, plots: &[Rendered]) -> String {
    let mut out = format!("# {}\n\n", headline(result));
    for (k, v) in about(result) {
        out += &format!("- **{k}:** {}\n", v.replace('|', "\\|"));
    }
    for s in sections(result) {
        out += &format!("\n## {}\n\n{}", s.title, s.table.to_markdown());
    }
    out += "\n## Plots\n";
    for p in plots {
        out += &format!("\n{}\n\n![{}](plots/{}.svg)\n", p.caption, p.name, p.name);
    }
    out
}

/// Inline SVG for HTML: drop the XML namespace URL (HTML parsers place `<svg>` in it anyway).
fn inline_svg(svg: &str) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace(" xmlns='http://www.w3.org/2000/svg'", "")
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}\
figure{margin:1em 0 2em}figcaption{color:#555;margin-bottom:0.3em}svg{max-width:100%;height:auto}";

/// The single-file HTML report.
pub fn to_html(result: &RunResult, plots: &[Rendered]) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out += &format!(
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape_html(&result.summary.scenario)
    );
    out += &format!("<h1>{}</h1>\n<ul>\n", escape_html(&headline(result)));
    for (k, v) in about(result) {
        out += &format!("<li><b>{}:</b> {}</li>\n", escape_html(k), escape_html(&v));
    }
    out += "</ul>\n";
    for s in sections(result) {
        out += &format!("<h2>{}</h2>\n{}", escape_html(s.title), s.table.to_html());
    }
    out += "<h2>Plots</h2>\n";
    for p in plots {
        out += &format!(
            "<figure id=\"{name}\">\n<figcaption>{cap} — <a download=\"{name}.png\" \
             href=\"data:image/png;base64,{png}\">PNG</a></figcaption>\n{svg}\n</figure>\n",
            name = escape_html(p.name),
            cap = escape_html(p.caption),
            png = STANDARD.encode(&p.png),
            svg = inline_svg(&p.svg),
        );
    }
    out + "</body>\n</html>\n"
}
