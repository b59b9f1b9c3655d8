//! A call: the sessions of one `(groupID, callID)` and the tracks they publish.

use super::session::SessionIdx;
use super::track::SourceId;

/// Members and published tracks of one call. A call lives on one SFU and is removed when its
/// last session leaves.
#[derive(Debug, Default)]
pub struct Call {
    pub sessions: Vec<SessionIdx>,
    /// The single screen sharer (rtcd allows one per call).
    pub screen_sharer: Option<SessionIdx>,
    pub sources: Vec<SourceId>,
}

/// Key of a call: group (the plugin's clientID) and call id.
pub type CallKey = (String, String);
