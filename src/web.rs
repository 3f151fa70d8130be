//! The web client: the files of `public/`, embedded in the binary at build time.

use axum::Router;

/// Serves `public/` with ETags, cache headers and compression; `/` is `index.html`.
pub fn router() -> Router {
    memory_serve::load!()
        .index_file(Some("/index.html"))
        .into_router()
}
