//! Throughput of every kernel this CPU runs, all lanes busy, data in cache:
//! `cargo bench -p auditpack-sha256x`. Prints MB/s over all lanes and per
//! lane, next to the `sha2` crate on one message.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use sha2::Digest;
use sha256x::{Kernel, IV};

fn main() {
    // 64 KiB per lane, rehashed until about 1 GiB has gone through.
    let chunk = vec![0x5au8; 64 * 1024];
    let rounds = 16 * 1024;
    let t = Instant::now();
    let mut hasher = sha2::Sha256::new();
    for _ in 0..rounds / 16 {
        hasher.update(&chunk);
    }
    std::hint::black_box(hasher.finalize());
    let mb = (rounds / 16 * chunk.len()) as f64 / 1e6;
    println!(
        "{:<12} {:>8.0} MB/s",
        "sha2",
        mb / t.elapsed().as_secs_f64()
    );
    for kernel in Kernel::available() {
        let lanes = kernel.lanes();
        let mut states = vec![IV; lanes];
        let data: Vec<&[u8]> = vec![&chunk; lanes];
        let calls = rounds / lanes.max(1) / if lanes == 1 { 16 } else { 1 };
        let t = Instant::now();
        for _ in 0..calls {
            kernel.compress(&mut states, &data);
        }
        std::hint::black_box(&states);
        let mb = (calls * lanes * chunk.len()) as f64 / 1e6;
        let rate = mb / t.elapsed().as_secs_f64();
        println!(
            "{:<12} {rate:>8.0} MB/s  ({:.0} MB/s per lane, {lanes} lanes)",
            kernel.name(),
            rate / lanes as f64
        );
    }
}
