//! The summary sections every renderer shows (benchmark-table row, QoE, per-flow figures, self-health,
//! thresholds), and the terminal rendering of them.

use super::files::RunResult;
use super::model::EndReason;
use super::summary::Summary;
use super::table::{Table, bps, fraction_percent, gigabytes, micros, opt3, sig3};

/// A titled table.
#[derive(Debug, Clone)]
pub struct Section {
    /// Heading.
    pub title: &'static str,
    /// Content.
    pub table: Table,
}

/// One line saying how the run ended and whether it passed.
pub fn headline(result: &RunResult) -> String {
    let s = &result.summary;
    let mut line = format!("callsbench results: scenario \"{}\"", s.scenario);
    if s.synthetic {
        line += " (synthetic)";
    }
    if s.complete {
        line += ", complete";
    } else {
        let reason = match s.end_reason {
            EndReason::Completed => "stopped early",
            EndReason::Interrupted => "interrupted",
            EndReason::TargetDied => "target died",
            EndReason::Error => "error",
        };
        line += &format!(", PARTIAL ({reason}");
        if let Some(d) = &result.manifest.end_detail {
            line += &format!(": {d}");
        }
        line += ")";
    }
    line += &format!(
        "; steady window {}–{} s ({} s); {}",
        s.steady.start_s,
        s.steady.end_s,
        s.steady.seconds,
        if s.passed { "PASSED" } else { "FAILED" }
    );
    line
}

/// A figure, with `*` when the harness was saturated and the figure is among the affected ones.
fn marked(s: &Summary, figure: &str, text: String) -> String {
    if s.self_health.affected.iter().any(|a| a == figure) {
        text + " *"
    } else {
        text
    }
}

/// The sections, in reading order.
pub fn sections(result: &RunResult) -> Vec<Section> {
    let s = &result.summary;
    let b = &s.benchmark;
    let mut bench = Table::new([
        "Calls",
        "Users/call",
        "Unmuted/call",
        "Screen sharing",
        "CPU (avg)",
        "Memory (avg)",
        "Bandwidth (in/out)",
    ]);
    let cpu = match (b.cpu_avg_cores, b.cpu_avg_percent) {
        (Some(c), Some(p)) => format!("{}% ({} cores)", sig3(p), sig3(c)),
        (Some(c), None) => format!("{} cores", sig3(c)),
        _ => "–".into(),
    };
    let screen = match b.screen_sharing {
        0 => "no".to_owned(),
        n if n == b.calls => "yes".to_owned(),
        1 => "1 call".to_owned(),
        n => format!("{n} calls"),
    };
    bench.row([
        b.calls.to_string(),
        b.users_per_call.to_string(),
        b.unmuted_per_call.to_string(),
        screen,
        cpu,
        gigabytes(b.memory_avg_bytes),
        marked(
            s,
            "bandwidth",
            format!("{} / {}", bps(b.bandwidth_in_bps), bps(b.bandwidth_out_bps)),
        ),
    ]);

    let q = &s.qoe;
    let mut qoe = Table::new([
        "Join→media p50",
        "Join→media p99",
        "Join failures",
        "Loss",
        "Jitter p50/p99",
        "Latency p50",
        "Latency p99",
        "Freezes",
    ]);
    let failures = if q.join_failures_by_phase.is_empty() {
        "0".to_owned()
    } else {
        let by: Vec<String> = q
            .join_failures_by_phase
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        format!("{} ({})", q.join_failures, by.join(", "))
    };
    qoe.row([
        marked(s, "join", micros(q.join_p50_us)),
        marked(s, "join", micros(q.join_p99_us)),
        failures,
        marked(s, "loss", fraction_percent(q.loss)),
        marked(
            s,
            "jitter",
            format!("{} / {}", micros(q.jitter_p50_us), micros(q.jitter_p99_us)),
        ),
        marked(s, "latency", micros(q.latency_p50_us)),
        marked(s, "latency", micros(q.latency_p99_us)),
        q.freezes.to_string(),
    ]);

    let mut phases = Table::new(["Join phase", "Sessions", "p50", "p99"]);
    for p in &q.join_phases {
        phases.row([
            p.phase.clone(),
            p.count.to_string(),
            marked(s, "join", micros(p.p50_us)),
            marked(s, "join", micros(p.p99_us)),
        ]);
    }
    let mut signalling = Table::new(["Measure", "Events", "p50", "p99"]);
    signalling.row([
        "own renegotiation (offer → answer)".to_owned(),
        q.renegotiations.to_string(),
        micros(q.renegotiation_p50_us),
        micros(q.renegotiation_p99_us),
    ]);
    signalling.row([
        "server offer → our answer sent".to_owned(),
        q.server_offers.to_string(),
        micros(q.server_offer_answer_p50_us),
        micros(q.server_offer_answer_p99_us),
    ]);
    signalling.row([
        "VAD on (voiced packet sent → vad)".to_owned(),
        q.vad_events.to_string(),
        micros(q.vad_p50_us),
        micros(q.vad_p99_us),
    ]);

    let f = &s.per_flow;
    let mut flow = Table::new([
        "kbps/forwarded audio",
        "Mbps/screen viewer",
        "kbps/audio source (in)",
        "Mbps/screen sharer (in)",
        "Forwarded audio",
        "Screen viewers",
        "Sessions",
    ]);
    flow.row([
        opt3(f.kbps_per_forwarded_audio),
        opt3(f.mbps_per_screen_viewer),
        opt3(f.kbps_per_audio_source),
        opt3(f.mbps_per_screen_sharer),
        f.forwarded_audio.to_string(),
        f.screen_viewers.to_string(),
        f.sessions.to_string(),
    ]);

    let h = &s.self_health;
    let mut health = Table::new([
        "Verdict",
        "Saturated seconds",
        "Harness CPU max",
        "Loop lag p99",
        "Pacing error p99",
        "Busiest engine thread",
        "UDP drops harness/target/host",
    ]);
    health.row([
        if h.saturated {
            format!(
                "SATURATED ({}); * marks unreliable figures",
                h.reasons.join(", ")
            )
        } else if h.saturated_seconds > 0 {
            format!("ok (an isolated stall: {})", h.reasons.join(", "))
        } else {
            "ok".into()
        },
        h.saturated_seconds.to_string(),
        h.harness_cpu_max_cores
            .map_or("–".into(), |c| format!("{} cores", sig3(c))),
        micros(h.loop_lag_p99_us),
        micros(h.pacing_error_p99_us),
        h.engine_thread_cpu_max_cores
            .map_or("–".into(), |c| format!("{} cores", sig3(c))),
        [
            h.harness_udp_drops,
            h.target_udp_drops,
            h.host_udp_receive_errors,
        ]
        .map(|d| d.map_or("–".to_owned(), |d| d.to_string()))
        .join(" / "),
    ]);

    let mut out = vec![];
    if let Some(j) = &s.job_load {
        // A job load has no calls: its own tables take the place of the call sections.
        for (title, table) in super::jobload::tables(j) {
            out.push(Section { title, table });
        }
    } else {
        out.extend([
            Section {
                title: "Benchmark row",
                table: bench,
            },
            Section {
                title: "Quality of experience",
                table: qoe,
            },
            Section {
                title: "Per flow",
                table: flow,
            },
        ]);
        if !q.join_phases.is_empty() {
            out.push(Section {
                title: "Join phases (from the scheduled join)",
                table: phases,
            });
        }
        out.push(Section {
            title: "Signalling",
            table: signalling,
        });
    }
    out.push(Section {
        title: "Harness self-health",
        table: health,
    });
    let j = &s.jobs;
    if s.job_load.is_none() && (j.started > 0 || j.failed > 0) {
        let mut t = Table::new([
            "Started",
            "Completed",
            "Failed",
            "Start p50",
            "Start p99",
            "Total p50",
            "Total p99",
        ]);
        t.row([
            j.started.to_string(),
            j.completed.to_string(),
            j.failed.to_string(),
            micros(j.start_p50_us),
            micros(j.start_p99_us),
            micros(j.total_p50_us),
            micros(j.total_p99_us),
        ]);
        out.push(Section {
            title: "Jobs",
            table: t,
        });
    }
    if !s.hosts.is_empty() {
        let mut t = Table::new([
            "Host",
            "Calls",
            "Sessions",
            "Joins",
            "Join failures",
            "Disconnects",
            "Drain",
        ]);
        for h in &s.hosts {
            let drain = h.drain.as_ref().map_or("–".to_owned(), |d| {
                format!(
                    "at {} s: {} calls live ({} ended clean, {} disconnects, {} failed joins after), {} placed after, {} diverted",
                    sig3(d.at_s),
                    d.calls_live,
                    d.calls_ended_clean,
                    d.disconnects_after,
                    d.join_failures_after,
                    d.calls_placed_after,
                    d.calls_diverted
                )
            });
            t.row([
                h.address.clone(),
                h.calls.to_string(),
                h.sessions.to_string(),
                h.joins.to_string(),
                h.join_failures.to_string(),
                h.disconnects.to_string(),
                drain,
            ]);
        }
        out.push(Section {
            title: "Hosts",
            table: t,
        });
    }
    if !s.thresholds.is_empty() {
        let mut t = Table::new(["Threshold", "Measured", "Result"]);
        for r in &s.thresholds {
            t.row([
                r.threshold.clone(),
                r.measured.clone().unwrap_or_else(|| "not measured".into()),
                if r.passed { "pass" } else { "FAIL" }.to_owned(),
            ]);
        }
        out.push(Section {
            title: "Thresholds",
            table: t,
        });
    }
    out
}

/// The terminal summary printed at the end of `run` and by `report`.
pub fn render(result: &RunResult) -> String {
    let mut out = headline(result) + "\n";
    for s in sections(result) {
        out += &format!("\n{}\n{}", s.title, s.table.to_text());
    }
    if let Some(note) = &result.summary.qoe.latency_note {
        out += &format!("\nNote: {note}\n");
    }
    out
}
