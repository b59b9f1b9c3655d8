//! The reproduced table as data: for every row, the published figures and the per-flow rates derived
//! from them (calls-loadtest.md §2.5–2.6), what this machine measured for the scaled mix, the flow
//! model's prediction for that mix, and the differences. Serialised as `table.json`.

use serde::Serialize;

use super::scenario::ScaledRow;
use crate::plan::flow::{CallMix, Flows};
use crate::plan::model::CapacityModel;
use crate::plan::table::{BenchmarkRow, BenchmarkTable, YesNo};
use crate::report::{FlowCounts, RunResult};

/// Per-flow rates, measured or derived from published totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PerFlow {
    /// Egress kbps per forwarded audio stream.
    pub kbps_per_forwarded_audio: Option<f64>,
    /// Egress Mbps per screen viewer.
    pub mbps_per_screen_viewer: Option<f64>,
    /// CPU (vCPUs or cores) per 1000 forwarded streams (audio + screen).
    pub cpu_per_1000_forwarded: Option<f64>,
}

/// What the published row says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedFigures {
    pub cpu: String,
    /// CPU % × the instance's vCPUs.
    pub busy_vcpus: f64,
    pub memory: String,
    pub bandwidth_in: String,
    pub bandwidth_out: String,
    pub instance: String,
    /// Derived per-flow rates: audio rows give kbps per forwarded stream (out ÷ F); screen rows give
    /// Mbps per viewer after taking the table's audio rate off the egress (§2.6).
    pub per_flow: PerFlow,
}

/// What this machine measured over the steady window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub cpu_cores: Option<f64>,
    /// CPU as a percentage of the target host's cores.
    pub cpu_pct_of_host: Option<f64>,
    /// Cores of the target host (the harness host for the embedded target).
    pub host_cores: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub bandwidth_in_bps: Option<f64>,
    pub bandwidth_out_bps: Option<f64>,
    pub per_flow: PerFlow,
    /// The harness reported itself saturated: bandwidth and latency figures are suspect.
    pub saturated: bool,
    /// The run completed its plan.
    pub complete: bool,
}

/// The flow model (fit to the published table) for the scaled mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Predicted {
    pub busy_vcpus: f64,
    pub memory_bytes: f64,
    pub bandwidth_in_bps: f64,
    pub bandwidth_out_bps: f64,
}

/// Signed differences in percent: measured per-flow rates against the published ones, and measured
/// totals against the model's prediction for the scaled mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Differences {
    pub kbps_per_forwarded_audio_pct: Option<f64>,
    pub mbps_per_screen_viewer_pct: Option<f64>,
    pub bandwidth_in_vs_model_pct: Option<f64>,
    pub bandwidth_out_vs_model_pct: Option<f64>,
    pub memory_vs_model_pct: Option<f64>,
    pub cpu_vs_model_pct: Option<f64>,
}

/// One row of the reproduced table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReproducedRow {
    pub row: u32,
    /// Published mix, e.g. `1×1000 U2 +screen`.
    pub label: String,
    pub published: PublishedFigures,
    /// The mix that ran.
    pub scaled: ScaledRow,
    pub flows: FlowCounts,
    /// Results directory, relative to the table's output directory.
    pub results: String,
    /// `passed`, `failed` (a threshold or self-health check), or `error`.
    pub status: String,
    /// Why a row has no or partial results.
    pub detail: Option<String>,
    pub measured: Option<Measured>,
    pub predicted: Predicted,
    pub differences: Differences,
}

fn pct(measured: Option<f64>, reference: Option<f64>) -> Option<f64> {
    let (m, r) = (measured?, reference?);
    (r != 0.0).then(|| (m - r) / r * 100.0)
}

/// Mean egress per forwarded audio stream over the table's audio-only rows, bit/s: the audio rate
/// taken off the screen rows' egress to isolate the viewers (calls-loadtest.md §2.6 uses 97 kbps).
pub fn audio_rate_bps(table: &BenchmarkTable) -> Option<f64> {
    let rates: Vec<f64> = table
        .rows
        .iter()
        .filter(|r| r.screen_sharing == YesNo::No)
        .map(|r| r.bandwidth_out.value().0 / r.mix().flows().forwarded_audio as f64)
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

fn forwarded(f: &Flows) -> u64 {
    f.forwarded_audio + f.screen_viewers
}

/// The published row's figures and derived per-flow rates.
pub fn published(row: &BenchmarkRow, audio_bps: Option<f64>) -> PublishedFigures {
    let f = row.mix().flows();
    let out = row.bandwidth_out.value().0;
    let per_flow = match row.screen_sharing {
        YesNo::No => PerFlow {
            kbps_per_forwarded_audio: Some(out / f.forwarded_audio as f64 / 1e3),
            ..PerFlow::default()
        },
        YesNo::Yes => PerFlow {
            mbps_per_screen_viewer: audio_bps
                .map(|a| (out - a * f.forwarded_audio as f64) / f.screen_viewers as f64 / 1e6),
            ..PerFlow::default()
        },
    };
    PublishedFigures {
        cpu: row.cpu.text().to_owned(),
        busy_vcpus: row.busy_vcpus(),
        memory: row.memory.text().to_owned(),
        bandwidth_in: row.bandwidth_in.text().to_owned(),
        bandwidth_out: row.bandwidth_out.text().to_owned(),
        instance: row.instance.name.to_owned(),
        per_flow: PerFlow {
            cpu_per_1000_forwarded: Some(row.busy_vcpus() / forwarded(&f) as f64 * 1e3),
            ..per_flow
        },
    }
}

/// What a results directory measured.
pub fn measured(result: &RunResult) -> Measured {
    let s = &result.summary;
    let b = &s.benchmark;
    let flows = &result.manifest.scenario.flows;
    let host_cores = result
        .manifest
        .target
        .vcpus
        .filter(|v| *v > 0)
        .or(Some(result.manifest.host.cores));
    let streams = flows.forwarded_audio + flows.screen_viewers;
    Measured {
        cpu_cores: b.cpu_avg_cores,
        cpu_pct_of_host: b
            .cpu_avg_percent
            .or_else(|| Some(b.cpu_avg_cores? / f64::from(host_cores?) * 100.0)),
        host_cores,
        memory_bytes: b.memory_avg_bytes,
        bandwidth_in_bps: b.bandwidth_in_bps,
        bandwidth_out_bps: b.bandwidth_out_bps,
        per_flow: PerFlow {
            kbps_per_forwarded_audio: s.per_flow.kbps_per_forwarded_audio,
            mbps_per_screen_viewer: s.per_flow.mbps_per_screen_viewer,
            cpu_per_1000_forwarded: b
                .cpu_avg_cores
                .filter(|_| streams > 0)
                .map(|c| c / streams as f64 * 1e3),
        },
        saturated: s.self_health.saturated,
        complete: s.complete,
    }
}

/// The model's prediction for a mix.
pub fn predicted(model: &CapacityModel, mix: &CallMix) -> Predicted {
    let d = model.predict(&mix.flows());
    Predicted {
        busy_vcpus: d.busy_vcpus,
        memory_bytes: d.memory_bytes,
        bandwidth_in_bps: d.in_bps,
        bandwidth_out_bps: d.out_bps,
    }
}

/// Differences between a row's measurement, its published per-flow rates and the prediction.
pub fn differences(
    published: &PublishedFigures,
    measured: Option<&Measured>,
    predicted: &Predicted,
) -> Differences {
    let Some(m) = measured else {
        return Differences::default();
    };
    Differences {
        kbps_per_forwarded_audio_pct: pct(
            m.per_flow.kbps_per_forwarded_audio,
            published.per_flow.kbps_per_forwarded_audio,
        ),
        mbps_per_screen_viewer_pct: pct(
            m.per_flow.mbps_per_screen_viewer,
            published.per_flow.mbps_per_screen_viewer,
        ),
        bandwidth_in_vs_model_pct: pct(m.bandwidth_in_bps, Some(predicted.bandwidth_in_bps)),
        bandwidth_out_vs_model_pct: pct(m.bandwidth_out_bps, Some(predicted.bandwidth_out_bps)),
        memory_vs_model_pct: pct(
            m.memory_bytes.map(|b| b as f64),
            Some(predicted.memory_bytes),
        ),
        cpu_vs_model_pct: pct(m.cpu_cores, Some(predicted.busy_vcpus)),
    }
}

/// The whole reproduced table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reproduced {
    /// `c6i` or `c7i`.
    pub family: String,
    /// The table file.
    pub table: String,
    pub published: String,
    pub versions: String,
    /// What the published runs used, and what these runs used.
    pub published_media: String,
    pub media: String,
    /// `--scale` as given; every row also records its effective scale.
    pub scale: f64,
    /// The command that regenerates this directory.
    pub command: String,
    /// The harness host (`hostname`, CPU model, cores) of the first row that ran.
    pub machine: Option<crate::report::Host>,
    /// The table's audio rate used to isolate screen viewers in published screen rows, kbps.
    pub published_audio_kbps: Option<f64>,
    /// Largest |difference| allowed for a per-flow bandwidth figure, percent.
    pub tolerance_pct: f64,
    pub rows: Vec<ReproducedRow>,
}

/// How many per-flow bandwidth figures were checked, and how many were within the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BandwidthCheck {
    pub checked: usize,
    pub within: usize,
}

impl Reproduced {
    /// Counts measured per-flow bandwidth figures within ± `tolerance_pct` of the published ones.
    pub fn bandwidth_check(&self) -> BandwidthCheck {
        let mut c = BandwidthCheck::default();
        for r in &self.rows {
            let d = &r.differences;
            for v in [d.kbps_per_forwarded_audio_pct, d.mbps_per_screen_viewer_pct]
                .into_iter()
                .flatten()
            {
                c.checked += 1;
                if v.abs() <= self.tolerance_pct {
                    c.within += 1;
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::catalog::Family;

    #[test]
    fn published_per_flow_rates_follow_section_2_6() {
        let t = BenchmarkTable::published(Family::C7i).unwrap();
        let a = audio_rate_bps(&t).unwrap();
        // 97.1, 97.2, 97.6, 97.5 kbps → mean ≈ 97.35.
        assert!((a / 1e3 - 97.35).abs() < 0.1, "{a}");
        // Row 1: 194 Mbps / 1998 streams = 97.1 kbps; 1.88 vCPU / 1998 streams.
        let p = published(&t.rows[0], Some(a));
        let k = p.per_flow.kbps_per_forwarded_audio.unwrap();
        assert!((k - 97.1).abs() < 0.05, "{k}");
        assert!(p.per_flow.mbps_per_screen_viewer.is_none());
        let c = p.per_flow.cpu_per_1000_forwarded.unwrap();
        assert!((c - 0.941).abs() < 0.001, "{c}");
        // Row 3: 1×1000 U1 screen: (1680 − 97.35·0.999) / 999 ≈ 1.584 Mbps.
        let p = published(&t.rows[2], Some(a));
        let v = p.per_flow.mbps_per_screen_viewer.unwrap();
        assert!((v - 1.585).abs() < 0.002, "{v}");
        assert!(p.per_flow.kbps_per_forwarded_audio.is_none());
    }

    #[test]
    fn differences_are_signed_percentages() {
        assert_eq!(pct(Some(110.0), Some(100.0)), Some(10.0));
        assert_eq!(pct(Some(90.0), Some(100.0)), Some(-10.0));
        assert_eq!(pct(None, Some(100.0)), None);
        assert_eq!(pct(Some(1.0), Some(0.0)), None);
    }
}
