//! The paced sources over the committed samples, in virtual time: on-wire rates, continuity across the
//! loop point, keyframe on PLI, simulcast alignment, audio levels that drive rtcd's VAD like speech.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callsbench::media::sample::VideoSample;
use callsbench::media::{
    AudioSample, AudioSource, OutPacket, Rid, SampleCache, SimulcastSource, StreamStart,
    VideoSource, builtin_dir, vp8, wire,
};

fn audio(name: &str) -> Arc<AudioSample> {
    SampleCache::new().audio(&builtin_dir().join(name)).unwrap()
}

fn video(name: &str) -> Arc<VideoSample> {
    SampleCache::new().video(&builtin_dir().join(name)).unwrap()
}

/// Polls `poll` at every deadline up to `until`, like a driver would, collecting the packets.
fn run_audio(src: &mut AudioSource, t0: Instant, until: Duration) -> Vec<OutPacket> {
    let mut out = Vec::new();
    while src.next_deadline() <= t0 + until {
        let now = src.next_deadline();
        out.extend(src.poll_until(now));
    }
    out
}

fn run_video(src: &mut VideoSource, until: Instant) -> Vec<OutPacket> {
    let mut out = Vec::new();
    while src.next_deadline() <= until {
        let now = src.next_deadline();
        out.extend(src.poll_until(now));
    }
    out
}

#[test]
fn audio_on_wire_rate_matches_the_tables() {
    let t0 = Instant::now();
    for (name, want) in [("speech-89.ogg", 89.0), ("speech-97.ogg", 97.0)] {
        let mut src = AudioSource::new(audio(name), t0, StreamStart::default());
        let span = Duration::from_secs(60); // longer than the sample: includes a loop
        let packets = run_audio(&mut src, t0, span - Duration::from_millis(1));
        assert_eq!(packets.len(), 3000, "{name}: 50 packets/s");
        let bytes: u64 = packets
            .iter()
            .map(|p| wire::audio_packet_on_wire(p.payload.len()) as u64)
            .sum();
        let kbps = wire::kbps(bytes, span);
        assert!(
            (kbps - want).abs() <= 2.0,
            "{name}: {kbps:.2} kbps on the wire per stream, want {want} ± 2"
        );
    }
}

#[test]
fn audio_loops_without_a_jump() {
    let sample = audio("speech-89.ogg");
    let n = sample.frames.len();
    let t0 = Instant::now();
    let first = StreamStart {
        seq_no: 65_530, // also crosses the 16-bit sequence wrap
        rtp_time: u32::MAX - 2_000,
        picture_id: 0,
        frame_offset: n - 5,
    };
    let mut src = AudioSource::new(sample.clone(), t0, first);
    let packets = run_audio(&mut src, t0, Duration::from_millis(200));
    assert_eq!(packets.len(), 11);
    assert_eq!(packets[4].frame_index, n - 1);
    assert_eq!(
        packets[5].frame_index, 0,
        "wrapped to the start of the file"
    );
    for w in packets.windows(2) {
        assert_eq!(w[1].seq_no, w[0].seq_no + 1);
        assert_eq!(w[1].rtp_time, w[0].rtp_time.wrapping_add(960));
        assert_eq!(w[1].at - w[0].at, Duration::from_millis(20));
    }
    assert!(packets[0].marker && !packets[1].marker);
    for p in &packets {
        assert_eq!(p.audio_level, Some(sample.frames[p.frame_index].level));
    }
}

#[test]
fn video_loops_without_a_jump() {
    let sample = video("screen_l.ivf");
    let n = sample.frames.len() as u64;
    let t0 = Instant::now();
    let first = StreamStart {
        seq_no: 1000,
        rtp_time: 12345,
        picture_id: 0x7ff0,
        frame_offset: 0,
    };
    let mut src = VideoSource::new(sample.clone(), t0, first);
    // Two full loops and a bit.
    let packets = run_video(
        &mut src,
        t0 + sample.duration() * 2 + Duration::from_secs(1),
    );
    for w in packets.windows(2) {
        assert_eq!(w[1].seq_no, w[0].seq_no + 1, "sequence numbers continue");
    }
    let starts: Vec<&OutPacket> = packets
        .iter()
        .filter(|p| vp8::starts_frame(&p.payload))
        .collect();
    assert_eq!(starts.len() as u64, 2 * n + 6);
    for w in starts.windows(2) {
        assert_eq!(
            w[1].rtp_time.wrapping_sub(w[0].rtp_time),
            18_000,
            "one 5 fps frame"
        );
        assert_eq!(w[1].at - w[0].at, Duration::from_millis(200));
        assert_eq!(
            w[1].picture_id.unwrap(),
            (w[0].picture_id.unwrap() + 1) & 0x7fff,
            "PictureID continues and wraps at 15 bits"
        );
        assert_eq!(w[1].frame_index as u64, (w[0].frame_index as u64 + 1) % n);
    }
    assert!(starts[0].keyframe, "a stream starts with a keyframe");
    // Every frame's last packet, and only it, has the marker.
    for w in packets.windows(2) {
        assert_eq!(w[0].marker, vp8::starts_frame(&w[1].payload));
    }
    assert_eq!(src.keyframes_forced(), 0);
}

#[test]
fn pli_mid_gop_gets_a_keyframe_within_one_frame() {
    let sample = video("screen.ivf");
    let interval = Duration::from_millis(50);
    let t0 = Instant::now();
    let mut src = VideoSource::new(sample.clone(), t0, StreamStart::default());
    // Play to the middle of the first GOP (keyframes every 40 frames), then a PLI arrives between
    // two frames.
    let before = run_video(&mut src, t0 + interval * 15);
    let last = before.last().unwrap();
    assert_eq!(last.frame_index, 15);
    assert!(!sample.frames[16].keyframe, "frame 16 is mid-GOP");
    let pli_at = t0 + interval * 15 + Duration::from_millis(7);
    src.request_keyframe();
    let after = run_video(&mut src, pli_at + interval * 3);
    let next = &after[0];
    assert!(next.keyframe, "the next frame out is a keyframe");
    assert!(sample.frames[next.frame_index].keyframe);
    assert!(
        next.at >= pli_at && next.at - pli_at <= interval,
        "within one frame interval"
    );
    assert_eq!(
        next.rtp_time,
        before[0].rtp_time + 16 * 4_500,
        "RTP time does not jump"
    );
    assert_eq!(next.seq_no, last.seq_no + 1);
    // The nearest keyframe to frame 16 of 40-frame GOPs is frame 0; playback continues from there.
    assert_eq!(next.frame_index, sample.nearest_keyframe(16));
    let following = after.iter().find(|p| p.at > next.at).unwrap();
    assert_eq!(following.frame_index, next.frame_index + 1);
    assert!(!following.keyframe);
    assert_eq!(src.keyframes_forced(), 1);
}

#[test]
fn simulcast_layers_stay_frame_aligned() {
    let (low, high) = (video("screen_l.ivf"), video("screen_h.ivf"));
    let t0 = Instant::now();
    let mut sc = SimulcastSource::new(
        low.clone(),
        high.clone(),
        t0,
        StreamStart {
            seq_no: 10,
            rtp_time: 777,
            ..Default::default()
        },
        StreamStart {
            seq_no: 20_000,
            rtp_time: 5, // overridden: one capture clock for both layers
            ..Default::default()
        },
    )
    .unwrap();
    let until = t0 + low.duration() + Duration::from_secs(3); // across the loop point
    let mut starts: Vec<(Rid, OutPacket)> = Vec::new();
    let mut last_at = t0;
    while sc.next_deadline() <= until {
        let now = sc.next_deadline();
        for (rid, p) in sc.poll_until(now) {
            assert!(p.at >= last_at, "packets come out in time order");
            last_at = p.at;
            if vp8::starts_frame(&p.payload) {
                starts.push((rid, p));
            }
        }
    }
    let l: Vec<&OutPacket> = starts
        .iter()
        .filter(|(r, _)| *r == Rid::Low)
        .map(|(_, p)| p)
        .collect();
    let h: Vec<&OutPacket> = starts
        .iter()
        .filter(|(r, _)| *r == Rid::High)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(h.len(), 4 * l.len() - 3);
    for (k, lp) in l.iter().enumerate() {
        let hp = h[4 * k];
        assert_eq!(lp.at, hp.at, "l frame {k} captured with h frame {}", 4 * k);
        assert_eq!(lp.rtp_time, hp.rtp_time);
        assert_eq!(hp.frame_index, 4 * lp.frame_index, "same picture content");
    }
    let mismatched = SimulcastSource::new(
        video("camera.ivf"),
        high,
        t0,
        StreamStart::default(),
        StreamStart::default(),
    );
    assert!(mismatched.is_err(), "30 fps cannot align with 20 fps");
}

#[test]
fn participants_share_payloads() {
    let sample = audio("speech-97.ogg");
    let t0 = Instant::now();
    let mut a = AudioSource::new(sample.clone(), t0, StreamStart::default());
    let mut b = AudioSource::new(
        sample.clone(),
        t0,
        StreamStart {
            seq_no: 99,
            ..Default::default()
        },
    );
    let pa = a.poll(t0).unwrap();
    let pb = b.poll(t0).unwrap();
    assert!(
        Arc::ptr_eq(&pa.payload, &pb.payload),
        "no per-participant copy"
    );
    assert!(Arc::ptr_eq(&pa.payload, &sample.frames[0].payload));
    assert!(a.poll(t0).is_none(), "nothing more is due yet");
    assert_eq!(a.next_deadline(), t0 + Duration::from_millis(20));
}

/// rtcd's VAD (specs/rtcd.md §3.5): std-dev (Bessel, rounded) of the last 50 levels; on above 10,
/// off below 4 and not sooner than 2 s after on. Returns the number of on and off switches.
fn rtcd_vad(levels: impl Iterator<Item = u8>) -> (usize, usize) {
    let mut window: std::collections::VecDeque<f64> = Default::default();
    let (mut on, mut ons, mut offs, mut since_on) = (false, 0, 0, 0usize);
    for l in levels {
        window.push_back(f64::from(l));
        if window.len() > 50 {
            window.pop_front();
        }
        since_on += 1;
        if window.len() < 50 {
            continue;
        }
        let mean = window.iter().sum::<f64>() / 50.0;
        let var = window.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 49.0;
        let sd = var.sqrt().round();
        if !on && sd > 10.0 {
            on = true;
            ons += 1;
            since_on = 0;
        } else if on && sd < 4.0 && since_on >= 100 {
            on = false;
            offs += 1;
        }
    }
    (ons, offs)
}

#[test]
fn audio_levels_drive_vad_like_speech() {
    let t0 = Instant::now();
    let mut talk = AudioSource::new(audio("conversation.ogg"), t0, StreamStart::default());
    let packets = run_audio(&mut talk, t0, Duration::from_secs(40));
    let (ons, offs) = rtcd_vad(packets.iter().map(|p| p.audio_level.unwrap()));
    assert!(
        ons >= 4 && offs >= 4,
        "talk spurts switch VAD: {ons} on, {offs} off"
    );
    let mut speech = AudioSource::new(audio("speech-89.ogg"), t0, StreamStart::default());
    let packets = run_audio(&mut speech, t0, Duration::from_secs(20));
    let (ons, _) = rtcd_vad(packets.iter().map(|p| p.audio_level.unwrap()));
    assert!(ons >= 1, "continuous speech turns VAD on");
    let (ons, _) = rtcd_vad(std::iter::repeat_n(127, 1000));
    assert_eq!(ons, 0, "silence never does");
}
