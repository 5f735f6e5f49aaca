//! The layered safeguards applied to a batch of documents, and the decision rule.
//!
//! Order, as the fine-tuning guide asks: (1) domain blocklists, (2) word and phrase rules,
//! (3) the fast classifier on every chunk, (4) the second tier on the chunks whose fast
//! score falls in the uncertain band. Everything every layer saw is recorded in the
//! document's [`DocAttributes`] (chunk scores, rule hits below the acting severity too), and
//! [`decide`] turns those attributes into keep / drop / redact: it is a pure function of
//! the attributes and the policy, so another policy can be applied later without
//! rescoring.

use std::sync::Arc;

use rayon::prelude::*;
use warden_audit::{Action, ChunkScores, DocAttributes, Layer, Reason};
use warden_core::{Classifier, Scores, Taxonomy};
use warden_corpus::Document;
use warden_pii::PiiMasker;
use warden_rules::{DomainList, IdentityTerms, ListInfo, RuleList, RuleSet, Severity, Span};

use crate::chunk::{chunk_of, chunks};
use crate::policy::CurationPolicy;
use crate::CurateError;

/// At most this many rule hits are stored per document (the number of the others is in
/// `DocAttributes::rule_hits_omitted`); a spam page with thousands of matches must not blow up the sidecar.
pub const MAX_RULE_HITS_STORED: usize = 100;

/// The second tier: rescores the chunks the fast tier is unsure about.
pub trait SecondTier: Send + Sync {
    /// Name for manifests.
    fn name(&self) -> &str;
    /// Scores `texts`; `fast` holds the fast tier's scores of the same texts (a cascade
    /// combines both, a plain classifier ignores them).
    fn rescore(&self, texts: &[&str], fast: &[Scores]) -> Result<Vec<Scores>, warden_core::Error>;
}

/// Any [`Classifier`] as a second tier that replaces the fast scores.
pub struct PlainSecondTier(pub Arc<dyn Classifier>);

impl SecondTier for PlainSecondTier {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn rescore(&self, texts: &[&str], _fast: &[Scores]) -> Result<Vec<Scores>, warden_core::Error> {
        self.0.predict_batch(texts)
    }
}

/// What the engine produced for one document.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The attributes-sidecar record.
    pub attrs: DocAttributes,
    /// The text to write when it differs from the input's (redacted or PII-masked);
    /// `None` means "write the input record unchanged" (or nothing, for a drop).
    pub new_text: Option<String>,
}

/// Everything loaded for a run: policy, taxonomy, models and lists.
pub struct Engine {
    taxonomy: Taxonomy,
    policy: CurationPolicy,
    thresholds: Vec<f32>,
    drop_mask: Vec<bool>,
    fast: Option<Arc<dyn Classifier>>,
    second: Option<Arc<dyn SecondTier>>,
    rules: RuleSet,
    domains: Vec<DomainList>,
    identity: IdentityTerms,
    pii: Option<PiiMasker>,
    decontaminated_terms: usize,
    url_field: String,
}

impl Engine {
    /// Loads the lists the policy names and checks the models against the taxonomy.
    /// `fast` is needed to score (without it, [`Engine::process_with`] can only re-apply
    /// earlier scores); `second` is used only when the policy enables the second tier.
    pub fn new(
        policy: CurationPolicy,
        taxonomy: Taxonomy,
        fast: Option<Arc<dyn Classifier>>,
        second: Option<Arc<dyn SecondTier>>,
    ) -> Result<Self, CurateError> {
        let fast = if policy.classifier.enabled {
            // Without a model, only re-applying scores from an earlier run works.
            let Some(f) = fast else { return Self::finish_new(policy, taxonomy, None, None) };
            if f.taxonomy().codes().ne(taxonomy.codes()) {
                return Err(CurateError::Policy(format!(
                    "model {} uses categories {:?}, the run uses {:?}",
                    f.name(),
                    f.taxonomy().codes().collect::<Vec<_>>(),
                    taxonomy.codes().collect::<Vec<_>>()
                )));
            }
            Some(f)
        } else {
            None
        };
        let second = if policy.second_tier.enabled && fast.is_some() { second } else { None };
        Self::finish_new(policy, taxonomy, fast, second)
    }

    fn finish_new(
        policy: CurationPolicy,
        taxonomy: Taxonomy,
        fast: Option<Arc<dyn Classifier>>,
        second: Option<Arc<dyn SecondTier>>,
    ) -> Result<Self, CurateError> {
        let mut decontaminated_terms = 0;
        let (rules, domains) = if policy.rules.enabled {
            let mut lists = Vec::new();
            if policy.rules.builtin {
                lists.push(RuleList::builtin());
            }
            for spec in &policy.rules.lists {
                let path = policy.resolve(&spec.path);
                let list = match spec.format.as_str() {
                    "warden" => RuleList::load(&path),
                    "surge-csv" => RuleList::load_surge_csv(&path),
                    _ => {
                        let name = spec.name.clone().unwrap_or_else(|| {
                            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                        });
                        RuleList::load_lines(
                            &path,
                            &name,
                            spec.category.as_deref().unwrap_or_default(),
                            spec.severity.unwrap_or(Severity::Strong),
                            spec.licence.as_deref().unwrap_or("unknown"),
                        )
                    }
                }
                .map_err(|e| CurateError::Rules(e.to_string()))?;
                lists.push(list);
            }
            if let Some(d) = &policy.rules.decontamination {
                let path = policy.resolve(d);
                let deco = warden_data::Decontaminator::load(&path)
                    .map_err(|e| CurateError::Rules(format!("{}: {e}", path.display())))?;
                for l in &mut lists {
                    decontaminated_terms += l.drop_decontaminated(&deco);
                }
            }
            let rules = RuleSet::new(lists, &taxonomy).map_err(|e| CurateError::Rules(e.to_string()))?;
            let mut domains = Vec::new();
            for d in &policy.rules.domains {
                let path = policy.resolve(d);
                let list = DomainList::load(&path).map_err(|e| CurateError::Rules(e.to_string()))?;
                domains.push(list);
            }
            (rules, domains)
        } else {
            (RuleSet::empty(), Vec::new())
        };
        let identity = if policy.identity.terms == "builtin" {
            IdentityTerms::builtin()
        } else {
            let path = policy.resolve(std::path::Path::new(&policy.identity.terms));
            IdentityTerms::load_holistic_bias(&path).map_err(|e| CurateError::Rules(e.to_string()))?
        };
        let pii = policy.pii.mask.then(PiiMasker::new);
        Ok(Engine {
            thresholds: policy.thresholds(&taxonomy),
            drop_mask: policy.drop_mask(&taxonomy),
            taxonomy,
            policy,
            fast,
            second,
            rules,
            domains,
            identity,
            pii,
            decontaminated_terms,
            url_field: "url".to_owned(),
        })
    }

    /// The record field holding the url whose host the domain blocklists check (default
    /// `url`); without one, the document's source is checked.
    pub fn with_url_field(mut self, field: &str) -> Self {
        self.url_field = field.to_owned();
        self
    }

    /// The taxonomy.
    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }
    /// The policy.
    pub fn policy(&self) -> &CurationPolicy {
        &self.policy
    }
    /// The fast model's name, if the classifier runs.
    pub fn fast_name(&self) -> Option<&str> {
        self.fast.as_deref().map(|f| f.name())
    }
    /// The second tier's name, if it runs.
    pub fn second_name(&self) -> Option<&str> {
        self.second.as_deref().map(|s| s.name())
    }
    /// The rule lists in use.
    pub fn rule_lists(&self) -> &[ListInfo] {
        self.rules.lists()
    }
    /// Rule terms dropped because they equal a held-out text.
    pub fn decontaminated_terms(&self) -> usize {
        self.decontaminated_terms
    }
    /// Name of the identity-term list.
    pub fn identity_name(&self) -> &str {
        self.identity.name()
    }
    /// Number of domains blocked.
    pub fn blocked_domains(&self) -> usize {
        self.domains.iter().map(DomainList::len).sum()
    }

    /// Scores and decides a batch. Documents are processed in parallel; the output is in
    /// input order.
    pub fn process(&self, docs: &[Document]) -> Result<Vec<Outcome>, CurateError> {
        self.process_with(docs, None)
    }

    /// [`Engine::process`], or — with `prior`, one chunk list per document from an earlier
    /// run's attributes — re-decides without scoring: the rules, domains, identity terms and
    /// the decision use this engine's policy, the scores come from `prior`.
    pub fn process_with(&self, docs: &[Document], prior: Option<Vec<Vec<ChunkScores>>>) -> Result<Vec<Outcome>, CurateError> {
        // Layers 1 and 2 (and chunking), per document.
        let mut pre: Vec<Pre> = docs.par_iter().map(|d| self.pre(d)).collect();
        if let Some(prior) = prior {
            if prior.len() != docs.len() {
                return Err(CurateError::Format(format!("{} prior score records for {} documents", prior.len(), docs.len())));
            }
            for ((p, chunks), d) in pre.iter_mut().zip(prior).zip(docs) {
                if self.policy.classifier.enabled && p.domain.is_none() && chunks.iter().any(|c| c.fast.len() != self.taxonomy.len()) {
                    return Err(CurateError::Format(format!(
                        "document {:?} was not scored in the earlier run (its domain was blocked there); rescore instead of re-applying",
                        d.id
                    )));
                }
                p.spans = chunks.iter().map(|c| c.span).collect();
                p.chunks = chunks;
            }
            return Ok(pre.into_par_iter().zip(docs.par_iter()).map(|(p, d)| self.finish(p, d)).collect());
        }
        if self.policy.classifier.enabled && self.fast.is_none() {
            return Err(CurateError::Policy("the policy enables the classifier but no model was given".into()));
        }
        // Layer 3: the fast tier on every chunk of every document, in parallel.
        let mut texts: Vec<&str> = Vec::new();
        let mut owner: Vec<(usize, usize)> = Vec::new();
        if self.fast.is_some() {
            for (i, (p, d)) in pre.iter().zip(docs).enumerate() {
                if p.domain.is_some() {
                    continue; // dropped already: do not spend model time on it
                }
                for (j, c) in p.spans.iter().enumerate() {
                    texts.push(&d.text[c.start..c.end]);
                    owner.push((i, j));
                }
            }
        }
        if let Some(fast) = &self.fast {
            let scores: Vec<Scores> = texts
                .par_chunks(64)
                .map(|b| fast.predict_batch(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CurateError::Model(e.to_string()))?
                .into_iter()
                .flatten()
                .collect();
            for (&(i, j), s) in owner.iter().zip(scores) {
                pre[i].chunks[j].fast = s;
            }
            // Layer 4: the second tier on the uncertain band.
            if let Some(second) = &self.second {
                let [lo, hi] = self.policy.second_tier.band;
                let idx: Vec<usize> = (0..owner.len())
                    .filter(|&k| {
                        let (i, j) = owner[k];
                        pre[i].chunks[j].fast.iter().any(|&p| p >= lo && p <= hi)
                    })
                    .collect();
                if !idx.is_empty() {
                    let sub: Vec<&str> = idx.iter().map(|&k| texts[k]).collect();
                    let fast_sub: Vec<Scores> = idx.iter().map(|&k| pre[owner[k].0].chunks[owner[k].1].fast.clone()).collect();
                    let rescored = second.rescore(&sub, &fast_sub).map_err(|e| CurateError::Model(e.to_string()))?;
                    for (&k, s) in idx.iter().zip(rescored) {
                        let (i, j) = owner[k];
                        pre[i].chunks[j].encoder = Some(s);
                    }
                }
            }
        }
        // Decision and output text, per document.
        Ok(pre
            .into_par_iter()
            .zip(docs.par_iter())
            .map(|(p, d)| self.finish(p, d))
            .collect())
    }

    fn pre(&self, d: &Document) -> Pre {
        let spans = chunks(&d.text, self.policy.chunking.max_bytes, self.policy.chunking.paragraphs);
        let domain = if self.domains.is_empty() {
            None
        } else {
            let host = d.raw.get(&self.url_field).and_then(|u| u.as_str()).and_then(warden_corpus::url_host);
            let host = host.or_else(|| d.source.clone());
            host.and_then(|h| self.domains.iter().find_map(|l| l.blocked(&h)).map(str::to_owned))
        };
        let mut rule_hits = if self.rules.is_empty() { Vec::new() } else { self.rules.find(&d.text) };
        let total_hits = rule_hits.len();
        let chunks = spans.iter().map(|&span| ChunkScores { span, fast: Vec::new(), encoder: None }).collect();
        // Acting hits are decided before truncating the stored list.
        let acting: Vec<_> = rule_hits.iter().filter(|h| h.severity >= self.policy.rules.act_on).cloned().collect();
        rule_hits.truncate(MAX_RULE_HITS_STORED);
        Pre { spans, domain, rule_hits, acting, total_hits, chunks, identity: self.identity.mentions(&d.text) }
    }

    fn finish(&self, p: Pre, d: &Document) -> Outcome {
        let input = DecideInput {
            text_len: d.text.len(),
            domain: p.domain.as_deref(),
            acting_hits: &p.acting,
            chunks: &p.chunks,
        };
        let (action, reasons, redacted) = decide(&input, &self.taxonomy, &self.thresholds, &self.drop_mask, &self.policy, self.policy.classifier.enabled);
        let mut new_text = None;
        let mut pii_masked = 0;
        if action != Action::Drop {
            let mut text = if action == Action::Redact { Some(remove_spans(&d.text, &redacted)) } else { None };
            if let Some(m) = &self.pii {
                let masked = m.mask(text.as_deref().unwrap_or(&d.text));
                if !masked.is_clean() {
                    pii_masked = masked.spans.len() as u32;
                    text = Some(masked.text);
                }
            }
            new_text = text;
        }
        let mut scores = vec![0.0f32; self.taxonomy.len()];
        for c in &p.chunks {
            for (s, &x) in scores.iter_mut().zip(c.effective()) {
                *s = s.max(x);
            }
        }
        let attrs = DocAttributes {
            id: d.id.clone(),
            line: d.location.line,
            byte_offset: d.location.byte_offset,
            source: d.source.clone(),
            bytes: d.text.len() as u64,
            action,
            reasons,
            scores,
            chunks: p.chunks,
            rule_hits_omitted: (p.total_hits - p.rule_hits.len()) as u32,
            rule_hits: p.rule_hits,
            redacted,
            identity: p.identity,
            pii_masked,
        };
        Outcome { attrs, new_text }
    }
}

struct Pre {
    spans: Vec<Span>,
    domain: Option<String>,
    rule_hits: Vec<warden_rules::RuleHit>,
    acting: Vec<warden_rules::RuleHit>,
    total_hits: usize,
    chunks: Vec<ChunkScores>,
    identity: bool,
}

/// What [`decide`] needs to know about a document.
pub struct DecideInput<'a> {
    /// Length of the text in bytes.
    pub text_len: usize,
    /// The blocklist entry that matched the document's source, if any.
    pub domain: Option<&'a str>,
    /// Rule hits at or above the acting severity.
    pub acting_hits: &'a [warden_rules::RuleHit],
    /// Chunk spans and scores (empty `fast` when the classifier did not run).
    pub chunks: &'a [ChunkScores],
}

/// The decision rule (pure; see the module docs):
///
/// 1. a blocked domain drops the document;
/// 2. every acting rule hit and every chunk score at or above its category's threshold is
///    a reason; no reason keeps the document;
/// 3. a reason in one of the policy's `drop_categories`, or redaction switched off, drops it;
/// 4. otherwise the offending chunks are removed, unless that would remove more than
///    `max_redacted_fraction` of the bytes or leave fewer than `min_kept_bytes`, in which
///    case the document is dropped.
pub fn decide(
    input: &DecideInput<'_>,
    taxonomy: &Taxonomy,
    thresholds: &[f32],
    drop_mask: &[bool],
    policy: &CurationPolicy,
    classifier: bool,
) -> (Action, Vec<Reason>, Vec<Span>) {
    if let Some(host) = input.domain {
        let r = Reason { layer: Layer::Domain, category: None, score: None, threshold: None, span: None, detail: Some(host.to_owned()) };
        return (Action::Drop, vec![r], Vec::new());
    }
    let spans: Vec<Span> = input.chunks.iter().map(|c| c.span).collect();
    let mut reasons = Vec::new();
    let mut offending = vec![false; input.chunks.len()];
    let mut drop = false;
    let codes: Vec<&str> = taxonomy.codes().collect();
    // Rules: one reason per (category, chunk), citing the first acting term in it.
    let mut seen = std::collections::HashSet::new();
    for h in input.acting_hits {
        let first = chunk_of(&spans, h.span.start);
        let last = chunk_of(&spans, h.span.end.saturating_sub(1).max(h.span.start));
        let ci = codes.iter().position(|c| *c == h.category);
        // Confirmation by the classifier, unless the category acts alone.
        let mut confirm = None;
        if let (Some(t), Some(ci), Some(a)) = (policy.rules.confirm_threshold, ci, first) {
            if classifier && !policy.rules.always_act.contains(&h.category) {
                let s = input.chunks[a].effective().get(ci).copied().unwrap_or(0.0);
                if s < t {
                    continue;
                }
                confirm = Some((s, t));
            }
        }
        if let Some(ci) = ci {
            drop |= drop_mask[ci];
        }
        if let (Some(a), Some(b)) = (first, last) {
            for o in &mut offending[a..=b] {
                *o = true;
            }
            if !seen.insert((h.category.clone(), a)) {
                continue;
            }
        }
        reasons.push(Reason {
            layer: Layer::Rules,
            category: Some(h.category.clone()),
            score: confirm.map(|c| c.0),
            threshold: confirm.map(|c| c.1),
            span: Some(h.span),
            detail: Some(format!("{} ({}, list {})", h.term, h.severity.as_str(), h.list)),
        });
    }
    if classifier {
        for (j, c) in input.chunks.iter().enumerate() {
            let layer = if c.encoder.is_some() { Layer::Encoder } else { Layer::Fast };
            for (ci, (&s, &t)) in c.effective().iter().zip(thresholds).enumerate() {
                if s >= t {
                    offending[j] = true;
                    drop |= drop_mask[ci];
                    reasons.push(Reason {
                        layer,
                        category: Some(codes[ci].to_owned()),
                        score: Some(s),
                        threshold: Some(t),
                        span: Some(c.span),
                        detail: None,
                    });
                }
            }
        }
    }
    if reasons.is_empty() {
        return (Action::Keep, reasons, Vec::new());
    }
    if drop || !policy.decision.redact {
        return (Action::Drop, reasons, Vec::new());
    }
    // Merge adjacent offending chunks into maximal spans.
    let mut redacted: Vec<Span> = Vec::new();
    for (c, _) in input.chunks.iter().zip(&offending).filter(|(_, &o)| o) {
        match redacted.last_mut() {
            Some(last) if last.end == c.span.start => last.end = c.span.end,
            _ => redacted.push(c.span),
        }
    }
    let removed: usize = redacted.iter().map(Span::len).sum();
    let kept = input.text_len - removed;
    if removed as f64 > policy.decision.max_redacted_fraction * input.text_len as f64 || kept < policy.decision.min_kept_bytes {
        return (Action::Drop, reasons, Vec::new());
    }
    (Action::Redact, reasons, redacted)
}

/// `text` without the (sorted, non-overlapping) `spans`.
pub fn remove_spans(text: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for s in spans {
        out.push_str(&text[pos..s.start]);
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    out
}
