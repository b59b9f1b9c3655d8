//! The flow model against the spec's per-flow derivations (calls-loadtest.md §2.5 and §2.6), the fitted
//! rates against the spec's estimates, and the leave-one-out error against the values measured when the
//! model was written (reports/model.md), so a regression in the model or the data fails here.

use callsbench::plan::catalog::Family;
use callsbench::plan::flow::CallMix;
use callsbench::plan::model::{CapacityModel, leave_one_out};
use callsbench::plan::table::{BenchmarkRow, BenchmarkTable};

fn table(f: Family) -> BenchmarkTable {
    BenchmarkTable::published(f).unwrap()
}

/// Rounds to `d` decimals, as the spec prints its derived figures.
fn round(v: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (v * p).round() / p
}

fn kbps_per_forwarded_audio(r: &BenchmarkRow) -> f64 {
    r.bandwidth_out.value().0 / 1e3 / r.mix().flows().forwarded_audio as f64
}

#[test]
fn c6i_audio_egress_per_forwarded_stream_matches_section_2_5() {
    let t = table(Family::C6i);
    // Rows 1, 4 and 8: F = 1,400, 980 and 1,990; 89.3, 87.8 and 90.5 kbps per forwarded stream.
    let f: Vec<u64> = [0, 3, 7]
        .iter()
        .map(|&i| t.rows[i].mix().flows().forwarded_audio)
        .collect();
    assert_eq!(f, vec![1_400, 980, 1_990]);
    let kbps: Vec<f64> = [0, 3, 7]
        .iter()
        .map(|&i| round(kbps_per_forwarded_audio(&t.rows[i]), 1))
        .collect();
    assert_eq!(kbps, vec![89.3, 87.8, 90.5]);
}

#[test]
fn c6i_ingress_residual_per_session_matches_section_2_5() {
    // (in − A·89 kbps) / S: 5.25, 6.94 and 7.31 kbps.
    let t = table(Family::C6i);
    let residual: Vec<f64> = [0, 3, 7]
        .iter()
        .map(|&i| {
            let r = &t.rows[i];
            let f = r.mix().flows();
            let v = (r.bandwidth_in.value().0 / 1e3 - f.audio_sources as f64 * 89.0)
                / f.sessions as f64;
            round(v, 2)
        })
        .collect();
    assert_eq!(residual, vec![5.25, 6.94, 7.31]);
}

#[test]
fn c6i_screen_rows_match_section_2_5() {
    // Row 3: (2,200 − 125) / 700 viewers = 2.96 Mbps; row 6: (1,330 − 86) / 490 = 2.54;
    // row 10: (2,200 − 180) / 995 = 2.03. Each against its audio-only twin.
    let t = table(Family::C6i);
    for (screen, audio, viewers, per_viewer) in
        [(2, 1, 700, 2.96), (5, 3, 490, 2.54), (9, 7, 995, 2.03)]
    {
        let s = &t.rows[screen];
        let a = &t.rows[audio];
        let f = s.mix().flows();
        assert_eq!(f.screen_viewers, viewers);
        let mbps =
            (s.bandwidth_out.value().0 - a.bandwidth_out.value().0) / 1e6 / f.screen_viewers as f64;
        assert_eq!(round(mbps, 2), per_viewer, "row {}", s.row);
        // CPU increments in vCPU: 4.48, 2.20 and 4.80.
    }
    let inc = |s: usize, a: usize| round(t.rows[s].busy_vcpus() - t.rows[a].busy_vcpus(), 2);
    assert_eq!((inc(2, 1), inc(5, 3), inc(9, 8)), (4.48, 2.2, 4.8));
}

#[test]
fn c7i_audio_egress_per_forwarded_stream_matches_section_2_6() {
    // 1×1000 U2, 100×10 U2, 250×10 U2, 1000×2 U2: 97.1, 97.2, 97.6, 97.5 kbps.
    let t = table(Family::C7i);
    let kbps: Vec<f64> = [0, 4, 12, 13]
        .iter()
        .map(|&i| round(kbps_per_forwarded_audio(&t.rows[i]), 1))
        .collect();
    assert_eq!(kbps, vec![97.1, 97.2, 97.6, 97.5]);
    assert_eq!(t.rows[13].mix().flows().forwarded_audio, 2_000);
    assert_eq!(t.rows[12].mix().flows().forwarded_audio, 4_500);
}

#[test]
fn c7i_screen_egress_per_viewer_matches_section_2_6() {
    // (out − 97 kbps × F) / viewers, in Mbps, for rows 2, 3, 4, 6, 17 and the two outliers 9 and 18.
    let t = table(Family::C7i);
    for (row, viewers, per_viewer) in [
        (2, 799, 1.605),
        (3, 999, 1.585),
        (4, 990, 1.600),
        (6, 900, 1.603),
        (17, 3_996, 1.600),
        (9, 1_998, 1.435),
        (18, 2_250, 1.464),
    ] {
        let r = &t.rows[row - 1];
        let f = r.mix().flows();
        assert_eq!(f.screen_viewers, viewers, "row {row}");
        let mbps =
            (r.bandwidth_out.value().0 - 97e3 * f.forwarded_audio as f64) / 1e6 / viewers as f64;
        assert_eq!(round(mbps, 3), per_viewer, "row {row}");
    }
}

#[test]
fn c7i_cpu_per_thousand_forwarded_streams_matches_section_2_6() {
    // 1×1000 U2 on xlarge: 1.88 vCPU / 1.998 k = 0.94; 1000×2 U2: 6.24 vCPU for 2,000 streams = 3.1.
    let t = table(Family::C7i);
    let per_k =
        |i: usize| t.rows[i].busy_vcpus() / (t.rows[i].mix().flows().forwarded_audio as f64 / 1e3);
    assert_eq!(round(per_k(0), 2), 0.94);
    assert_eq!(round(per_k(6), 2), 0.80);
    assert_eq!(round(per_k(13), 1), 3.1);
}

#[test]
fn fitted_rates_agree_with_the_spec_estimates() {
    let c7i = CapacityModel::fit_table(&table(Family::C7i)).unwrap();
    // §2.7: out ≈ 97 kbps per forwarded audio stream + 1.6 Mbps per screen viewer.
    assert_eq!(round(c7i.bandwidth_out.terms[0].coefficient / 1e3, 0), 97.0);
    assert_eq!(round(c7i.bandwidth_out.terms[1].coefficient / 1e6, 1), 1.6);
    // §2.6 memory: about 0.8 GB base.
    assert_eq!(round(c7i.memory.terms[0].coefficient / 1e9, 1), 0.8);

    let c6i = CapacityModel::fit_table(&table(Family::C6i)).unwrap();
    // §2.5/§2.7: about 89 kbps per forwarded stream; ingress 77 to 89 kbps per source + 5 to 7 per session.
    assert_eq!(round(c6i.bandwidth_out.terms[0].coefficient / 1e3, 0), 89.0);
    let per_source = c6i.bandwidth_in.terms[0].coefficient / 1e3;
    let per_session = c6i.bandwidth_in.terms[1].coefficient / 1e3;
    assert!((76.0..=89.0).contains(&per_source), "{per_source}");
    assert!((5.0..=8.0).contains(&per_session), "{per_session}");
}

#[test]
fn c7i_leave_one_out_cpu_error_stays_at_the_measured_level() {
    let v = leave_one_out(&table(Family::C7i)).unwrap();
    assert_eq!(v.rows.len(), 19);
    // Measured when the model was written: median 7.22 %, worst 28.45 % (row 19, 500×2 with screen).
    assert!(
        v.cpu.median_abs_pct <= 7.3,
        "median {}",
        v.cpu.median_abs_pct
    );
    assert!(v.cpu.worst_abs_pct <= 28.5, "worst {}", v.cpu.worst_abs_pct);
    assert_eq!(v.cpu.worst_row, 19);
    // Egress is the best-determined resource: median 1.41 %, worst 10.25 %.
    assert!(
        v.bandwidth_out.median_abs_pct <= 1.5,
        "{}",
        v.bandwidth_out.median_abs_pct
    );
    assert!(
        v.bandwidth_out.worst_abs_pct <= 10.3,
        "{}",
        v.bandwidth_out.worst_abs_pct
    );
    assert!(
        v.memory.median_abs_pct <= 3.9,
        "{}",
        v.memory.median_abs_pct
    );
}

#[test]
fn c6i_leave_one_out_cpu_error_stays_at_the_measured_level() {
    let v = leave_one_out(&table(Family::C6i)).unwrap();
    assert_eq!(v.rows.len(), 10);
    // Measured: median 2.44 %, worst 14.77 % (row 3, the only 100×8 screen row).
    assert!(
        v.cpu.median_abs_pct <= 2.5,
        "median {}",
        v.cpu.median_abs_pct
    );
    assert!(v.cpu.worst_abs_pct <= 14.8, "worst {}", v.cpu.worst_abs_pct);
    assert_eq!(v.cpu.worst_row, 3);
    assert!(
        v.bandwidth_out.median_abs_pct <= 2.0,
        "{}",
        v.bandwidth_out.median_abs_pct
    );
}

#[test]
fn prediction_scales_with_the_mix() {
    let m = CapacityModel::fit_table(&table(Family::C7i)).unwrap();
    let one = m.predict(&CallMix::new(50, 10, 2, 0, 0).unwrap().flows());
    let two = m.predict(&CallMix::new(100, 10, 2, 0, 0).unwrap().flows());
    // No CPU intercept: twice the calls is twice the CPU.
    assert!((two.busy_vcpus / one.busy_vcpus - 2.0).abs() < 1e-9);
    assert!(two.out_bps > one.out_bps && two.memory_bytes > one.memory_bytes);
}
