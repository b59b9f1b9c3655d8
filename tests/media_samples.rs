//! The committed samples match their manifest: every file is re-read and re-measured in Rust
//! (independently of the ffprobe measurement that wrote the manifest) and compared within 2 %.

use std::path::Path;

use callsbench::media::inspect::sha256_hex;
use callsbench::media::wire::video_packet_on_wire;
use callsbench::media::{
    FileEntry, Manifest, Sample, SampleCache, VideoSample, builtin_dir, inspect,
};

fn manifest() -> Manifest {
    Manifest::load(&builtin_dir().join("MANIFEST.toml")).expect("manifest parses")
}

fn close(what: &str, name: &str, measured: f64, recorded: f64) {
    let tolerance = recorded.abs() * 0.02;
    assert!(
        (measured - recorded).abs() <= tolerance,
        "{name}: {what} measured {measured}, manifest {recorded} (±2 %)"
    );
}

fn entry<'a>(m: &'a Manifest, name: &str) -> &'a FileEntry {
    m.file
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} in manifest"))
}

/// A stream of the video sample on the wire from its sender: every RTP payload the packetizer made
/// plus the documented per-packet headers, over the sample's duration.
fn sender_wire_kbps(name: &str) -> f64 {
    let sample = VideoSample::load(&builtin_dir().join(name)).unwrap();
    let bytes: usize = sample
        .frames
        .iter()
        .flat_map(|f| f.packets.iter())
        .map(|p| video_packet_on_wire(p.len()))
        .sum();
    bytes as f64 * 8.0 / sample.duration().as_secs_f64() / 1000.0
}

#[test]
fn every_sample_matches_its_manifest_entry() {
    let m = manifest();
    assert!(m.file.len() >= 7, "manifest lists {} files", m.file.len());
    for recorded in &m.file {
        let path = builtin_dir().join(&recorded.name);
        let measured = inspect(&path).unwrap_or_else(|e| panic!("{}: {e}", recorded.name));
        let n = &recorded.name;
        assert_eq!(measured.sha256, recorded.sha256, "{n}: sha256");
        assert_eq!(measured.codec, recorded.codec, "{n}: codec");
        assert_eq!(measured.resolution, recorded.resolution, "{n}: resolution");
        assert_eq!(measured.frames, recorded.frames, "{n}: frames");
        assert_eq!(measured.keyframes, recorded.keyframes, "{n}: keyframes");
        close("fps", n, measured.fps, recorded.fps);
        close("duration", n, measured.duration_s, recorded.duration_s);
        close("mean kbps", n, measured.mean_kbps, recorded.mean_kbps);
        close("peak kbps", n, measured.peak_kbps, recorded.peak_kbps);
        close(
            "keyframe interval",
            n,
            measured.keyframe_interval_s,
            recorded.keyframe_interval_s,
        );
        assert_eq!(
            measured.min_frame_bytes, recorded.min_frame_bytes,
            "{n}: min frame"
        );
        assert_eq!(
            measured.max_frame_bytes, recorded.max_frame_bytes,
            "{n}: max frame"
        );
        assert_eq!(measured.levels, recorded.levels, "{n}: levels sidecar");
        assert_eq!(
            measured.levels_sha256, recorded.levels_sha256,
            "{n}: levels sha256"
        );
        assert!(
            recorded.command.as_deref().is_some_and(|c| c.contains(n)),
            "{n}: manifest records the command that made it"
        );
    }
}

#[test]
fn samples_meet_the_issue_targets() {
    let m = manifest();
    for tool in ["ffmpeg", "libvpx", "libopus", "espeak_ng"] {
        assert!(m.tools.contains_key(tool), "tool version {tool} recorded");
    }
    let mut total = 0u64;
    for e in &m.file {
        assert!(e.duration_s >= 20.0, "{} lasts {} s", e.name, e.duration_s);
        total += std::fs::metadata(builtin_dir().join(&e.name))
            .unwrap()
            .len();
    }
    assert!(total <= 25_000_000, "samples total {total} B");

    for name in ["speech-89.ogg", "speech-97.ogg", "conversation.ogg"] {
        let e = entry(&m, name);
        assert_eq!(
            (e.codec.as_str(), e.resolution.as_str()),
            ("opus", "mono 48000 Hz")
        );
        assert_eq!(e.fps, 50.0, "{name}: 20 ms frames");
        assert_eq!(
            e.min_frame_bytes, e.max_frame_bytes,
            "{name}: constant rate"
        );
    }
    // `kbps` is what the target is stated in: the encoder's rate (VP8 payload, the manifest's mean) for
    // the simulcast layers and the camera, as a browser sets them; the rate on the wire for the
    // single-layer share, sized to the c7i table's ≈ 1.6 Mbps per screen viewer (calls-loadtest.md
    // §2.6), which counts the RTP, SRTP, UDP, IP and Ethernet headers too.
    let video = |name: &str, res: &str, fps: f64, kbps: f64, want: f64| {
        let e = entry(&m, name);
        assert_eq!(e.resolution, res, "{name}");
        assert_eq!(e.fps, fps, "{name}");
        assert!(
            (kbps - want).abs() <= want * 0.05,
            "{name}: {kbps:.1} kbps, want ≈ {want} ({} kbps of VP8)",
            e.mean_kbps
        );
        e.keyframe_interval_s
    };
    let payload = |name: &str| entry(&m, name).mean_kbps;
    let screen_wire = sender_wire_kbps("screen.ivf");
    assert!(
        screen_wire > payload("screen.ivf") * 1.05,
        "headers: {screen_wire:.1} kbps on the wire from {} kbps of VP8",
        payload("screen.ivf")
    );
    assert!(video("screen.ivf", "1920x1080", 20.0, screen_wire, 1600.0) <= 2.0);
    let h = payload("screen_h.ivf");
    assert!(video("screen_h.ivf", "1920x1080", 20.0, h, 2500.0) <= 2.0);
    let l = payload("screen_l.ivf");
    assert!(video("screen_l.ivf", "1920x1080", 5.0, l, 500.0) <= 2.0);
    video("camera.ivf", "640x360", 30.0, payload("camera.ivf"), 500.0);
}

#[test]
fn levels_sidecars_follow_the_speech() {
    let m = manifest();
    for name in ["speech-89.ogg", "speech-97.ogg", "conversation.ogg"] {
        let e = entry(&m, name);
        let levels = std::fs::read(builtin_dir().join(format!("{name}.levels"))).unwrap();
        assert_eq!(Some(sha256_hex(&levels)), e.levels_sha256, "{name}");
        assert_eq!(
            levels.len() as u64,
            e.frames,
            "{name}: one level per packet"
        );
        let loud = levels.iter().filter(|&&l| l < 40).count();
        let quiet = levels.iter().filter(|&&l| l > 80).count();
        // Real speech: voiced for much of the time, with pauses between words and sentences (the
        // conversation pauses longer between talk spurts).
        assert!(
            loud * 3 > levels.len(),
            "{name}: {loud} loud frames of {}",
            levels.len()
        );
        assert!(quiet > 25, "{name}: {quiet} quiet frames");
    }
    // The conversation has pauses of at least 1 s (50 frames) between talk spurts.
    let levels = std::fs::read(builtin_dir().join("conversation.ogg.levels")).unwrap();
    let mut run = 0;
    let mut long_pauses = 0;
    for &l in &levels {
        if l > 80 {
            run += 1;
        } else {
            long_pauses += usize::from(run >= 50);
            run = 0;
        }
    }
    assert!(long_pauses >= 6, "{long_pauses} pauses of ≥ 1 s");
}

#[test]
fn loader_shares_one_copy_and_refuses_bad_input() {
    let mut cache = SampleCache::new();
    let path = builtin_dir().join("camera.ivf");
    let a = cache.video(&path).unwrap();
    let b = cache.video(&path).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b), "one copy per file");
    assert!(
        a.frames
            .iter()
            .all(|f| f.packets.iter().all(|p| p.len() <= 1176))
    );
    assert!(cache.audio(&path).is_err(), "camera.ivf is not audio");
    match cache.get(&builtin_dir().join("speech-97.ogg")).unwrap() {
        Sample::Audio(s) => assert_eq!(s.frames[0].payload.len(), 167),
        Sample::Video(_) => panic!("ogg loaded as video"),
    }
    let err = callsbench::media::load(Path::new("/nonexistent/x.ogg")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.ogg"), "{err}");
    let err = callsbench::media::load(&builtin_dir().join("MANIFEST.toml")).unwrap_err();
    assert!(err.to_string().contains("not an Ogg or IVF file"), "{err}");
    // An Ogg file without its level sidecar is refused with the way to make one.
    let dir = std::env::temp_dir().join(format!("callsbench-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lone = dir.join("lone.ogg");
    std::fs::copy(builtin_dir().join("speech-89.ogg"), &lone).unwrap();
    let err = callsbench::media::load(&lone).unwrap_err();
    assert!(err.to_string().contains("make-media.sh levels"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn speech_files_hold_one_packet_per_ogg_page() {
    // The official load-test tool sends one Ogg page per 20 ms tick; our samples stay usable by it.
    for name in ["speech-89.ogg", "speech-97.ogg", "conversation.ogg"] {
        let bytes = std::fs::read(builtin_dir().join(name)).unwrap();
        let mut reader = ogg::reading::PacketReader::new(std::io::Cursor::new(bytes));
        let mut packets = 0;
        while let Some(p) = reader.read_packet().unwrap() {
            assert!(
                p.first_in_page() && p.last_in_page(),
                "{name}: packet {packets} shares a page"
            );
            packets += 1;
        }
        let m = manifest();
        assert_eq!(
            packets,
            entry(&m, name).frames + 2,
            "{name}: OpusHead + OpusTags + frames"
        );
    }
}
