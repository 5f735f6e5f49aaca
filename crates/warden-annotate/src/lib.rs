//! Warden's annotation and audit web UI.
//!
//! Annotators sign in, work through their queue of assignments (one sample each) and give a
//! positive / negative / unsure label per taxonomy category, with each category's definition
//! and its *not undesired* subcategories (what not to flag) shown beside the text, as the
//! paper's labeling guidelines ask. Auditors see their audit batches the same way. Everything
//! is read from and written to the labeling store ([`warden_store::LabelStore`]); the store
//! decides who may read or write an assignment.
//!
//! [`app`] builds the router from an [`AnnotateState`], so tests drive it without a socket;
//! [`serve`] runs it on a listener (`warden label serve`).
//!
//! # Routes
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /` | none | the single-page app (HTML) |
//! | `GET /assets/app.js`, `GET /assets/app.css` | none | its script and style sheet |
//! | `POST /api/login` | none | `{username, password}` → session cookie, `{user, role}` |
//! | `POST /api/logout` | session | ends the session |
//! | `GET /api/me` | session | `{user, role}` |
//! | `GET /api/taxonomy` | session | categories: code, name, parent, definition, subcategories |
//! | `GET /api/queue` | session | the caller's assignments, progress and next pending one |
//! | `GET /api/progress` | session | `{total, done, skipped, pending}` |
//! | `GET /api/assignments/{id}` | session, owner (admins: any) | sample text, source, batch, labels |
//! | `POST /api/assignments/{id}/labels` | session, owner | `{labels: {code: "pos"\|"neg"\|"unsure"}}` |
//! | `POST /api/assignments/{id}/skip` | session, owner | marks it skipped |
//!
//! # Security
//!
//! - **Sessions**: a random token in an `HttpOnly; SameSite=Strict; Path=/` cookie (`Secure`
//!   when [`AnnotateState::secure_cookies`]); the store keeps only its hash.
//! - **CSRF**: the cookie is `SameSite=Strict`, so other sites' requests carry no session;
//!   the API reads bodies only as `application/json` (a cross-site HTML form cannot send that
//!   without a CORS preflight, which this server never approves); and every state-changing
//!   `/api` request (login and logout included) must carry the custom header
//!   `X-Warden-UI: 1`, which a cross-origin page cannot add without a preflight either. A
//!   request whose `Origin` header names another host is refused as well.
//! - **XSS**: the page loads only its own script (`Content-Security-Policy: default-src
//!   'self'`, no inline script or style), and the app puts sample text into the page as text
//!   (`textContent`), never as HTML.
//! - Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
//!   and `X-Frame-Options: DENY`; API responses carry `Cache-Control: no-store`.
//!
//! # Labels and the hierarchy
//!
//! A submission must label every category of the taxonomy (`incomplete_labels` otherwise)
//! and name no other (`unknown_category`). A positive subcategory implies a positive parent
//! (S3 ⇒ S, H2 ⇒ H, V2 ⇒ V): the server **rejects** a submission that breaks this
//! (`hierarchy_violation`) rather than silently changing what the annotator said; the app
//! sets the parent to positive for the annotator when they mark a subcategory positive.

mod api;
pub mod error;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use warden_core::Taxonomy;
use warden_store::{LabelStore, SqliteStore, StoreError};

pub use api::{app, CSRF_HEADER, SESSION_COOKIE};
pub use error::ApiError;

/// Default session lifetime: 12 hours.
pub const DEFAULT_SESSION_TTL_SECS: f64 = 12.0 * 3600.0;

/// What the router needs. Cheap to clone.
#[derive(Clone)]
pub struct AnnotateState {
    /// The labeling store. Its calls are synchronous (SQLite); handlers run them on the
    /// blocking pool.
    pub store: Arc<Mutex<Box<dyn LabelStore>>>,
    pub taxonomy: Arc<Taxonomy>,
    /// Adds `Secure` to the session cookie: set it whenever the UI is reached over HTTPS
    /// (directly or through a TLS-terminating proxy).
    pub secure_cookies: bool,
    pub session_ttl_secs: f64,
}

impl AnnotateState {
    /// A state over any store, with insecure (plain-HTTP) cookies and the default TTL.
    pub fn new(store: impl LabelStore + 'static, taxonomy: Taxonomy) -> Self {
        Self {
            store: Arc::new(Mutex::new(Box::new(store))),
            taxonomy: Arc::new(taxonomy),
            secure_cookies: false,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
        }
    }

    /// Opens (creating and migrating when needed) a SQLite store.
    pub fn open(db: impl AsRef<Path>, taxonomy: Taxonomy) -> Result<Self, StoreError> {
        Ok(Self::new(SqliteStore::open(db)?, taxonomy))
    }

    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    pub fn with_session_ttl_secs(mut self, ttl: f64) -> Self {
        self.session_ttl_secs = ttl;
        self
    }

    /// Runs a store call on the blocking pool and maps its error.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn LabelStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier call poisons the lock but leaves SQLite consistent (each
            // write is one transaction), so carry on with the inner value.
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(guard.as_mut())
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(ApiError::from)
    }
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AnnotateState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
