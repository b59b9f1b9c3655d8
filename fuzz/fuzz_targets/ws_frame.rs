//! Fuzzes the plugin ⇄ rtcd WebSocket frame decoder: it must never panic, and any frame it accepts
//! must survive re-encoding unchanged (decode ∘ encode is the identity on decoded messages).
#![no_main]

use callsref::proto::rtcd::WsMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = WsMessage::decode(data) {
        let again = WsMessage::decode(&msg.encode()).expect("a re-encoded frame decodes");
        assert_eq!(again, msg);
    }
});
