//! End-to-end tests: each runs the real `coffer` binary against a real
//! repository directory and checks what a user would see.

mod azure;
mod check;
mod crash;
mod dedup;
mod deploy;
mod errors;
mod forget;
mod full_disk;
mod garbage_server;
mod golden;
mod keys;
mod metrics;
mod output;
mod postgres;
mod producer;
mod prune;
mod requests;
mod round_trip;
mod s3;
mod status;
mod streams;
