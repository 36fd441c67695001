//! Sizes and addresses for people, the same in every command: sizes in binary units with one
//! decimal (`512 B`, `1.5 KiB`, `23.3 MiB`, `11.8 GiB`, `2.0 TiB`), addresses as `0x` and lower-case
//! hex. JSON keeps exact numbers (see `docs/inspection.md`); these are for text output.

/// A byte count with a binary unit: `B` below 1 KiB (no decimal), else KiB, MiB, GiB or TiB with
/// one decimal.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    // Round first, so 1023.96 KiB reads 1.0 MiB rather than 1024.0 KiB.
    while (v * 10.0).round() / 10.0 >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// A count of KiB (as `/proc` gives them, there spelled `kB`), shown as [`bytes`] does.
pub fn kib(kb: u64) -> String {
    bytes(kb.saturating_mul(1024))
}

/// An address or offset: `0x7f1a2b600000`.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Serializes a `u64` as a [`hex`] string (`#[serde(serialize_with = "crate::units::hex_json")]`).
pub fn hex_json<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(bytes(23_431_168), "22.3 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(5 << 40), "5.0 TiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
        assert_eq!(kib(0), "0 B");
        assert_eq!(kib(812), "812.0 KiB");
        assert_eq!(kib(24_683_584), "23.5 GiB");
        assert_eq!(kib(u64::MAX), bytes(u64::MAX));
    }

    #[test]
    fn addresses_are_lower_case_hex() {
        assert_eq!(hex(0x7fff_0000), "0x7fff0000");
        assert_eq!(hex(0), "0x0");
        let v = serde_json::to_value(Wrap { a: 0xabc }).unwrap();
        assert_eq!(v, serde_json::json!({ "a": "0xabc" }));
    }

    #[derive(serde::Serialize)]
    struct Wrap {
        #[serde(serialize_with = "hex_json")]
        a: u64,
    }
}
