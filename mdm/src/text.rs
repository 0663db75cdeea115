//! A stand-in text encoder for text-conditioned MDM.
//!
//! Deviation from ml-mdm: ml-mdm encodes prompts with FLAN-T5-XL, which this offline project
//! cannot load. [`HashTextEncoder`] instead lower-cases the caption, splits it into words (runs of
//! letters, digits and apostrophes), appends an end-of-sequence token `</s>` (as T5's tokenizer
//! does, so an empty caption still has one real token), and maps each word to a fixed pseudo-random
//! unit vector derived from a 64-bit FNV-1a hash of the word (no training, deterministic across
//! runs and machines). A sinusoidal position term of norm ½ is added (`0.5·√(2/dim)·sin/cos(p /
//! 10000^(2i/dim))`). Like ml-mdm, the batch is padded to its longest caption (at most `max_len`
//! tokens; longer captions keep their first `max_len − 1` words and `</s>`), padded positions are
//! zero and the mask is u8 (1 = real token).

use tensor::Tensor;

use crate::Result;
use crate::data::input_err;

/// The end-of-sequence token appended to every caption.
pub const EOS: &str = "</s>";

/// Hash-based word embeddings plus sinusoidal positions (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct HashTextEncoder {
    pub dim: usize,
    pub max_len: usize,
}

/// Lower-cased words of a caption followed by [`EOS`], truncated to `max_len` tokens.
pub fn tokenize(caption: &str, max_len: usize) -> Vec<String> {
    let lower = caption.to_lowercase();
    let mut words: Vec<String> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    words.truncate(max_len.saturating_sub(1));
    words.push(EOS.to_string());
    words
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl HashTextEncoder {
    pub fn new(dim: usize, max_len: usize) -> Self {
        HashTextEncoder { dim, max_len }
    }

    /// The unit vector of one word (Gaussian direction from the word's hash, normalised).
    pub fn word_vector(&self, word: &str) -> Vec<f32> {
        let mut state = fnv1a(word);
        let mut v: Vec<f32> = (0..self.dim)
            .map(|_| {
                // Box–Muller from two 24-bit uniforms in (0, 1].
                let u1 = ((splitmix(&mut state) >> 40) as f64 + 1.0) / (1u64 << 24) as f64;
                let u2 = (splitmix(&mut state) >> 40) as f64 / (1u64 << 24) as f64;
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    /// The position term of position `p`.
    pub fn position_term(&self, p: usize) -> Vec<f32> {
        let scale = 0.5 * (2.0 / self.dim as f64).sqrt();
        (0..self.dim)
            .map(|j| {
                let freq = 10000f64.powf(-((j / 2 * 2) as f64) / self.dim as f64);
                let a = p as f64 * freq;
                (scale * if j % 2 == 0 { a.sin() } else { a.cos() }) as f32
            })
            .collect()
    }

    /// Tokens [B, L, dim] f32 (already multiplied by the mask) and mask u8 [B, L], L = the longest
    /// caption's token count (≤ max_len).
    pub fn encode(&self, captions: &[String]) -> Result<(Tensor, Tensor)> {
        if self.dim == 0 || self.max_len == 0 || captions.is_empty() {
            return Err(input_err(
                "text encoder",
                format!(
                    "dim {} and max_len {} must be ≥ 1 and there must be captions ({})",
                    self.dim,
                    self.max_len,
                    captions.len()
                ),
            ));
        }
        let toks: Vec<Vec<String>> = captions.iter().map(|c| tokenize(c, self.max_len)).collect();
        let l = toks.iter().map(Vec::len).max().unwrap_or(1);
        let b = captions.len();
        let mut data = vec![0f32; b * l * self.dim];
        let mut mask = vec![0u8; b * l];
        for (i, words) in toks.iter().enumerate() {
            for (p, w) in words.iter().enumerate() {
                let o = (i * l + p) * self.dim;
                let (wv, pv) = (self.word_vector(w), self.position_term(p));
                for (k, d) in data[o..o + self.dim].iter_mut().enumerate() {
                    *d = wv[k] + pv[k];
                }
                mask[i * l + p] = 1;
            }
        }
        Ok((Tensor::from_vec(data, &[b, l, self.dim])?, Tensor::from_vec(mask, &[b, l])?))
    }
}
