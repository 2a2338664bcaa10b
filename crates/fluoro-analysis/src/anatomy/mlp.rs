//! The anatomy perceptron: the committed weights, and its forward pass over many cells at
//! once (input-major weights, cells in blocks and groups so the sums vectorise and run as
//! independent chains).

use super::{N_CLASSES, N_FEATURES};
use serde::Deserialize;
use std::sync::OnceLock;

/// The weights file as written by the trainer: `layers` are `(weights out x in, bias)`.
#[derive(Debug, Deserialize)]
struct MlpFile {
    mean: Vec<f32>,
    std: Vec<f32>,
    layers: Vec<(Vec<Vec<f32>>, Vec<f32>)>,
}

/// One dense layer, weights stored input-major (`w[i * out + o]`) so that the inner loop
/// runs over contiguous outputs and vectorises.
#[derive(Debug)]
struct Layer {
    inp: usize,
    out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// A perceptron with standardised inputs and ReLU hidden layers.
#[derive(Debug)]
pub struct Mlp {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    layers: Vec<Layer>,
}

impl Mlp {
    /// Parses the weights file, checking the shapes.
    pub fn from_json(s: &str) -> Result<Self, String> {
        let m: MlpFile = serde_json::from_str(s).map_err(|e| e.to_string())?;
        let mut width = N_FEATURES;
        if m.mean.len() != width || m.std.len() != width || m.layers.is_empty() {
            return Err("feature count does not match".into());
        }
        let mut layers = Vec::new();
        for (w, b) in &m.layers {
            if w.is_empty() || w.len() != b.len() || w.iter().any(|r| r.len() != width) {
                return Err("layer shapes do not chain".into());
            }
            let (inp, out) = (width, w.len());
            let mut t = vec![0f32; inp * out];
            for (o, row) in w.iter().enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    t[i * out + o] = v;
                }
            }
            layers.push(Layer {
                inp,
                out,
                w: t,
                b: b.clone(),
            });
            width = out;
        }
        if width != N_CLASSES {
            return Err(format!("{width} outputs, expected {N_CLASSES}"));
        }
        Ok(Self {
            inv_std: m.std.iter().map(|s| 1.0 / s.max(1e-12)).collect(),
            mean: m.mean,
            layers,
        })
    }

    /// Class scores (logits) of one feature vector; `a`, `b` are scratch buffers.
    pub fn forward(&self, x: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>, out: &mut [f32]) {
        a.clear();
        a.extend(
            x.iter()
                .zip(&self.mean)
                .zip(&self.inv_std)
                .map(|((v, m), s)| (v - m) * s),
        );
        let last = self.layers.len() - 1;
        for (li, l) in self.layers.iter().enumerate() {
            b.clear();
            b.extend_from_slice(&l.b);
            dense(&l.w, l.out, &a[..l.inp], b, li != last);
            std::mem::swap(a, b);
        }
        out.copy_from_slice(&a[..N_CLASSES]);
    }

    /// Class scores of `n = xs.len() / N_FEATURES` feature vectors into `outs` (`N_CLASSES`
    /// each), `BLOCK` vectors per pass through the layers, with the layer's outputs held
    /// in registers (`dense_block`); `a`, `b` are scratch buffers. Equal to
    /// [`Mlp::forward`] per vector (same sums in the same order).
    pub fn forward_many(&self, xs: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>, outs: &mut [f32]) {
        let n = xs.len() / N_FEATURES;
        let last = self.layers.len() - 1;
        // both buffers sized once for the widest layer: every value a layer reads was
        // written first (the inputs below, each output by `dense_block`), so they are
        // never cleared or zero-filled per block
        let widest = self
            .layers
            .iter()
            .map(|l| l.inp.max(l.out))
            .max()
            .unwrap_or(0);
        for v in [&mut *a, &mut *b] {
            if v.len() < BLOCK * widest {
                v.resize(BLOCK * widest, 0.0);
            }
        }
        for start in (0..n).step_by(BLOCK) {
            let m = BLOCK.min(n - start);
            let cells = xs[start * N_FEATURES..(start + m) * N_FEATURES].chunks_exact(N_FEATURES);
            for (o, x) in a[..m * N_FEATURES].chunks_exact_mut(N_FEATURES).zip(cells) {
                let (o, x): (&mut [f32; N_FEATURES], &[f32; N_FEATURES]) = (
                    o.try_into().expect("a feature vector"),
                    x.try_into().expect("a feature vector"),
                );
                for i in 0..N_FEATURES {
                    o[i] = (x[i] - self.mean[i]) * self.inv_std[i];
                }
            }
            for (li, l) in self.layers.iter().enumerate() {
                // inputs past the first layer come out of a ReLU: about half are 0
                let sparse = li > 0;
                let (x, acc) = (&a[..m * l.inp], &mut b[..m * l.out]);
                dense_block(&l.w, &l.b, l.inp, x, acc, li != last, sparse);
                std::mem::swap(a, b);
            }
            outs[start * N_CLASSES..(start + m) * N_CLASSES].copy_from_slice(&a[..m * N_CLASSES]);
        }
    }
}

/// Cells per block of [`Mlp::forward_many`].
const BLOCK: usize = 16;

/// Vectors [`dense_block`] runs through the hidden width together (four sets of 64 sums:
/// 16 registers).
const GROUP: usize = 4;

/// Vectors [`dense_block`] runs through the class layer together: each vector's four sums
/// are one 4-lane chain as long as the layer's input, so sixteen chains, not four, keep
/// the adds busy instead of waiting on each other.
const CLASS_GROUP: usize = 16;

/// [`dense`] for several vectors (`x`: vectors of `inp`, `acc`: vectors of `out`, both
/// concatenated; each output is written, its sum started from `bias` in registers, so
/// `acc` need not be filled first), with the outputs in registers while the inputs
/// stream (64 at once for the hidden width, else 16 at a time; [`dense`] loads and stores
/// them for every input).
/// `sparse`: many inputs are 0 (they come out of a ReLU), so the hidden width skips them
/// ([`hidden64_sparse`]).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn dense_block(
    w: &[f32],
    bias: &[f32],
    inp: usize,
    x: &[f32],
    acc: &mut [f32],
    relu: bool,
    sparse: bool,
) {
    let out = bias.len();
    const L: usize = 16;
    // 32 vector registers (AVX-512) hold GROUP sets of 64 sums or CLASS_GROUP sets of
    // class sums; AVX2's 16 do not (they spilled to the stack on every input): there one
    // set of 64 sums at a time (the loop below), and half the class groups
    let wide = multiversion::target::target_cfg_f!(target_feature = "avx512f");
    // the hidden width (zeros skipped, or GROUP vectors at once) and the class layer
    // (CLASS_GROUP, then GROUP vectors at once); the rest one by one
    let done = match out {
        64 if sparse => hidden64_sparse(w, bias, inp, x, acc, relu),
        64 if wide => dense_group::<64, GROUP>(w, bias, inp, x, acc, relu),
        N_CLASSES => {
            let done = if wide {
                dense_group::<N_CLASSES, CLASS_GROUP>(w, bias, inp, x, acc, relu)
            } else {
                dense_group::<N_CLASSES, { CLASS_GROUP / 2 }>(w, bias, inp, x, acc, relu)
            };
            let (x, acc) = (&x[done * inp..], &mut acc[done * N_CLASSES..]);
            done + dense_group::<N_CLASSES, GROUP>(w, bias, inp, x, acc, relu)
        }
        _ => 0,
    };
    let (x, acc) = (&x[done * inp..], &mut acc[done * out..]);
    for (xv, av) in x.chunks_exact(inp).zip(acc.chunks_exact_mut(out)) {
        let mut oc = 0;
        if out == 4 * L {
            // the hidden width: all 64 outputs in four registers, each input read once
            let mut r: [f32; 4 * L] = bias.try_into().expect("64 outputs");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; 4 * L] = w[i * out..(i + 1) * out].try_into().expect("64 weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av.copy_from_slice(&r);
            oc = out;
        }
        while oc + L <= out {
            let mut r: [f32; L] = bias[oc..oc + L].try_into().expect("16 outputs");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; L] = w[i * out + oc..i * out + oc + L]
                    .try_into()
                    .expect("16 weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av[oc..oc + L].copy_from_slice(&r);
            oc += L;
        }
        if out - oc == N_CLASSES {
            // the last layer's four classes: a fixed-size accumulator stays in a register
            let mut r: [f32; N_CLASSES] = bias[oc..out].try_into().expect("classes");
            for (i, &xi) in xv.iter().enumerate() {
                let wv: &[f32; N_CLASSES] = w[i * out + oc..i * out + out]
                    .try_into()
                    .expect("class weights");
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
            av[oc..out].copy_from_slice(&r);
        } else if oc < out {
            // any other remainder of fewer than 16 outputs
            let len = out - oc;
            let mut r = [0f32; L];
            r[..len].copy_from_slice(&bias[oc..out]);
            for (i, &xi) in xv.iter().enumerate() {
                for (a, &wl) in r[..len].iter_mut().zip(&w[i * out + oc..i * out + out]) {
                    *a += wl * xi;
                }
            }
            av[oc..out].copy_from_slice(&r[..len]);
        }
        if relu {
            av.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// [`dense_block`] for a layer of exactly `O` outputs, `G` vectors at a time: the `G`
/// sets of sums are independent chains, which hides the add latency (one vector's
/// four class sums were one 4-lane chain, 64 adds deep), and each weight load serves
/// every vector. Each sum runs in the same order as for one vector. Returns how many
/// vectors it did (whole groups only).
#[inline(always)]
fn dense_group<const O: usize, const G: usize>(
    w: &[f32],
    bias: &[f32],
    inp: usize,
    x: &[f32],
    acc: &mut [f32],
    relu: bool,
) -> usize {
    let whole = (x.len() / inp).min(acc.len() / O) / G * G;
    let groups = x[..whole * inp]
        .chunks_exact(G * inp)
        .zip(acc[..whole * O].chunks_exact_mut(G * O));
    for (xv, av) in groups {
        let b: &[f32; O] = bias.try_into().expect("O biases");
        let mut r = [*b; G];
        for (i, wv) in w.chunks_exact(O).take(inp).enumerate() {
            let wv: &[f32; O] = wv.try_into().expect("O weights");
            for (g, rv) in r.iter_mut().enumerate() {
                let xi = xv[g * inp + i];
                for (a, &wl) in rv.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
        }
        for (rv, a) in r.iter().zip(av.chunks_exact_mut(O)) {
            a.copy_from_slice(rv);
            if relu {
                a.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }
    whole
}

/// [`dense_block`]'s 64-output layer on inputs of which many are 0: only the non-zero
/// inputs' weight rows are added, in input order, so the sums are [`dense`]'s (which skips
/// zeros too) and the grouped path's (adding `w * 0` changes no sum). The non-zero inputs
/// are found 64 at a time as a bit mask (a vector compare) and walked by their set bits.
/// Half the hidden layer's inputs are 0 on real frames, and this layer is three quarters
/// of the perceptron's work. Per input the four 16-lane multiply-and-adds take longer
/// than an add's latency, so one vector at a time keeps the units busy. Returns how many
/// vectors it did (all).
#[inline(always)]
fn hidden64_sparse(
    w: &[f32],
    bias: &[f32],
    inp: usize,
    x: &[f32],
    acc: &mut [f32],
    relu: bool,
) -> usize {
    let n = (x.len() / inp).min(acc.len() / 64);
    let bias: &[f32; 64] = bias.try_into().expect("64 biases");
    for (xv, av) in x.chunks_exact(inp).zip(acc.chunks_exact_mut(64)) {
        let mut r = *bias;
        for (c, chunk) in xv.chunks(64).enumerate() {
            // non-zero (NaN included: it must reach the sums) as bits
            let mut bits = chunk
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, &v)| m | (u64::from(v != 0.0) << i));
            while bits != 0 {
                let i = 64 * c + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (xi, wv) = (xv[i], &w[i * 64..(i + 1) * 64]);
                for (a, &wl) in r.iter_mut().zip(wv) {
                    *a += wl * xi;
                }
            }
        }
        if relu {
            r.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        av.copy_from_slice(&r);
    }
    n
}

/// `acc += W x` with `W` input-major (`w[i * out + o]`), then ReLU when asked. Compiled for
/// AVX-512 and AVX2+FMA with runtime dispatch.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn dense(w: &[f32], out: usize, x: &[f32], acc: &mut [f32], relu: bool) {
    for (i, &xi) in x.iter().enumerate() {
        if xi == 0.0 {
            continue;
        }
        for (a, &wv) in acc.iter_mut().zip(&w[i * out..(i + 1) * out]) {
            *a += wv * xi;
        }
    }
    if relu {
        acc.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

/// The committed model, or `None` when its file does not parse (then the rule-based labels
/// are used).
pub fn embedded_model() -> Option<&'static Mlp> {
    static MODEL: OnceLock<Option<Mlp>> = OnceLock::new();
    MODEL
        .get_or_init(|| Mlp::from_json(include_str!("../anatomy_weights.json")).ok())
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_model_parses_and_scores() {
        let m = embedded_model().expect("anatomy_weights.json parses");
        let (mut a, mut b, mut o) = (Vec::new(), Vec::new(), [0f32; N_CLASSES]);
        m.forward(&[0.0; N_FEATURES], &mut a, &mut b, &mut o);
        // the blocked path gives the same scores as one vector at a time: whole blocks
        // (the class layer's wide groups), a partial block, an odd vector left over
        let xs: Vec<f32> = (0..(2 * BLOCK + 7) * N_FEATURES)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 3.0)
            .collect();
        blocked_matches_single(m, &xs, "committed model");
        assert!(o.iter().all(|v| v.is_finite()));
        assert!(Mlp::from_json("{}").is_err());
    }

    /// Hidden widths other than 64 (16-wide chunks, a remainder below 16) give the same
    /// scores through the blocked path as one vector at a time.
    #[test]
    fn other_layer_widths_score_alike_blocked_and_one_at_a_time() {
        let weights = |out: usize, inp: usize, seed: usize| -> Vec<Vec<f32>> {
            (0..out)
                .map(|o| {
                    (0..inp)
                        .map(|i| ((o * 31 + i * 17 + seed) % 23) as f32 / 23.0 - 0.5)
                        .collect()
                })
                .collect()
        };
        for hidden in [20usize, 5, 64] {
            let file = serde_json::json!({
                "mean": vec![0.1f32; N_FEATURES],
                "std": vec![2.0f32; N_FEATURES],
                "layers": [
                    [weights(hidden, N_FEATURES, 1), vec![0.05f32; hidden]],
                    [weights(hidden, hidden, 2), vec![-0.02f32; hidden]],
                    [weights(N_CLASSES, hidden, 3), vec![0.0f32; N_CLASSES]],
                ],
            });
            let m = Mlp::from_json(&file.to_string()).expect("a valid model");
            let xs: Vec<f32> = (0..6 * N_FEATURES)
                .map(|i| ((i * 13 % 29) as f32 / 7.0) - 2.0)
                .collect();
            blocked_matches_single(&m, &xs, &format!("hidden {hidden}"));
        }
    }

    /// The hidden layer skipping zero inputs gives the dense grouped sums exactly, for
    /// vectors with few and many zeros, a NaN input, and more inputs than one 64-bit mask
    /// holds.
    #[test]
    fn zero_skipping_hidden_layer_equals_the_dense_one() {
        let inp = 70;
        let w: Vec<f32> = (0..inp * 64)
            .map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * 0.3)
            .collect();
        let n = 7;
        let mut x: Vec<f32> = (0..n * inp)
            .map(|i| {
                let v = (i * 131 % 97) as f32 / 97.0 - 0.3;
                // 1 in 5 or 4 in 5 inputs kept
                let vector = i / inp;
                let keep = if vector % 2 == 0 {
                    i % 5 == 0
                } else {
                    i % 5 != 0
                };
                if keep { v.max(0.0) } else { 0.0 }
            })
            .collect();
        x[3 * inp + 10] = f32::NAN;
        let bias: Vec<f32> = (0..64).map(|i| i as f32 * 0.01 - 0.2).collect();
        for relu in [false, true] {
            // the outputs' old contents must not matter: every sum starts from the bias
            let mut dense = vec![7.0; n * 64];
            dense_block(&w, &bias, inp, &x, &mut dense, relu, false);
            let mut skipping = vec![-3.0; n * 64];
            dense_block(&w, &bias, inp, &x, &mut skipping, relu, true);
            for (k, (p, q)) in dense.iter().zip(&skipping).enumerate() {
                assert!(
                    p == q || (p.is_nan() && q.is_nan()),
                    "relu {relu}, vector {} output {}: {p} vs {q}",
                    k / 64,
                    k % 64
                );
            }
            // the NaN reaches every output of its vector (none where relu clears it)
            assert!(relu || skipping[3 * 64..4 * 64].iter().all(|v| v.is_nan()));
        }
    }

    /// The committed model scores as a plain float64 evaluation of its weights file does
    /// (standardise, each layer's weights row by row, ReLU between), within float32
    /// rounding, blocked and one vector at a time.
    #[test]
    fn the_committed_model_scores_as_a_float64_reference() {
        let m = embedded_model().expect("anatomy_weights.json parses");
        let file: MlpFile =
            serde_json::from_str(include_str!("../anatomy_weights.json")).expect("parses");
        let xs: Vec<f32> = (0..37 * N_FEATURES)
            .map(|i| ((i * 53 % 97) as f32 / 48.0 - 1.0) * 2.0 + file.mean[i % N_FEATURES])
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut many = vec![0f32; 37 * N_CLASSES];
        m.forward_many(&xs, &mut a, &mut b, &mut many);
        for (x, got) in xs.chunks(N_FEATURES).zip(many.chunks(N_CLASSES)) {
            let mut v: Vec<f64> = x
                .iter()
                .zip(file.mean.iter().zip(&file.std))
                .map(|(&x, (&m, &s))| (f64::from(x) - f64::from(m)) / f64::from(s))
                .collect();
            for (li, (w, bias)) in file.layers.iter().enumerate() {
                v = w
                    .iter()
                    .zip(bias)
                    .map(|(row, &bo)| {
                        let s: f64 = row.iter().zip(&v).map(|(&w, &x)| f64::from(w) * x).sum();
                        let s = s + f64::from(bo);
                        if li + 1 < file.layers.len() {
                            s.max(0.0)
                        } else {
                            s
                        }
                    })
                    .collect();
            }
            for (want, &got) in v.iter().zip(got) {
                assert!(
                    (want - f64::from(got)).abs() < 1e-4 * want.abs().max(1.0),
                    "{v:?} vs {got:?}"
                );
            }
        }
    }

    /// `forward_many` on the feature vectors `xs` scores each like `forward`, to the same
    /// bits.
    fn blocked_matches_single(m: &Mlp, xs: &[f32], what: &str) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut many = vec![0f32; xs.len() / N_FEATURES * N_CLASSES];
        m.forward_many(xs, &mut a, &mut b, &mut many);
        for (x, got) in xs.chunks(N_FEATURES).zip(many.chunks(N_CLASSES)) {
            let mut one = [0f32; N_CLASSES];
            m.forward(x, &mut a, &mut b, &mut one);
            assert_eq!(one, got, "{what}");
        }
    }
}
