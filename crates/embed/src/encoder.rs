//! The BERT encoder's forward pass for one sequence: embeddings (word + position + token type,
//! LayerNorm), then per layer self-attention and a GELU feed-forward block, each closed by a
//! residual add and LayerNorm (post-norm, as BERT does), then mean pooling over the tokens and L2
//! normalisation. All matrix products go through `matrixmultiply::sgemm`; everything else is a
//! plain loop over preallocated buffers. It owns the arithmetic, not the file formats: the
//! weights arrive already read and shape-checked (see `weights.rs`).

use crate::config::EncoderConfig;

/// A dense layer `y = x · Wᵀ + b`. `W` arrives in PyTorch's `[outputs, inputs]` layout and is
/// stored transposed, `[inputs, outputs]` row-major: sgemm packs its right operand on every call,
/// and packing contiguous rows is faster than gathering strided columns.
pub(crate) struct Linear {
    pub weight_t: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

pub(crate) struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// One transformer layer. Query, key and value are fused into one `[3·hidden, hidden]` matrix at
/// load so that the projection is one matrix product instead of three.
pub(crate) struct Layer {
    pub qkv: Linear,
    pub attention_out: Linear,
    pub attention_norm: LayerNorm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
    pub ffn_norm: LayerNorm,
}

pub(crate) struct Encoder {
    pub config: EncoderConfig,
    /// `[vocab, hidden]`, `[max_positions, hidden]`, `[type_vocab, hidden]`.
    pub word_embeddings: Vec<f32>,
    pub position_embeddings: Vec<f32>,
    pub token_type_embeddings: Vec<f32>,
    pub embedding_norm: LayerNorm,
    pub layers: Vec<Layer>,
}

/// Working memory for one forward pass, allocated once per call and sized for its token count.
struct Scratch {
    /// The hidden state, `[tokens, hidden]`.
    hidden: Vec<f32>,
    /// Fused query/key/value projections, `[tokens, 3·hidden]`.
    qkv: Vec<f32>,
    /// Attention probabilities for one head, `[tokens, tokens]`.
    scores: Vec<f32>,
    /// Attention output with heads side by side, `[tokens, hidden]`.
    context: Vec<f32>,
    /// Sub-layer output plus residual, before LayerNorm, `[tokens, hidden]`.
    residual: Vec<f32>,
    /// Feed-forward activations, `[tokens, intermediate]`.
    intermediate: Vec<f32>,
}

impl Linear {
    /// A layer from PyTorch's `weight` (`[outputs, inputs]` row-major) and `bias`.
    pub fn from_torch(weight: &[f32], bias: Vec<f32>, inputs: usize, outputs: usize) -> Linear {
        let mut weight_t = vec![0.0; inputs * outputs];
        for (out, row) in weight.chunks_exact(inputs).take(outputs).enumerate() {
            for (input, &value) in row.iter().enumerate() {
                weight_t[input * outputs + out] = value;
            }
        }
        Linear {
            weight_t,
            bias,
            inputs,
            outputs,
        }
    }
}

impl Encoder {
    /// The mean-pooled, L2-normalised embedding of one tokenised sequence. `ids` and `type_ids`
    /// have the same length, at least 1 and at most `max_positions` (the caller truncates); ids
    /// are below `vocab` and type ids below `type_vocab` (checked at load against the tokenizer;
    /// an out-of-range id is read as id 0 rather than trusted).
    pub fn embed(&self, ids: &[u32], type_ids: &[u32]) -> Vec<f32> {
        let config = &self.config;
        let tokens = ids.len().min(config.max_positions);
        if tokens == 0 {
            return vec![0.0; config.hidden];
        }
        let mut scratch = Scratch {
            hidden: vec![0.0; tokens * config.hidden],
            qkv: vec![0.0; tokens * 3 * config.hidden],
            scores: vec![0.0; tokens * tokens],
            context: vec![0.0; tokens * config.hidden],
            residual: vec![0.0; tokens * config.hidden],
            intermediate: vec![0.0; tokens * config.intermediate],
        };
        self.embed_tokens(&ids[..tokens], type_ids, &mut scratch.hidden);
        for layer in &self.layers {
            self.run_layer(layer, tokens, &mut scratch);
        }
        mean_pool_normalised(&scratch.hidden, tokens, config.hidden)
    }

    /// Word + position + token-type embeddings, then LayerNorm, into `hidden`.
    fn embed_tokens(&self, ids: &[u32], type_ids: &[u32], hidden: &mut [f32]) {
        let h = self.config.hidden;
        for (position, (row, &id)) in hidden.chunks_exact_mut(h).zip(ids).enumerate() {
            let id = id as usize;
            let id = if id < self.config.vocab { id } else { 0 };
            let type_id = type_ids.get(position).map_or(0, |&t| t as usize);
            let type_id = if type_id < self.config.type_vocab {
                type_id
            } else {
                0
            };
            let word = &self.word_embeddings[id * h..(id + 1) * h];
            let place = &self.position_embeddings[position * h..(position + 1) * h];
            let kind = &self.token_type_embeddings[type_id * h..(type_id + 1) * h];
            for (i, value) in row.iter_mut().enumerate() {
                *value = word[i] + place[i] + kind[i];
            }
            layer_norm(row, &self.embedding_norm, self.config.layer_norm_eps);
        }
    }

    fn run_layer(&self, layer: &Layer, tokens: usize, s: &mut Scratch) {
        let eps = self.config.layer_norm_eps;
        linear(&s.hidden, tokens, &layer.qkv, &mut s.qkv, None);
        self.attention(tokens, &s.qkv, &mut s.scores, &mut s.context);
        linear(
            &s.context,
            tokens,
            &layer.attention_out,
            &mut s.residual,
            Some(&s.hidden),
        );
        layer_norm_rows(&s.residual, &mut s.hidden, &layer.attention_norm, eps);
        linear(&s.hidden, tokens, &layer.ffn_in, &mut s.intermediate, None);
        s.intermediate.iter_mut().for_each(|x| *x = gelu(*x));
        linear(
            &s.intermediate,
            tokens,
            &layer.ffn_out,
            &mut s.residual,
            Some(&s.hidden),
        );
        layer_norm_rows(&s.residual, &mut s.hidden, &layer.ffn_norm, eps);
    }

    /// Scaled dot-product self-attention, head by head, from the fused projections in `qkv`
    /// into `context`. No mask: the sequence has no padding.
    fn attention(&self, tokens: usize, qkv: &[f32], scores: &mut [f32], context: &mut [f32]) {
        let h = self.config.hidden;
        let d = self.config.head_dim();
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..self.config.heads {
            let query = Mat::new(&qkv[head * d..], tokens, d, 3 * h, 1);
            // Kᵀ: element (i, j) is key j's component i.
            let keys_t = Mat::new(&qkv[h + head * d..], d, tokens, 1, 3 * h);
            gemm(
                scale,
                query,
                keys_t,
                0.0,
                MatMut::new(scores, tokens, tokens, tokens, 1),
            );
            scores.chunks_exact_mut(tokens).for_each(softmax);
            let probabilities = Mat::new(scores, tokens, tokens, tokens, 1);
            let values = Mat::new(&qkv[2 * h + head * d..], tokens, d, 3 * h, 1);
            let out = MatMut::new(&mut context[head * d..], tokens, d, h, 1);
            gemm(1.0, probabilities, values, 0.0, out);
        }
    }
}

/// `out = input · Wᵀ + b (+ residual)`, for `rows` rows. The bias (and the residual, when given)
/// is written into `out` first and the product accumulated on top (β = 1), so neither costs a
/// separate pass.
fn linear(input: &[f32], rows: usize, layer: &Linear, out: &mut [f32], residual: Option<&[f32]>) {
    let (k, n) = (layer.inputs, layer.outputs);
    let out = &mut out[..rows * n];
    match residual {
        Some(residual) => {
            for (out_row, res_row) in out.chunks_exact_mut(n).zip(residual.chunks_exact(n)) {
                for ((o, r), b) in out_row.iter_mut().zip(res_row).zip(&layer.bias) {
                    *o = r + b;
                }
            }
        }
        None => out
            .chunks_exact_mut(n)
            .for_each(|row| row.copy_from_slice(&layer.bias)),
    }
    let a = Mat::new(input, rows, k, k, 1);
    let b = Mat::new(&layer.weight_t, k, n, n, 1);
    gemm(1.0, a, b, 1.0, MatMut::new(out, rows, n, n, 1));
}

/// Row-wise LayerNorm from `input` into `output` (both `[rows, hidden]`).
fn layer_norm_rows(input: &[f32], output: &mut [f32], norm: &LayerNorm, eps: f32) {
    let h = norm.gamma.len();
    output.copy_from_slice(&input[..output.len()]);
    output
        .chunks_exact_mut(h)
        .for_each(|row| layer_norm(row, norm, eps));
}

fn layer_norm(row: &mut [f32], norm: &LayerNorm, eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let inverse = 1.0 / (variance + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *x = (*x - mean) * inverse * g + b;
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inverse = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inverse);
}

/// The exact GELU, `x · Φ(x)`, that HF calls "gelu" (not the tanh approximation).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Mean over the token rows, then scaled to unit length (a zero vector stays zero).
fn mean_pool_normalised(hidden: &[f32], tokens: usize, width: usize) -> Vec<f32> {
    let mut pooled = vec![0.0f32; width];
    for row in hidden.chunks_exact(width).take(tokens) {
        pooled.iter_mut().zip(row).for_each(|(p, x)| *p += x);
    }
    let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt();
    // The mean's 1/tokens factor cancels in the normalisation, so it is skipped.
    if norm > 0.0 {
        pooled.iter_mut().for_each(|x| *x /= norm);
    }
    pooled
}

/// A strided matrix view: element (i, j) is `data[i·row_stride + j·col_stride]`. `Mat` reads,
/// `MatMut` is written; one type, so that one constructor checks both.
#[derive(Clone, Copy)]
struct View<D> {
    data: D,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

type Mat<'a> = View<&'a [f32]>;
type MatMut<'a> = View<&'a mut [f32]>;

impl<D: AsRef<[f32]>> View<D> {
    fn new(data: D, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        // The views are built from the validated model sizes, so this only fires on a bug here.
        let extent = match rows == 0 || cols == 0 {
            true => 0,
            false => (rows - 1) * row_stride + (cols - 1) * col_stride + 1,
        };
        assert!(extent <= data.as_ref().len(), "matrix view out of bounds");
        View {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `c = α · a · b + β · c`.
fn gemm(alpha: f32, a: Mat, b: Mat, beta: f32, c: MatMut) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm shape mismatch"
    );
    // SAFETY: every view was checked on construction to lie inside its slice for its shape and
    // strides; the shapes agree (checked above); `c` is borrowed mutably, so it aliases neither
    // `a` nor `b`.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.data.as_mut_ptr(),
            c.row_stride as isize,
            c.col_stride as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_a_naive_product_with_a_transposed_operand() {
        // a: 2×3, w: 2 outputs × 3 inputs; y = a · wᵀ.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let layer = Linear::from_torch(&w, vec![10.0, 20.0], 3, 2);
        let mut out = [0.0; 4];
        linear(&a, 2, &layer, &mut out, None);
        assert_eq!(out, [10.0 - 2.0, 20.0 + 3.0, 10.0 - 2.0, 20.0 + 7.5]);
        let residual = [1.0; 4];
        linear(&a, 2, &layer, &mut out, Some(&residual));
        assert_eq!(out, [9.0, 24.0, 9.0, 28.5]);
    }

    #[test]
    fn gelu_is_the_erf_form() {
        // Reference values of x·Φ(x) (erf form) from Python's math.erf.
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-0.5) - -0.154_268_5).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
    }

    #[test]
    fn softmax_is_stable_for_large_scores() {
        let mut row = [1000.0, 1000.0];
        softmax(&mut row);
        assert_eq!(row, [0.5, 0.5]);
    }

    #[test]
    fn pooling_gives_a_unit_vector() {
        let pooled = mean_pool_normalised(&[3.0, 0.0, 0.0, 4.0], 2, 2);
        assert!((pooled[0] - 0.6).abs() < 1e-6 && (pooled[1] - 0.8).abs() < 1e-6);
    }
}
