//! The reproduced table rendered for people: two tables (totals, per-flow) as aligned text for the
//! terminal and as Markdown for `table.md`, with the notes that say how each figure was made, and a
//! per-flow plot (published against measured, by row) in SVG and PNG.

use std::path::Path;

use super::reproduce::{Reproduced, ReproducedRow};
use crate::report::plots::{Chart, Figure, Line, Rendered, render as render_plot};
use crate::report::table::{Table, bps, gigabytes, opt3};

fn signed(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:+.1}%"))
}

fn ran(r: &ReproducedRow) -> String {
    let m = &r.scaled.mix;
    let screen = if m.screen_calls() > 0 { " +screen" } else { "" };
    format!(
        "{}×{} U{}{screen}",
        m.calls(),
        m.users_per_call(),
        m.unmuted_per_call()
    )
}

fn cpu_measured(r: &ReproducedRow) -> String {
    let Some(m) = &r.measured else {
        return "–".into();
    };
    match (m.cpu_cores, m.cpu_pct_of_host) {
        (Some(c), Some(p)) => format!("{c:.3} ({p:.1}%)"),
        (Some(c), None) => format!("{c:.3}"),
        _ => "–".into(),
    }
}

/// With a value, "value (±x %)" against a reference.
fn with_diff(value: String, diff: Option<f64>) -> String {
    match diff {
        Some(d) => format!("{value} ({d:+.1}%)"),
        None => value,
    }
}

/// Published totals, measured totals and the model's prediction for the mix that ran.
pub fn totals(t: &Reproduced) -> Table {
    let mut table = Table::new([
        "Row",
        "Published mix",
        "Instance",
        "CPU",
        "Memory",
        "In / out",
        "Ran",
        "Scale",
        "CPU cores (% of host)",
        "Memory",
        "In (vs model)",
        "Out (vs model)",
        "Model in / out",
        "Status",
    ]);
    for r in &t.rows {
        let m = r.measured.as_ref();
        let d = &r.differences;
        table.row([
            r.row.to_string(),
            r.label.clone(),
            r.published.instance.clone(),
            r.published.cpu.clone(),
            r.published.memory.clone(),
            format!(
                "{} / {}",
                r.published.bandwidth_in, r.published.bandwidth_out
            ),
            ran(r),
            format!("{:.4}", r.scaled.effective_scale),
            cpu_measured(r),
            gigabytes(m.and_then(|m| m.memory_bytes)),
            with_diff(
                bps(m.and_then(|m| m.bandwidth_in_bps)),
                d.bandwidth_in_vs_model_pct,
            ),
            with_diff(
                bps(m.and_then(|m| m.bandwidth_out_bps)),
                d.bandwidth_out_vs_model_pct,
            ),
            format!(
                "{} / {}",
                bps(Some(r.predicted.bandwidth_in_bps)),
                bps(Some(r.predicted.bandwidth_out_bps))
            ),
            r.status.clone(),
        ]);
    }
    table
}

/// Per-flow rates: published (derived) against measured.
pub fn per_flow(t: &Reproduced) -> Table {
    let mut table = Table::new([
        "Row",
        "Published mix",
        "kbps/fwd audio: published",
        "measured",
        "diff",
        "Mbps/screen viewer: published",
        "measured",
        "diff",
        "vCPU/1000 fwd: published",
        "cores/1000 fwd: measured",
        "model vCPU/1000 fwd",
    ]);
    for r in &t.rows {
        let p = &r.published.per_flow;
        let m = r.measured.as_ref().map(|m| m.per_flow).unwrap_or_default();
        let d = &r.differences;
        let streams = (r.flows.forwarded_audio + r.flows.screen_viewers) as f64;
        let model = (streams > 0.0).then(|| r.predicted.busy_vcpus / streams * 1e3);
        table.row([
            r.row.to_string(),
            r.label.clone(),
            opt3(p.kbps_per_forwarded_audio),
            opt3(m.kbps_per_forwarded_audio),
            signed(d.kbps_per_forwarded_audio_pct),
            opt3(p.mbps_per_screen_viewer),
            opt3(m.mbps_per_screen_viewer),
            signed(d.mbps_per_screen_viewer_pct),
            opt3(p.cpu_per_1000_forwarded),
            opt3(m.cpu_per_1000_forwarded),
            opt3(model),
        ]);
    }
    table
}

fn check_line(t: &Reproduced) -> String {
    let c = t.bandwidth_check();
    format!(
        "Per-flow bandwidth within ±{}% of the published figures: {} of {} measured figures.",
        t.tolerance_pct, c.within, c.checked
    )
}

/// Terminal output.
pub fn to_text(t: &Reproduced) -> String {
    format!(
        "{family} table reproduced at scale {scale} ({n} rows)\n\n{totals}\n{per_flow}\n{check}\n",
        family = t.family,
        scale = t.scale,
        n = t.rows.len(),
        totals = totals(t).to_text(),
        per_flow = per_flow(t).to_text(),
        check = check_line(t),
    )
}

/// `table.md`: both tables, how they were made, and the plot.
pub fn to_markdown(t: &Reproduced, plot: Option<&str>) -> String {
    let machine = t.machine.as_ref().map_or("unknown".to_owned(), |h| {
        format!(
            "{} ({} cores, {}, {})",
            h.cpu_model, h.cores, h.kernel, h.os
        )
    });
    let mut out = format!(
        "# The {family} benchmark table, reproduced\n\n\
         Regenerate with:\n\n```sh\n{command}\n```\n\n\
         - Published table: `{table}` (published {published}; {versions}).\n\
         - Published media: {pmedia}.\n\
         - Media here: {media}.\n\
         - Scale: {scale} of the published sessions (each row's effective scale is in the Scale \
         column: calls are scaled while at least one is left, then the single call shrinks).\n\
         - Machine: {machine}. The target is what `callsbench run` loaded (the embedded reference \
         SFU unless `--rtcd` was given), on this machine's shared cores, not an EC2 instance running \
         rtcd: CPU and memory are this machine's and are compared with the flow model only to show \
         the shape, not to claim the published figures.\n\n",
        family = t.family,
        command = t.command,
        table = t.table,
        published = t.published,
        versions = t.versions,
        pmedia = t.published_media,
        media = t.media,
        scale = t.scale,
    );
    out += "## Totals\n\nPublished columns as published; measured columns are averages over each \
            row's steady window (wire bit/s including IP, UDP and Ethernet headers, like the NIC \
            counters the published tables most likely read, calls-loadtest.md §2.3). \"vs model\" \
            is the difference from the flow model fit to the published table (`callsbench plan \
            --validate`), evaluated for the mix that ran.\n\n";
    out += &totals(t).to_markdown();
    out += &format!(
        "\n## Per flow\n\nPublished per-flow rates are derived from the published totals as in \
         calls-loadtest.md §2.5–2.6: audio-only rows give egress ÷ forwarded audio streams; screen \
         rows give (egress − {audio} kbps × forwarded audio streams) ÷ screen viewers, where \
         {audio} kbps is the mean of the table's audio-only rows. Measured rates come from the \
         harness's per-track counters. CPU per 1000 forwarded streams counts audio and screen \
         streams; published in vCPUs of the instance, measured in cores of this machine.\n\n",
        audio = opt3(t.published_audio_kbps),
    );
    out += &per_flow(t).to_markdown();
    out += &format!("\n{}\n", check_line(t));
    let notes: Vec<String> = t
        .rows
        .iter()
        .filter_map(|r| r.detail.as_ref().map(|d| format!("- Row {}: {d}", r.row)))
        .collect();
    if !notes.is_empty() {
        out += &format!("\n## Rows with problems\n\n{}\n", notes.join("\n"));
    }
    if let Some(plot) = plot {
        out += &format!(
            "\n## Plot\n\n![per-flow rates, published and measured]({plot})\n\n\
             Each row's own report (CPU, memory and bandwidth over time, latency and loss) is \
             `rows/<row>/report.md`.\n"
        );
    }
    out
}

/// The per-flow plot: published against measured kbps per forwarded audio stream and Mbps per
/// screen viewer, by row number. Written to `dir/per_flow.svg` and `dir/per_flow.png`.
pub fn plot(t: &Reproduced, dir: &Path) -> Result<Option<Rendered>, String> {
    let series = |f: &dyn Fn(&ReproducedRow) -> Option<f64>| -> Vec<(f64, f64)> {
        t.rows
            .iter()
            .filter_map(|r| Some((f64::from(r.row), f(r)?)))
            .collect()
    };
    let blue = plotters::style::RGBColor(31, 119, 180);
    let orange = plotters::style::RGBColor(255, 127, 14);
    let mut charts = Vec::new();
    for (title, y, published, measured) in [
        (
            "Egress per forwarded audio stream",
            "kbps",
            series(&|r| r.published.per_flow.kbps_per_forwarded_audio),
            series(&|r| r.measured.as_ref()?.per_flow.kbps_per_forwarded_audio),
        ),
        (
            "Egress per screen viewer",
            "Mbps",
            series(&|r| r.published.per_flow.mbps_per_screen_viewer),
            series(&|r| r.measured.as_ref()?.per_flow.mbps_per_screen_viewer),
        ),
    ] {
        if published.is_empty() && measured.is_empty() {
            continue;
        }
        charts.push(Chart {
            title: format!("{} table: {title}", t.family),
            x_desc: "published row".into(),
            y_desc: y.into(),
            lines: vec![
                Line {
                    label: "published (derived)".into(),
                    points: published,
                    color: blue,
                },
                Line {
                    label: "measured".into(),
                    points: measured,
                    color: orange,
                },
            ],
            bands: Vec::new(),
        });
    }
    if charts.is_empty() {
        return Ok(None);
    }
    let figure = Figure {
        name: "per_flow",
        caption: "Per-flow egress by row: published (derived) and measured",
        charts,
    };
    let rendered = render_plot(&figure, &dir.join("per_flow.png"))?;
    std::fs::write(dir.join("per_flow.svg"), &rendered.svg)
        .map_err(|e| format!("{}: {e}", dir.join("per_flow.svg").display()))?;
    Ok(Some(rendered))
}
