//! Every kernel this CPU runs must agree with the `sha2` crate on every
//! message length, lane count and lane mix.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use sha256x::{digest, digest_many, pad, Kernel, State, BLOCK, IV};

fn reference(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// Hash `messages` with `kernel` the way a streaming caller does: whole
/// blocks in lock step over as many lanes as there are messages, then each
/// message's padding, also through the kernel.
fn hash_with(kernel: Kernel, messages: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for group in messages.chunks(kernel.lanes()) {
        let mut states: Vec<State> = vec![IV; group.len()];
        let common = group.iter().map(|m| m.len() / BLOCK).min().unwrap_or(0) * BLOCK;
        // Feed the common part in uneven steps to exercise resumption.
        let mut at = 0;
        let mut step = BLOCK;
        while at < common {
            let n = step.min(common - at);
            let data: Vec<&[u8]> = group.iter().map(|m| &m[at..at + n]).collect();
            kernel.compress(&mut states, &data);
            at += n;
            step = step * 3 % (7 * BLOCK) + BLOCK;
        }
        for (state, message) in states.iter_mut().zip(group) {
            let rest = &message[common..];
            let whole = rest.len() / BLOCK * BLOCK;
            let mut one = [*state];
            kernel.compress(&mut one, &[&rest[..whole]]);
            let (last, len) = pad(&rest[whole..], message.len() as u64);
            kernel.compress(&mut one, &[&last[..len]]);
            out.push(digest(&one[0]));
        }
    }
    out
}

fn assert_every_kernel_agrees(messages: &[Vec<u8>]) {
    let expected: Vec<[u8; 32]> = messages.iter().map(|m| reference(m)).collect();
    for kernel in Kernel::available() {
        assert_eq!(hash_with(kernel, messages), expected, "{}", kernel.name());
    }
}

#[test]
fn known_answers() {
    let abc = digest_many(&[b"abc", b""]);
    assert_eq!(
        hex(&abc[0]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&abc[1]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_kernel_on_every_length_around_the_padding_edges() {
    let lengths: Vec<usize> = (0..=200).chain([1000, 4095, 4096, 4097, 65_599]).collect();
    let messages: Vec<Vec<u8>> = lengths
        .iter()
        .map(|&n| (0..n).map(|i| (i * 31 + n) as u8).collect())
        .collect();
    assert_every_kernel_agrees(&messages);
}

#[test]
fn lanes_are_independent() {
    // Sixteen equal-length messages differing in one byte each: a lane that
    // leaks into another would make two digests equal or wrong.
    let messages: Vec<Vec<u8>> = (0..16u8)
        .map(|i| {
            let mut m = vec![0u8; 4096];
            m[usize::from(i) * 200] = i + 1;
            m
        })
        .collect();
    assert_every_kernel_agrees(&messages);
}

#[test]
fn choosing_a_kernel() {
    assert_eq!(Kernel::scalar().lanes(), 1);
    if let Some(sha_ni) = Kernel::sha_ni() {
        // The SHA extensions win at any count of messages.
        assert_eq!(sha_ni.lanes(), 2);
        assert!(Kernel::available().contains(&sha_ni));
        for streams in [1, 2, 3, 1000] {
            assert_eq!(Kernel::for_streams(streams), sha_ni);
        }
        return;
    }
    let widest = Kernel::available()
        .iter()
        .map(|k| k.lanes())
        .max()
        .unwrap_or(1);
    assert_eq!(Kernel::for_streams(1000).lanes(), widest);
    assert!(Kernel::for_streams(3).lanes() >= 3.min(widest));
}

#[test]
fn many_messages_of_one_length_and_of_mixed_lengths() {
    // Pairs of one length finish in lock step; mixed ones one by one.
    for lengths in [
        vec![4096; 33],
        vec![4096, 100, 0, 4097, 55, 56, 64, 9000, 1],
    ] {
        let messages: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 13 + k) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let expected: Vec<[u8; 32]> = messages.iter().map(|m| reference(m)).collect();
        assert_eq!(digest_many(&refs), expected);
    }
}

#[test]
#[should_panic(expected = "whole number of blocks")]
fn partial_blocks_are_refused() {
    let mut states = [IV];
    Kernel::scalar().compress(&mut states, &[&[0u8; 10]]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agrees_with_sha2(messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 1..40)) {
        let expected: Vec<[u8; 32]> = messages.iter().map(|m| reference(m)).collect();
        for kernel in Kernel::available() {
            prop_assert_eq!(hash_with(kernel, &messages), expected.clone(), "{}", kernel.name());
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(digest_many(&refs), expected);
    }
}
