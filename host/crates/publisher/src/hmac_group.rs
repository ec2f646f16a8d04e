//! HMAC-SHA256 of up to sixteen messages at once. One SHA-256 stream is bound by the SHA-NI
//! round instruction: on CPUs where its latency is the limit, interleaving the rounds of
//! four independent messages keeps the unit busy (about twice the throughput of one
//! stream on the AMD machines measured); where its throughput is the limit (Intel's
//! server cores), sixteen messages hashed in the sixteen 32-bit lanes of AVX-512 registers
//! go faster still. Which of the two a process uses is measured once, at first use
//! (BENCHMARKS §2). Without either, `sha2` hashes one at a time.

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256's round constants (both x86 engines load them).
#[cfg(target_arch = "x86_64")]
const K32: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The most messages hashed together.
pub const LANES: usize = 16;

/// The messages SHA-NI interleaves.
const SHA_NI_LANES: usize = 4;

/// An HMAC-SHA256 key as its two midstates: SHA-256 after the key block XOR ipad, and
/// after the key block XOR opad. Every message then starts from a copy.
#[derive(Clone)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    pub fn new(key: &[u8]) -> HmacKey {
        // RFC 2104: a key longer than the block is hashed first, a shorter one is
        // zero-padded.
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = IV;
        let mut outer = IV;
        compress1(&mut inner, &[block.map(|b| b ^ 0x36)]);
        compress1(&mut outer, &[block.map(|b| b ^ 0x5c)]);
        HmacKey { inner, outer }
    }

    /// The HMACs of `messages` (at most [`LANES`]) into `out`. Each message is padded
    /// in place (SHA-256's `0x80 0… length` tail is appended): callers pass scratch
    /// buffers holding the message and nothing else.
    ///
    /// # Panics
    /// With more than [`LANES`] messages, or fewer places in `out` than messages.
    pub fn sign(&self, messages: &mut [Vec<u8>], out: &mut [[u8; 32]]) {
        self.sign_with(Engine::get(), messages, out)
    }

    /// [`HmacKey::sign`] with a given engine (the tests run each).
    fn sign_with(&self, engine: Engine, messages: &mut [Vec<u8>], out: &mut [[u8; 32]]) {
        let n = messages.len();
        assert!(n <= LANES, "at most {LANES} messages at once, not {n}");
        assert!(out.len() >= n, "room for {n} digests, not {}", out.len());
        let mut states = [self.inner; LANES];
        for m in messages.iter_mut() {
            // The key block precedes the message in the hashed length.
            pad(m, 64);
        }
        let blocks: [&[[u8; 64]]; LANES] =
            std::array::from_fn(|i| messages.get(i).map_or(&[][..], |m| m.as_chunks().0));
        engine.compress(&mut states[..n], &blocks[..n]);
        // The outer hash: one block each, the inner digest then the padding.
        let mut tails = [[0u8; 64]; LANES];
        for (tail, state) in tails.iter_mut().zip(&states).take(n) {
            for (bytes, word) in tail.chunks_exact_mut(4).zip(state) {
                bytes.copy_from_slice(&word.to_be_bytes());
            }
            tail[32] = 0x80;
            tail[56..].copy_from_slice(&((64 + 32) * 8u64).to_be_bytes());
        }
        let mut outer = [self.outer; LANES];
        let tails: [&[[u8; 64]]; LANES] = std::array::from_fn(|i| std::slice::from_ref(&tails[i]));
        engine.compress(&mut outer[..n], &tails[..n]);
        for (digest, state) in out.iter_mut().zip(&outer).take(n) {
            for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
                bytes.copy_from_slice(&word.to_be_bytes());
            }
        }
    }
}

/// SHA-256's final padding for a message preceded by `prefix` bytes already hashed.
fn pad(m: &mut Vec<u8>, prefix: u64) {
    let bits = (prefix + m.len() as u64) * 8;
    m.push(0x80);
    let zeros = (64 + 56 - m.len() % 64) % 64;
    m.resize(m.len() + zeros, 0);
    m.extend_from_slice(&bits.to_be_bytes());
}

fn compress1(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    // sha2's own dispatch: SHA-NI where present, portable code elsewhere. A block at a
    // time because its blocks are GenericArrays; `from_slice` only reinterprets.
    for block in blocks {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

/// How this process hashes groups of messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    /// SHA-NI, four messages interleaved (or `sha2`'s portable code without SHA-NI).
    ShaNi,
    /// Sixteen messages in the lanes of AVX-512 registers, for groups of at least
    /// `min` messages (a group costs about the same however many lanes it fills, so
    /// small groups go four at a time).
    Avx512 { min: usize },
}

impl Engine {
    /// Chosen once per process: AVX-512 when the CPU has it and it hashes a group of
    /// compute-sized messages faster than SHA-NI does here (timed on the spot: which is
    /// faster depends on the CPU model, not on a feature flag). `LONGSHORE_HMAC_ENGINE`
    /// (`sha-ni` or `avx512`) overrides the choice, for benchmarks.
    fn get() -> Engine {
        static CHOSEN: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let chosen = Engine::choose();
            log::debug!("HMAC-SHA256 of message groups: {chosen:?}");
            chosen
        })
    }

    fn choose() -> Engine {
        let forced = std::env::var("LONGSHORE_HMAC_ENGINE").ok();
        match forced.as_deref() {
            None | Some("" | "avx512" | "sha-ni") => {}
            Some(other) => {
                log::warn!("LONGSHORE_HMAC_ENGINE={other:?} is neither sha-ni nor avx512: ignored")
            }
        }
        if !avx512::available() || forced.as_deref() == Some("sha-ni") {
            return Engine::ShaNi;
        }
        if forced.as_deref() == Some("avx512") {
            return Engine::Avx512 { min: 2 };
        }
        // Sixteen distinct 22-block messages (a compute sample's signing input: the
        // gathers then touch as many lines as in real use), best of seven runs each,
        // alternating: ~0.3 ms once per process.
        let data: Vec<[[u8; 64]; 22]> = (0..LANES).map(|i| [[i as u8 ^ 0x5a; 64]; 22]).collect();
        let blocks: [&[[u8; 64]]; LANES] = std::array::from_fn(|i| &data[i][..]);
        let time = |f: &dyn Fn(&mut [[u32; 8]])| {
            let mut states = [IV; LANES];
            let t = std::time::Instant::now();
            f(&mut states);
            std::hint::black_box(&states);
            t.elapsed().as_nanos().max(1)
        };
        let (mut narrow, mut wide) = (u128::MAX, u128::MAX);
        for _ in 0..7 {
            narrow = narrow.min(time(&|st| Engine::ShaNi.compress(st, &blocks)));
            // SAFETY: avx512::available() checked above.
            wide = wide.min(time(&|st| unsafe { avx512::compress16(st, &blocks) }));
        }
        Engine::pick(narrow, wide)
    }

    /// The choice from the time of sixteen messages through each engine. AVX-512 must
    /// win by a clear margin: where the two are close (AMD's Zen 4, whose 512-bit units
    /// are double-pumped and whose gathers are slow), the timing is noise and the
    /// gathers fare worse on data that is not already in L1, as in the engine. From
    /// that, it pays from the group size where four-at-a-time would cost as much (the
    /// SHA-NI cost grows with the messages, the lanes' does not).
    fn pick(narrow: u128, wide: u128) -> Engine {
        if wide * 5 > narrow * 4 {
            return Engine::ShaNi;
        }
        let min = (LANES as u128 * wide).div_ceil(narrow) as usize;
        Engine::Avx512 { min: min.max(2) }
    }

    /// Runs the blocks of each state's message (at most [`LANES`]).
    fn compress(self, states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
        match self {
            Engine::Avx512 { min } if states.len() >= min && avx512::available() => {
                // SAFETY: the CPU has AVX-512F/BW (checked, cached by std); at most
                // LANES messages (sign's assertion).
                unsafe { avx512::compress16(states, blocks) };
            }
            _ => {
                for (s, b) in states
                    .chunks_mut(SHA_NI_LANES)
                    .zip(blocks.chunks(SHA_NI_LANES))
                {
                    compress_many(s, b);
                }
            }
        }
    }
}

/// Runs the blocks of each state's message (at most four): the messages that still have
/// blocks go in lockstep for as many blocks as the shortest of them has left, until one
/// is left.
fn compress_many(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
    let n = states.len();
    debug_assert!(n <= SHA_NI_LANES);
    let mut done = [0usize; SHA_NI_LANES];
    if n > 1 && x86::available() {
        loop {
            let mut active = [0usize; SHA_NI_LANES];
            let mut k = 0;
            for (i, b) in blocks.iter().enumerate() {
                if b.len() > done[i] {
                    active[k] = i;
                    k += 1;
                }
            }
            if k < 2 {
                break;
            }
            let active = &active[..k];
            let common = active.iter().map(|&i| blocks[i].len() - done[i]).min();
            let common = common.unwrap_or(0);
            let mut st = [[0u32; 8]; SHA_NI_LANES];
            let mut bl: [&[[u8; 64]]; SHA_NI_LANES] = [&[]; SHA_NI_LANES];
            for (j, &i) in active.iter().enumerate() {
                st[j] = states[i];
                bl[j] = &blocks[i][done[i]..];
            }
            // SAFETY: `available` checked the CPU features the function is compiled for;
            // every message in `bl` has at least `common` blocks.
            unsafe {
                match k {
                    4 => x86::compress_n::<4>(&mut st[..4], &bl[..4], common),
                    3 => x86::compress_n::<3>(&mut st[..3], &bl[..3], common),
                    _ => x86::compress_n::<2>(&mut st[..2], &bl[..2], common),
                }
            }
            for (j, &i) in active.iter().enumerate() {
                states[i] = st[j];
                done[i] += common;
            }
        }
    }
    for (i, (state, b)) in states.iter_mut().zip(blocks).enumerate() {
        if b.len() > done[i] {
            compress1(state, &b[done[i]..]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::K32;
    use core::arch::x86_64::*;

    pub(super) fn available() -> bool {
        // std caches the CPUID answers: this is a load and a test.
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    }

    // The helpers below are inlined into `compress_n`, which enables the features.
    #[inline(always)]
    unsafe fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(v0, v1);
        let t2 = _mm_alignr_epi8(v3, v2, 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), v3)
    }

    /// The state words as SHA-NI wants them: (ABEF, CDGH).
    #[inline(always)]
    unsafe fn load_state(state: &[u32; 8]) -> (__m128i, __m128i) {
        let p = state.as_ptr() as *const __m128i;
        let dcba = _mm_loadu_si128(p);
        let efgh = _mm_shuffle_epi32(_mm_loadu_si128(p.add(1)), 0x1B);
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[inline(always)]
    unsafe fn store_state(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let p = state.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
    }

    /// The first `count` blocks of each of the N messages, their rounds interleaved.
    ///
    /// # Safety
    /// The CPU must have SHA-NI, SSSE3 and SSE4.1 ([`available`]); `states` and
    /// `blocks` hold N entries, each with at least `count` blocks.
    // Lane-indexed loops over several parallel arrays read better than zipped iterators.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress_n<const N: usize>(
        states: &mut [[u32; 8]],
        blocks: &[&[[u8; 64]]],
        count: usize,
    ) {
        assert!(states.len() == N && blocks.len() == N);
        assert!(blocks.iter().all(|b| b.len() >= count));
        let mask = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let mut abef = [_mm_setzero_si128(); N];
        let mut cdgh = [_mm_setzero_si128(); N];
        for s in 0..N {
            (abef[s], cdgh[s]) = load_state(&states[s]);
        }
        for blk in 0..count {
            let (saved_abef, saved_cdgh) = (abef, cdgh);
            let mut w = [[_mm_setzero_si128(); 4]; N];
            for s in 0..N {
                let p = blocks[s][blk].as_ptr() as *const __m128i;
                for (q, word) in w[s].iter_mut().enumerate() {
                    *word = _mm_shuffle_epi8(_mm_loadu_si128(p.add(q)), mask);
                }
            }
            for i in 0..16 {
                let k = _mm_loadu_si128(K32.as_ptr().add(4 * i) as *const __m128i);
                let mut t = [_mm_setzero_si128(); N];
                // Each message's two half-rounds depend on each other; the messages'
                // do not, which is the point: the CPU overlaps them.
                for s in 0..N {
                    if i >= 4 {
                        let j = i % 4;
                        w[s][j] = schedule(
                            w[s][j],
                            w[s][(j + 1) % 4],
                            w[s][(j + 2) % 4],
                            w[s][(j + 3) % 4],
                        );
                    }
                    t[s] = _mm_add_epi32(w[s][i % 4], k);
                    cdgh[s] = _mm_sha256rnds2_epu32(cdgh[s], abef[s], t[s]);
                }
                for s in 0..N {
                    abef[s] =
                        _mm_sha256rnds2_epu32(abef[s], cdgh[s], _mm_shuffle_epi32(t[s], 0x0E));
                }
            }
            for s in 0..N {
                abef[s] = _mm_add_epi32(abef[s], saved_abef[s]);
                cdgh[s] = _mm_add_epi32(cdgh[s], saved_cdgh[s]);
            }
        }
        for s in 0..N {
            store_state(&mut states[s], abef[s], cdgh[s]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub(super) fn available() -> bool {
        false
    }
    pub(super) unsafe fn compress_n<const N: usize>(
        _: &mut [[u32; 8]],
        _: &[&[[u8; 64]]],
        _: usize,
    ) {
        unreachable!("only called when available()")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{K32, LANES};
    use core::arch::x86_64::*;

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }

    // Inlined into `compress16`, which enables the features.
    #[inline(always)]
    unsafe fn add(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }

    #[inline(always)]
    unsafe fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0x96>(a, b, c)
    }

    /// The blocks of each lane's message, every lane a message (at most [`LANES`]),
    /// all sixteen lanes computed at once; a lane whose message has no block left keeps
    /// its state.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512BW ([`available`]); at most [`LANES`]
    /// states, and as many block slices.
    // Lane-indexed loops over several parallel arrays read better than zipped iterators.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn compress16(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
        let n = states.len();
        assert!(n <= LANES && blocks.len() == n);
        if n == 0 {
            return;
        }
        // Word i of every lane's state in one register.
        let mut words = [[0u32; LANES]; 8];
        let mut counts = [0u32; LANES];
        // The gathers take each lane's address as an integer (from a null base) and turn
        // it back into a pointer in hardware: expose each message's provenance first, as
        // for `ptr::with_exposed_provenance`. Lanes without a block are masked: never read.
        let base = std::ptr::null::<u8>();
        let mut offsets = [0i64; LANES];
        for l in 0..n {
            for i in 0..8 {
                words[i][l] = states[l][i];
            }
            counts[l] = blocks[l].len() as u32;
            offsets[l] = blocks[l].as_ptr().expose_provenance() as i64;
        }
        let mut s = [_mm512_setzero_si512(); 8];
        for i in 0..8 {
            s[i] = _mm512_loadu_si512(words[i].as_ptr().cast());
        }
        let counts_v = _mm512_loadu_si512(counts.as_ptr().cast());
        let offsets_lo = _mm512_loadu_si512(offsets.as_ptr().cast());
        let offsets_hi = _mm512_loadu_si512(offsets[8..].as_ptr().cast());
        // Big-endian words: byte-reverse each 32-bit element.
        let bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
        let most = counts[..n].iter().copied().max().unwrap_or(0) as usize;
        for blk in 0..most {
            // The lanes with a block `blk`: only they load, and only they are updated.
            let active = _mm512_cmpgt_epu32_mask(counts_v, _mm512_set1_epi32(blk as i32));
            let mut w = [_mm512_setzero_si512(); 16];
            for t in 0..16 {
                let at = _mm512_set1_epi64((blk * 64 + t * 4) as i64);
                let lo = _mm512_mask_i64gather_epi32::<1>(
                    _mm256_setzero_si256(),
                    active as __mmask8,
                    _mm512_add_epi64(offsets_lo, at),
                    base.cast(),
                );
                let hi = _mm512_mask_i64gather_epi32::<1>(
                    _mm256_setzero_si256(),
                    (active >> 8) as __mmask8,
                    _mm512_add_epi64(offsets_hi, at),
                    base.cast(),
                );
                let v = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                w[t] = _mm512_shuffle_epi8(v, bswap);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;
            for t in 0..64 {
                if t >= 16 {
                    let w15 = w[(t + 1) % 16];
                    let w2 = w[(t + 14) % 16];
                    let s0 = xor3(
                        _mm512_ror_epi32::<7>(w15),
                        _mm512_ror_epi32::<18>(w15),
                        _mm512_srli_epi32::<3>(w15),
                    );
                    let s1 = xor3(
                        _mm512_ror_epi32::<17>(w2),
                        _mm512_ror_epi32::<19>(w2),
                        _mm512_srli_epi32::<10>(w2),
                    );
                    w[t % 16] = add(add(w[t % 16], s0), add(w[(t + 9) % 16], s1));
                }
                let s1 = xor3(
                    _mm512_ror_epi32::<6>(e),
                    _mm512_ror_epi32::<11>(e),
                    _mm512_ror_epi32::<25>(e),
                );
                // Ch(e, f, g) and Maj(a, b, c) as ternary-logic truth tables.
                let ch = _mm512_ternarylogic_epi32::<0xCA>(e, f, g);
                let k = _mm512_set1_epi32(K32[t] as i32);
                let t1 = add(add(h, s1), add(ch, add(k, w[t % 16])));
                let s0 = xor3(
                    _mm512_ror_epi32::<2>(a),
                    _mm512_ror_epi32::<13>(a),
                    _mm512_ror_epi32::<22>(a),
                );
                let maj = _mm512_ternarylogic_epi32::<0xE8>(a, b, c);
                h = g;
                g = f;
                f = e;
                e = add(d, t1);
                d = c;
                c = b;
                b = a;
                a = add(t1, add(s0, maj));
            }
            let new = [a, b, c, d, e, f, g, h];
            for i in 0..8 {
                s[i] = _mm512_mask_add_epi32(s[i], active, s[i], new[i]);
            }
        }
        for i in 0..8 {
            _mm512_storeu_si512(words[i].as_mut_ptr().cast(), s[i]);
        }
        for l in 0..n {
            for i in 0..8 {
                states[l][i] = words[i][l];
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub(super) fn available() -> bool {
        false
    }
    pub(super) unsafe fn compress16(_: &mut [[u32; 8]], _: &[&[[u8; 64]]]) {
        unreachable!("only called when available()")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    fn reference(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    /// A cheap deterministic byte stream (xorshift).
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Every engine this CPU can run, whichever `Engine::get` would pick.
    fn engines() -> Vec<Engine> {
        let mut all = vec![Engine::ShaNi];
        if avx512::available() {
            all.push(Engine::Avx512 { min: 2 });
        } else {
            eprintln!("no AVX-512 on this CPU: the 16-lane path cannot run here");
        }
        all
    }

    #[test]
    fn the_wide_engine_is_picked_only_when_clearly_faster() {
        // Intel's server cores (session 6): about half SHA-NI's time.
        assert_eq!(Engine::pick(1000, 520), Engine::Avx512 { min: 9 });
        // Zen 4: the two within noise of each other, either way round.
        assert_eq!(Engine::pick(1000, 990), Engine::ShaNi);
        assert_eq!(Engine::pick(1000, 850), Engine::ShaNi);
        assert_eq!(Engine::pick(1000, 1200), Engine::ShaNi);
        // Never a group of one through the lanes.
        assert_eq!(Engine::pick(1000, 10), Engine::Avx512 { min: 2 });
    }

    #[test]
    fn matches_the_hmac_crate_for_every_group_size_and_uneven_lengths() {
        // Lengths around every padding boundary (55/56/64) and several blocks apart, so
        // lockstep prefixes and single-stream tails both run.
        let lengths = [
            0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1354, 1400, 2049,
        ];
        for key_len in [0usize, 1, 16, 64, 65, 200] {
            let key = bytes(key_len as u64 + 7, key_len);
            let hk = HmacKey::new(&key);
            for engine in engines() {
                for n in 1..=LANES {
                    for start in 0..lengths.len() {
                        let msgs: Vec<Vec<u8>> = (0..n)
                            .map(|i| {
                                let len = lengths[(start + i * 5) % lengths.len()];
                                bytes((start * 31 + i) as u64, len)
                            })
                            .collect();
                        let mut scratch = msgs.clone();
                        let mut out = [[0u8; 32]; LANES];
                        hk.sign_with(engine, &mut scratch, &mut out);
                        for (i, m) in msgs.iter().enumerate() {
                            assert_eq!(
                                out[i],
                                reference(&key, m),
                                "{engine:?}, key {key_len} B, group of {n}, message {i} of {} B",
                                m.len()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sixteen_lanes_match_one_message_at_a_time() {
        if !avx512::available() {
            eprintln!("no AVX-512 on this CPU: the 16-lane path cannot run here");
            return;
        }
        for n in 1..=LANES {
            // Ragged: 0 to 22 blocks, so lanes finish at different blocks; lane 0 is
            // empty for every third n.
            let msgs: Vec<Vec<[u8; 64]>> = (0..n)
                .map(|i| {
                    let count = if i == 0 && n % 3 == 0 {
                        0
                    } else {
                        (i * 7 + n) % 23
                    };
                    (0..count)
                        .map(|b| bytes((i * 100 + b) as u64, 64).try_into().unwrap())
                        .collect()
                })
                .collect();
            let blocks: Vec<&[[u8; 64]]> = msgs.iter().map(|m| &m[..]).collect();
            let mut wide: Vec<[u32; 8]> = (0..n)
                .map(|i| IV.map(|w| w ^ (i as u32).wrapping_mul(0x9e37_79b9)))
                .collect();
            let mut narrow = wide.clone();
            // SAFETY: available() checked above; n <= LANES.
            unsafe { avx512::compress16(&mut wide, &blocks) };
            for (s, b) in narrow.iter_mut().zip(&blocks) {
                compress1(s, b);
            }
            assert_eq!(wide, narrow, "{n} lanes");
        }
    }

    #[test]
    fn padding_fills_whole_blocks_with_the_bit_length_last() {
        for len in 0..200 {
            let mut m = vec![0xAA; len];
            pad(&mut m, 64);
            assert_eq!(m.len() % 64, 0, "{len}");
            assert_eq!(m[len], 0x80);
            let bits = u64::from_be_bytes(m[m.len() - 8..].try_into().unwrap());
            assert_eq!(bits, (64 + len as u64) * 8);
            assert!(m.len() - len >= 9 && m.len() - len <= 72);
        }
    }
}
