//! End-to-end tests: each runs the real `coffer` binary against a real
//! repository directory and checks what a user would see.

/// Runs each `fn name(store: Store)` as one test per store (`name::local`,
/// `name::s3`, `name::azure`), so a failure names its store and the stores
/// run in parallel. A store whose test server is missing says so and is
/// skipped, or fails when CI requires it (see `coffer_e2e::store_available`).
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use coffer_e2e::{store_available, Store};

                #[test]
                fn local() {
                    super::$name(Store::Local)
                }

                #[test]
                fn s3() {
                    if store_available(Store::S3) {
                        super::$name(Store::S3)
                    }
                }

                #[test]
                fn azure() {
                    if store_available(Store::Azure) {
                        super::$name(Store::Azure)
                    }
                }
            }
        )*
    };
}

mod azure;
mod check;
mod copy;
mod crash;
mod dedup;
mod deltas;
mod deploy;
mod errors;
mod first_contact;
mod folders;
mod forget;
mod full_disk;
mod garbage_server;
mod golden;
mod hostile_storage;
mod index_tables;
mod inspect;
mod json;
mod keys;
mod locations;
mod metrics;
mod missing_pack;
mod output;
mod postgres;
mod producer;
mod prune;
mod prune_clock;
mod requests;
mod round_trip;
mod s3;
mod signals;
mod snapshots;
mod status;
mod streams;
