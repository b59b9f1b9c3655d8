//! Observations the SFU core reports for metrics; the I/O layer aggregates them into `rtcd_*`.

/// `rtcd_rtc_errors_total{type}` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Rtp,
    Signaling,
    Ice,
    Track,
    SignalingLockTimeout,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Rtp => "rtp",
            ErrorKind::Signaling => "signaling",
            ErrorKind::Ice => "ice",
            ErrorKind::Track => "track",
            ErrorKind::SignalingLockTimeout => "signaling_lock_timeout",
        }
    }
}

/// Histograms labelled by `groupID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistMetric {
    ConnectionTime,
    DcOpenTime,
    LockGrabTime,
    LockLockedTime,
    ClientLossRate,
    ClientRtt,
    ClientJitter,
}

/// Direction label of `rtcd_rtc_rtp_tracks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackDirection {
    In,
    Out,
}

/// One observation.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    SessionOpened {
        group: String,
    },
    SessionClosed {
        group: String,
    },
    /// `rtcd_rtc_conn_states_total{type}`.
    ConnState(&'static str),
    Error {
        group: String,
        kind: ErrorKind,
    },
    Observe {
        group: String,
        metric: HistMetric,
        value: f64,
    },
    /// `rtcd_rtc_rtp_tracks_total` moves by `delta`.
    Tracks {
        group: String,
        direction: TrackDirection,
        mime: &'static str,
        delta: i64,
    },
}
