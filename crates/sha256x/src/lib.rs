//! SHA-256 over several independent messages at once.
//!
//! One SHA-256 stream cannot be spread over SIMD lanes (every block depends
//! on the one before), but several streams can: lane `i` of each vector
//! register holds message `i`'s working state, so one AVX2 instruction
//! advances 8 messages and one AVX-512 instruction 16 ("multi-buffer"
//! hashing). On a CPU without the SHA extensions this hashes many files
//! several times faster than the best one-message code. On a CPU with them
//! (SHA-NI), each `sha256rnds2` waits on the one before, so two messages'
//! rounds interleaved go about 1.8x as fast as one message's
//! ([`Kernel::sha_ni`]).
//!
//! The crate holds the block function and the padding; the caller feeds the
//! blocks. [`Kernel::compress`] advances up to [`Kernel::lanes`] states by the
//! same number of blocks, [`pad`] builds a message's final block(s) and
//! [`digest`] turns a state into the hash. [`digest_many`] puts them together
//! for messages in memory.
//!
//! ```
//! let digests = sha256x::digest_many(&[b"abc", b""]);
//! assert_eq!(
//!     digests[0][..4],
//!     [0xba, 0x78, 0x16, 0xbf],
//! );
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "x86_64")]
mod x86;

/// Bytes in one SHA-256 block.
pub const BLOCK: usize = 64;

/// A SHA-256 chaining state: eight 32-bit words.
pub type State = [u32; 8];

/// The initial state (FIPS 180-4, 5.3.3).
pub const IV: State = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The round constants (FIPS 180-4, 4.2.2).
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// The environment variable that, set to `off`, makes
/// [`has_sha_instructions`] false on any CPU.
pub const SHA_NI_SWITCH: &str = "AUDITPACK_SHA_NI";

/// Whether this CPU has SHA-256 instructions (x86 SHA-NI) and they are not
/// switched off. One stream on them is faster than any lane of the SIMD
/// kernels, so callers should prefer [`Kernel::sha_ni`] for messages they can
/// pair, or a library that uses them (such as `ring`) for one message, when
/// this is true.
///
/// With [`SHA_NI_SWITCH`] set to `off` when it is first asked, this is false
/// for the rest of the process, so that a machine with SHA-NI runs, tests and
/// measures the code of a machine without it (the digests are the same).
pub fn has_sha_instructions() -> bool {
    static USE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USE.get_or_init(|| {
        cpu_has_sha_instructions()
            && std::env::var_os(SHA_NI_SWITCH).is_none_or(|value| value != "off")
    })
}

/// Whether this CPU has SHA-256 instructions, switched off or not.
pub fn cpu_has_sha_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Which block function a [`Kernel`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    /// Portable Rust, one message at a time.
    Scalar,
    /// 4 lanes in 128-bit registers, AVX2 encoding.
    #[cfg(target_arch = "x86_64")]
    Avx2x4,
    /// 8 lanes in 256-bit registers.
    #[cfg(target_arch = "x86_64")]
    Avx2x8,
    /// 4 lanes with AVX-512VL rotates and three-input logic.
    #[cfg(target_arch = "x86_64")]
    Avx512x4,
    /// 8 lanes with AVX-512VL.
    #[cfg(target_arch = "x86_64")]
    Avx512x8,
    /// 16 lanes in 512-bit registers.
    #[cfg(target_arch = "x86_64")]
    Avx512x16,
    /// 2 messages interleaved through the SHA extensions.
    #[cfg(target_arch = "x86_64")]
    ShaNi,
}

/// A SHA-256 block function for up to [`Kernel::lanes`] messages at once.
///
/// A kernel can only be had for instructions this CPU runs, which is what
/// makes [`Kernel::compress`] safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    imp: Imp,
}

impl Kernel {
    /// The portable kernel: one lane, any CPU.
    pub fn scalar() -> Kernel {
        Kernel { imp: Imp::Scalar }
    }

    /// Every kernel this CPU can run, narrowest first, the scalar one first
    /// of all.
    pub fn available() -> Vec<Kernel> {
        let mut out = vec![Kernel::scalar()];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(kernel) = Kernel::sha_ni() {
                out.push(kernel);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                out.push(Kernel { imp: Imp::Avx2x4 });
                out.push(Kernel { imp: Imp::Avx2x8 });
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                out.push(Kernel { imp: Imp::Avx512x4 });
                out.push(Kernel { imp: Imp::Avx512x8 });
                out.push(Kernel {
                    imp: Imp::Avx512x16,
                });
            }
        }
        out
    }

    /// The two-message SHA-NI kernel, where the CPU has the SHA extensions
    /// (with SSSE3 and SSE4.1, which every such CPU has). Each of its lanes
    /// is faster than a lane of any SIMD kernel, and its two together about
    /// 1.8x the best one-message code (3.2 GB/s against `sha2`'s 1.76 on
    /// one core of an AMD EPYC, `cargo bench -p auditpack-sha256x`):
    /// callers hashing many messages in memory should pair them on it.
    pub fn sha_ni() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        {
            let has = has_sha_instructions()
                && std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("sse4.1");
            has.then_some(Kernel { imp: Imp::ShaNi })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// The best kernel of this CPU for `streams` messages hashed side by
    /// side: the SHA-NI one where the CPU has it, else the narrowest one with
    /// a lane for each (the widest one if none has), preferring AVX-512 to
    /// AVX2 at the same width.
    pub fn for_streams(streams: usize) -> Kernel {
        if let Some(kernel) = Kernel::sha_ni() {
            return kernel;
        }
        let all = Kernel::available();
        let widest = all
            .iter()
            .copied()
            .max_by_key(|k| (k.lanes(), k.rank()))
            .unwrap_or_else(Kernel::scalar);
        all.iter()
            .copied()
            .filter(|k| k.lanes() >= streams)
            .min_by_key(|k| (k.lanes(), std::cmp::Reverse(k.rank())))
            .unwrap_or(widest)
    }

    /// How many messages one call advances.
    pub fn lanes(self) -> usize {
        match self.imp {
            Imp::Scalar => 1,
            #[cfg(target_arch = "x86_64")]
            Imp::ShaNi => 2,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x4 | Imp::Avx512x4 => 4,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x8 | Imp::Avx512x8 => 8,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x16 => 16,
        }
    }

    /// A short name for logs and benchmarks, such as `avx512x16`.
    pub fn name(self) -> &'static str {
        match self.imp {
            Imp::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Imp::ShaNi => "sha-ni-x2",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x4 => "avx2x4",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x8 => "avx2x8",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x4 => "avx512x4",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x8 => "avx512x8",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x16 => "avx512x16",
        }
    }

    /// Preference among kernels of the same width.
    fn rank(self) -> u8 {
        match self.imp {
            Imp::Scalar => 0,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x4 | Imp::Avx2x8 => 1,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x4 | Imp::Avx512x8 | Imp::Avx512x16 => 2,
            #[cfg(target_arch = "x86_64")]
            Imp::ShaNi => 3,
        }
    }

    /// Advance `states[i]` over the blocks of `data[i]`, for every `i`.
    ///
    /// # Panics
    /// When `states` and `data` differ in length, hold more than
    /// [`Kernel::lanes`] messages, or the data slices differ in length or are
    /// not whole blocks: these are the caller's bugs, never the data's.
    pub fn compress(self, states: &mut [State], data: &[&[u8]]) {
        assert_eq!(states.len(), data.len(), "one data slice per state");
        assert!(states.len() <= self.lanes(), "more messages than lanes");
        let Some(len) = data.first().map(|d| d.len()) else {
            return;
        };
        assert!(
            len % BLOCK == 0 && data.iter().all(|d| d.len() == len),
            "data slices must be the same whole number of blocks"
        );
        let blocks = len / BLOCK;
        if blocks == 0 {
            return;
        }
        match self.imp {
            Imp::Scalar => {
                for (state, bytes) in states.iter_mut().zip(data) {
                    scalar_compress(state, bytes);
                }
            }
            // SAFETY: a kernel of each of these is only made by `available`
            // after the CPU reported the instructions it needs; the slices
            // were checked above to hold `blocks` whole blocks each.
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x4 => unsafe { x86::avx2x4::run(states, data, blocks) },
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2x8 => unsafe { x86::avx2x8::run(states, data, blocks) },
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x4 => unsafe { x86::avx512x4::run(states, data, blocks) },
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x8 => unsafe { x86::avx512x8::run(states, data, blocks) },
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512x16 => unsafe { x86::avx512x16::run(states, data, blocks) },
            #[cfg(target_arch = "x86_64")]
            Imp::ShaNi => unsafe { x86::shani::run(states, data, blocks) },
        }
    }
}

/// The final block(s) of a message of `total` bytes whose last
/// `tail.len() < 64` bytes, not yet compressed, are `tail`: the tail, the
/// `0x80` marker, zeros and the length in bits. Returns the buffer and how
/// many of its bytes (64 or 128) to compress.
///
/// # Panics
/// When `tail` is a whole block or longer.
pub fn pad(tail: &[u8], total: u64) -> ([u8; 2 * BLOCK], usize) {
    assert!(tail.len() < BLOCK, "the tail is less than a block");
    let mut out = [0u8; 2 * BLOCK];
    out[..tail.len()].copy_from_slice(tail);
    out[tail.len()] = 0x80;
    let len = if tail.len() < BLOCK - 8 {
        BLOCK
    } else {
        2 * BLOCK
    };
    out[len - 8..len].copy_from_slice(&total.wrapping_mul(8).to_be_bytes());
    (out, len)
}

/// The hash a finished state stands for.
pub fn digest(state: &State) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-256 of each message, hashed side by side with the best kernel of
/// this CPU ([`Kernel::for_streams`]).
pub fn digest_many(messages: &[&[u8]]) -> Vec<[u8; 32]> {
    let kernel = Kernel::for_streams(messages.len());
    // What finishes one message alone: the kernel itself where one lane of
    // it is cheap, else the portable code.
    let alone = match kernel.imp {
        #[cfg(target_arch = "x86_64")]
        Imp::ShaNi => kernel,
        _ => Kernel::scalar(),
    };
    let mut out = Vec::with_capacity(messages.len());
    let mut states = Vec::with_capacity(kernel.lanes());
    for group in messages.chunks(kernel.lanes()) {
        states.clear();
        states.resize(group.len(), IV);
        // Whole blocks every message of the group still has, in lock step;
        // then the rest and padding, in lock step too when they are as long
        // (messages of one length), else message by message.
        let common = group.iter().map(|m| m.len() / BLOCK).min().unwrap_or(0) * BLOCK;
        let heads: Vec<&[u8]> = group.iter().map(|m| &m[..common]).collect();
        kernel.compress(&mut states, &heads);
        let lasts: Vec<([u8; 2 * BLOCK], usize, &[u8])> = group
            .iter()
            .map(|m| {
                let rest = &m[common..];
                let whole = rest.len() / BLOCK * BLOCK;
                let (last, len) = pad(&rest[whole..], m.len() as u64);
                (last, len, &rest[..whole])
            })
            .collect();
        let together = lasts
            .iter()
            .all(|(_, len, rest)| rest.is_empty() && *len == lasts[0].1);
        if together {
            let tails: Vec<&[u8]> = lasts.iter().map(|(last, len, _)| &last[..*len]).collect();
            kernel.compress(&mut states, &tails);
        } else {
            for (state, (last, len, rest)) in states.iter_mut().zip(&lasts) {
                let one = std::slice::from_mut(state);
                alone.compress(one, &[rest]);
                alone.compress(one, &[&last[..*len]]);
            }
        }
        out.extend(states.iter().map(digest));
    }
    out
}

/// The portable block function over whole blocks.
fn scalar_compress(state: &mut State, blocks: &[u8]) {
    for block in blocks.chunks_exact(BLOCK) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for t in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}
