//! Sizing an rtcd host: predicted CPU, memory and bandwidth of a call mix on every size of a family, and
//! the smallest size that stays under the CPU headroom.
//!
//! The default headroom is 70 % CPU: the docs tell operators to scale up or out "if CPU utilization
//! consistently exceeds 70%" (calls-loadtest.md §4.3 and §5). A size qualifies when predicted CPU and
//! predicted memory are both within the headroom share of the host and predicted egress is within the
//! host's network bandwidth.

use serde::Serialize;

use super::catalog::{self, Family, Instance};
use super::flow::{CallMix, Flows};
use super::model::{CapacityModel, Demand, FitError};
use super::render::{Align, TextTable, fit_mark, fixed};
use super::table::{BenchmarkTable, TableError};

/// The docs' CPU guidance, in percent.
pub const DEFAULT_HEADROOM_PCT: f64 = 70.0;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error("headroom must be above 0 and at most 100 percent, got {0}")]
    Headroom(f64),
}

/// One size's predicted load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeFit {
    pub instance: &'static Instance,
    pub cpu_pct: f64,
    pub memory_gb: f64,
    pub memory_pct: f64,
    pub in_mbps: f64,
    pub out_mbps: f64,
    /// Egress above the sustained (baseline) network bandwidth: runs on burst credits.
    pub out_over_baseline: bool,
    pub fits: bool,
}

/// A sizing answer for one call mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub family: Family,
    pub mix: CallMix,
    pub flows: Flows,
    pub demand: Demand,
    pub headroom_pct: f64,
    pub sizes: Vec<SizeFit>,
    /// The smallest size that fits, if any.
    pub pick: Option<&'static str>,
    pub notes: Vec<String>,
}

/// Predicts the mix on every size of the family, fitting the model to the family's published table.
pub fn plan(mix: CallMix, family: Family, headroom_pct: f64) -> Result<Plan, PlanError> {
    if !(headroom_pct > 0.0 && headroom_pct <= 100.0) {
        return Err(PlanError::Headroom(headroom_pct));
    }
    let table = BenchmarkTable::published(family)?;
    let model = CapacityModel::fit_table(&table)?;
    plan_with_model(mix, family, headroom_pct, &model, None)
}

/// Like [`plan`], with a model fit elsewhere (`--calibrate`); `model_note` replaces the note that
/// says what the model was fit to.
pub fn plan_with_model(
    mix: CallMix,
    family: Family,
    headroom_pct: f64,
    model: &CapacityModel,
    model_note: Option<String>,
) -> Result<Plan, PlanError> {
    if !(headroom_pct > 0.0 && headroom_pct <= 100.0) {
        return Err(PlanError::Headroom(headroom_pct));
    }
    let table = BenchmarkTable::published(family)?;
    let flows = mix.flows();
    let demand = model.predict(&flows);
    let sizes: Vec<SizeFit> = catalog::family(family)
        .map(|instance| {
            let cpu_pct = demand.cpu_percent(instance.vcpus);
            let memory_pct = demand.memory_bytes / instance.memory_bytes() * 100.0;
            let out_gbps = demand.out_bps / 1e9;
            SizeFit {
                instance,
                cpu_pct,
                memory_gb: demand.memory_bytes / 1e9,
                memory_pct,
                in_mbps: demand.in_bps / 1e6,
                out_mbps: demand.out_bps / 1e6,
                out_over_baseline: out_gbps > instance.baseline_gbps,
                fits: cpu_pct <= headroom_pct
                    && memory_pct <= headroom_pct
                    && out_gbps <= instance.burst_gbps,
            }
        })
        .collect();
    let pick = sizes.iter().find(|s| s.fits).map(|s| s.instance.name);
    let mut notes = notes(&table, &mix, &flows, &sizes);
    if let (Some(n), Some(first)) = (model_note, notes.first_mut()) {
        *first = n;
    }
    Ok(Plan {
        family,
        mix,
        flows,
        demand,
        headroom_pct,
        sizes,
        pick,
        notes,
    })
}

fn notes(table: &BenchmarkTable, mix: &CallMix, flows: &Flows, sizes: &[SizeFit]) -> Vec<String> {
    let mut notes = Vec::new();
    let max_vcpus = table
        .rows
        .iter()
        .map(|r| r.instance.vcpus)
        .max()
        .unwrap_or(0);
    notes.push(format!(
        "model fit to the {} published {} rows ({}); CPU assumed linear in vCPUs beyond the \
         published sizes (up to {max_vcpus} vCPU)",
        table.rows.len(),
        table.meta.family,
        table.meta.published
    ));
    let max_out = table
        .rows
        .iter()
        .map(|r| r.mix().flows().outbound_streams())
        .max()
        .unwrap_or(0);
    if flows.outbound_streams() > max_out {
        notes.push(format!(
            "{} outbound streams is beyond the largest published row ({max_out}): extrapolated",
            flows.outbound_streams()
        ));
    }
    if mix.video_per_call() > 0 {
        notes.push(
            "no published row has video: each camera stream is costed as a screen share \
             (1.6 Mbps sample), an upper estimate"
                .to_owned(),
        );
    }
    if table.rows.iter().all(|r| r.unmuted_per_call == 2) {
        notes.push(
            "every row of this table has 2 unmuted per call, so per-session, per-inbound and \
             per-forwarded-audio costs are only weakly separable; prefer --family c7i"
                .to_owned(),
        );
    }
    if sizes.iter().any(|s| s.fits && s.out_over_baseline) {
        notes.push(
            "'burst' marks egress above the size's baseline network bandwidth: sustained only \
             on network credits"
                .to_owned(),
        );
    }
    notes
}

impl Plan {
    /// The aligned text report.
    pub fn render(&self) -> String {
        let f = &self.flows;
        let mut out = format!(
            "plan: {} calls × {} users, {} unmuted/call, {} screen-sharing calls, {} video/call on {}\n\
             flows: {} sessions, {} inbound streams, {} forwarded audio, {} screen viewers, {} forwarded video\n\
             demand: {:.2} busy vCPU, {:.2} GB memory, {:.1} Mbps in, {:.1} Mbps out\n\n",
            self.mix.calls(),
            self.mix.users_per_call(),
            self.mix.unmuted_per_call(),
            self.mix.screen_calls(),
            self.mix.video_per_call(),
            self.family,
            f.sessions,
            f.inbound_streams,
            f.forwarded_audio,
            f.screen_viewers,
            f.forwarded_video,
            self.demand.busy_vcpus,
            self.demand.memory_bytes / 1e9,
            self.demand.in_bps / 1e6,
            self.demand.out_bps / 1e6,
        );
        let mut t = TextTable::new(&[
            ("instance", Align::Left),
            ("vCPU", Align::Right),
            ("mem GiB", Align::Right),
            ("CPU %", Align::Right),
            ("memory GB", Align::Right),
            ("in Mbps", Align::Right),
            ("out Mbps", Align::Right),
            ("net", Align::Left),
            ("", Align::Left),
        ]);
        for s in &self.sizes {
            let mark = fit_mark(s.instance.name, self.pick, s.fits, self.headroom_pct);
            t.row(vec![
                s.instance.name.to_owned(),
                s.instance.vcpus.to_string(),
                fixed(s.instance.memory_gib, 0),
                fixed(s.cpu_pct, 1),
                fixed(s.memory_gb, 2),
                fixed(s.in_mbps, 1),
                fixed(s.out_mbps, 1),
                if s.out_over_baseline { "burst" } else { "" }.to_owned(),
                mark,
            ]);
        }
        out.push_str(&t.render());
        if self.pick.is_none() {
            out.push_str(&format!(
                "\nno {} size stays under {}% CPU: split the calls over several rtcd hosts\n",
                self.family,
                fixed(self.headroom_pct, 0)
            ));
        }
        out.push('\n');
        for n in &self.notes {
            out.push_str("note: ");
            out.push_str(n);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavier_mix_never_picks_a_smaller_size() {
        let light = plan(CallMix::new(10, 10, 1, 0, 0).unwrap(), Family::C7i, 70.0).unwrap();
        let heavy = plan(CallMix::new(500, 10, 2, 100, 0).unwrap(), Family::C7i, 70.0).unwrap();
        let vcpus = |p: &Plan| {
            p.pick
                .and_then(catalog::lookup)
                .map_or(u32::MAX, |i| i.vcpus)
        };
        assert!(
            vcpus(&light) < vcpus(&heavy),
            "{:?} vs {:?}",
            light.pick,
            heavy.pick
        );
    }

    #[test]
    fn headroom_out_of_range_is_rejected() {
        let mix = CallMix::new(1, 2, 1, 0, 0).unwrap();
        assert!(matches!(
            plan(mix, Family::C7i, 0.0),
            Err(PlanError::Headroom(_))
        ));
        assert!(matches!(
            plan(mix, Family::C7i, 120.0),
            Err(PlanError::Headroom(_))
        ));
    }
}
