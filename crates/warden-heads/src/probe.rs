//! The in-domain probe: one ridge-regularised logistic regression per category on
//! normalised encoder features (the mean of each layer's output by default, or the heads'
//! pooled vector: [`ProbeFeatures`]), fitted only on the rows of the deployment's own
//! domain (one named source), and mixed into the heads' calibrated probability.
//!
//! Why: the MLP heads learn from every source together, ~100k public rows against a few
//! hundred from the domain the model is deployed on. With the frozen encoder, a linear
//! model on just those few hundred in-domain rows ranks better than the heads on most
//! categories of that domain (moderation-set CV: `any` 0.760 against 0.710 on the pooled
//! vector, 0.789 on the layer means), and the two err differently, so their mean beats
//! both (docs/encoder-tier.md, "In-domain probe" and "Layer features for the probe"). A
//! linear model is the right size for a few hundred rows; the ridge penalty stands in for
//! early stopping, so no dev rows are spent.
//!
//! The fit (`warden_fast::ridge`, shared with the fast tier's static-embedding probe) is
//! Newton's method with Cholesky steps, in the rows' span when features outnumber rows.

use serde::{Deserialize, Serialize};
pub use warden_fast::ridge::{fit_probe, normalized, Probe};

/// What the probe reads from each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeFeatures {
    /// The heads' pooled vector (format 2 probes; the manifest's default when absent).
    #[default]
    Pooled,
    /// The mean over tokens of each of the encoder's `layers` transformer layers' outputs,
    /// each block L2-normalised, concatenated and scaled by `1/sqrt(layers)`
    /// ([`layer_features`]). Lower layers keep lexical detail the last layer pools away;
    /// on the moderation set this probe ranks better than one on the pooled vector
    /// (docs/encoder-tier.md, "Layer features for the probe").
    LayerMeans { layers: usize },
}

/// Prepares the layer-means part of a window vector (`layers` blocks of equal width) for
/// the probe: each block normalised, the whole scaled to unit length.
pub fn layer_features(v: &[f32], layers: usize) -> Vec<f32> {
    assert!(layers > 0 && v.len().is_multiple_of(layers), "layer_features: {} values are not {layers} equal blocks", v.len());
    let d = v.len() / layers;
    let scale = 1.0 / (layers as f64).sqrt();
    let mut out = Vec::with_capacity(v.len());
    for block in v.chunks_exact(d) {
        out.extend(normalized(block).into_iter().map(|x| (x as f64 * scale) as f32));
    }
    out
}

/// What the manifest records about the probe (its weights live in `heads.safetensors` as
/// `probe.weight` `[categories, input]` and `probe.bias` `[categories]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// The source whose rows it was fitted on.
    pub source: String,
    /// Rows of that source it was fitted on.
    pub rows: usize,
    /// What it reads (format 3; format 2 probes read the pooled vector).
    #[serde(default)]
    pub features: ProbeFeatures,
    /// Ridge penalty on the weights (not the bias), on the summed log-likelihood.
    pub l2: f32,
    /// Weight of the probe in `(1 - weight) · p_heads + weight · p_probe`.
    pub weight: f32,
    /// Per category: whether the probe was fitted (the source had both classes of it). A
    /// category without a fit is scored by the heads alone.
    pub fitted: Vec<bool>,
    /// Per category, labelled rows and positives among them, for the model card.
    pub labelled: Vec<usize>,
    pub positives: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_features_normalise_each_block() {
        let v: Vec<f32> = vec![3.0, 4.0, 0.0, 10.0, 0.0, 0.0];
        let f = layer_features(&v, 3);
        let h = 1.0 / 3f32.sqrt();
        let want = [0.6 * h, 0.8 * h, 0.0, h, 0.0, 0.0];
        for (a, b) in f.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{f:?}");
        }
        assert!((f.iter().map(|x| x * x).sum::<f32>() - 2.0 / 3.0).abs() < 1e-6, "a zero block stays zero");
    }
}
