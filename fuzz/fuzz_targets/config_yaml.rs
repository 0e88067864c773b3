//! Fuzz target: config loading from YAML text, `Config::from_yaml` (parse, `${VAR}`
//! interpolation, typed decoding, validation: what `serve`, `check-config` and reloads run on a
//! config file), then the masked form `check-config` prints.
//!
//! Variables whose name starts with `UNSET` are unset; every other one reads as its name in
//! lower case, so interpolation succeeds and reaches the typed decoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::Config;

fn env(name: &str) -> Option<String> {
    (!name.starts_with("UNSET")).then(|| name.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_yaml(text, &env) {
        let _ = serde_json::to_string(&config.masked()).expect("the masked config serializes");
    }
});
