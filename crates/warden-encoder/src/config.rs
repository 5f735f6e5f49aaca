//! The Hugging Face `config.json` of a BERT-family encoder.

use serde::{Deserialize, Serialize};

/// The fields of a Hugging Face BERT `config.json` that the forward pass needs.
///
/// Unknown fields are ignored so that any BERT-family checkpoint (BERT,
/// MiniLM, DistilBERT-style configs exported as `bert`, …) deserialises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_init() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return Err("hidden_size and num_attention_heads must be positive".into());
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        match self.hidden_act.as_str() {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu" => {}
            other => return Err(format!("unsupported hidden_act {other:?}")),
        }
        if self.max_position_embeddings < 8 {
            return Err("max_position_embeddings is too small".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Multiply–add FLOPs (counted as 2 per MAC) of one forward pass over a
    /// sequence of `len` tokens, embeddings excluded.
    pub fn forward_flops(&self, len: usize) -> f64 {
        let d = self.hidden_size as f64;
        let i = self.intermediate_size as f64;
        let l = len as f64;
        let per_layer = 2.0 * l * (4.0 * d * d + 2.0 * d * i) + 2.0 * 2.0 * l * l * d;
        per_layer * self.num_hidden_layers as f64
    }

    /// A tiny configuration for tests.
    pub fn tiny() -> Self {
        BertConfig {
            vocab_size: 64,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 32,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 40,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            initializer_range: 0.02,
            model_type: Some("bert".into()),
        }
    }
}
