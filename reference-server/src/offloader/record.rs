//! The stored job record: the Job JSON of offloader.md §2.1 in Go field order, with stop_at and
//! output_data omitted while empty.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job as stored and as returned by POST /jobs and GET /jobs/{id}.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    #[serde(rename = "type")]
    pub job_type: String,
    pub max_duration_sec: i64,
    pub runner: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub input_data: Map<String, Value>,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub start_at: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stop_at: i64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub output_data: Map<String, Value>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl JobRecord {
    /// The compact JSON, as stored.
    pub fn to_json(&self) -> Vec<u8> {
        // Invariant: the record has only string keys and JSON values, which always serialise.
        serde_json::to_vec(self).expect("job record serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
