//! The one place that turns format structs into bytes and back. Every
//! structure on storage goes through [`encode`] and [`decode`], which pin
//! bincode 2 to little-endian, fixed-width integers; `docs/format.md` spells
//! out the resulting layout and the golden vectors below freeze it.

use bincode::{Decode, Encode};

/// Largest structure we agree to decode (defends against length bombs).
pub const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_DECODE_BYTES>()
}

/// Serialises a format structure. Refuses (rather than write) anything
/// larger than [`decode`] accepts: no reader could ever open it.
pub fn encode<T: Encode>(value: &T) -> Result<Vec<u8>, String> {
    encode_within(value, MAX_DECODE_BYTES)
}

fn encode_within<T: Encode>(value: &T, limit: usize) -> Result<Vec<u8>, String> {
    let bytes = bincode::encode_to_vec(value, config()).map_err(|e| e.to_string())?;
    if bytes.len() > limit {
        return Err(format!(
            "{} bytes encoded, more than the {limit} a reader decodes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Deserialises a format structure; the whole input must be consumed.
pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::decode_from_slice::<T, _>(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Encode, Decode, Debug, PartialEq)]
    struct Sample {
        kind: u8,
        id: [u8; 4],
        offset: u32,
        time: i64,
        name: String,
        tags: Vec<String>,
        parent: Option<[u8; 2]>,
    }

    /// Golden vector: if this changes, the on-storage format changed.
    #[test]
    fn layout_is_frozen() {
        let s = Sample {
            kind: 2,
            id: [0xde, 0xad, 0xbe, 0xef],
            offset: 0x0102_0304,
            time: -2,
            name: "ab".into(),
            tags: vec!["t".into()],
            parent: Some([7, 8]),
        };
        let bytes = encode(&s).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "02",               // u8
                "deadbeef",         // [u8; 4] raw
                "04030201",         // u32 LE
                "feffffffffffffff", // i64 LE
                "0200000000000000",
                "6162", // String: u64 len + UTF-8
                "0100000000000000",
                "0100000000000000",
                "74", // Vec<String>
                "01",
                "0708", // Option: tag + value
            )
        );
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert!(decode::<u32>(&bytes).is_err());
    }

    #[test]
    fn absurd_lengths_are_rejected_not_allocated() {
        let bytes = hex::decode("ffffffffffffff7f").unwrap();
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

    #[test]
    fn nothing_is_encoded_that_decoding_would_refuse() {
        let big = vec![7u8; 1000];
        assert!(encode_within(&big, 1008).is_ok());
        let err = encode_within(&big, 1007).unwrap_err();
        assert!(err.contains("more than the 1007"), "{err}");
    }

    proptest! {
        #[test]
        fn round_trip(kind: u8, id: [u8; 4], offset: u32, time: i64, name: String,
                      tags: Vec<String>, parent: Option<[u8; 2]>) {
            let s = Sample { kind, id, offset, time, name, tags, parent };
            prop_assert_eq!(decode::<Sample>(&encode(&s).unwrap()).unwrap(), s);
        }
    }
}
