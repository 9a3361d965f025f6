//! Typed 32-byte identifiers (blob, pack, index, snapshot and key ids) with hex
//! display and prefix matching. No I/O and no hashing policy lives here.

use std::fmt;

use bincode::{Decode, Encode};

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// Lower-case hex of all 32 bytes.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown in listings.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 MAC of a blob's plaintext.
    BlobId
);
id_type!(
    /// BLAKE3 hash of a pack file's bytes.
    PackId
);
id_type!(
    /// BLAKE3 hash of an index file's bytes.
    IndexId
);
id_type!(
    /// BLAKE3 hash of a snapshot file's bytes.
    SnapshotId
);
id_type!(
    /// BLAKE3 hash of a key file's bytes.
    KeyId
);

/// Plain (unkeyed) BLAKE3 of stored bytes: names packs, index, snapshot and
/// key files so storage corruption is detectable by anyone.
pub fn content_hash(bytes: &[u8]) -> [u8; ID_LEN] {
    *blake3::hash(bytes).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_form() {
        let id = SnapshotId(content_hash(b"x"));
        assert_eq!(SnapshotId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short(), &id.to_hex()[..8]);
        assert_eq!(SnapshotId::from_hex("zz"), None);
    }
}
