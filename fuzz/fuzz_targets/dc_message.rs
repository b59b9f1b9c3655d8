//! Fuzzes the data-channel message decoder (including zlib inflation of SDP payloads) and the legacy
//! text recogniser: no panics, and accepted messages re-encode to the same message.
#![no_main]

use callsref::proto::rtcd::{DcMessage, LegacyText};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = LegacyText::parse(data);
    if let Ok(msg) = DcMessage::decode(data) {
        let encoded = msg.encode();
        let again = DcMessage::decode(&encoded).expect("a re-encoded message decodes");
        // Compare encodings: NaN floats are never equal to themselves.
        assert_eq!(again.encode(), encoded);
    }
});
