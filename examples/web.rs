//! The bug tracker's pages as axum routes, run on the blocking pool where
//! SQLite's blocking calls belong, each with the request's timeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use rusqlite::Connection;
use timeline_core::with_current;

use crate::bugs::{self, PageError};

/// Where the database and the mail spool are.
#[derive(Clone, Debug)]
pub struct App {
    database: Arc<PathBuf>,
    spool: Arc<PathBuf>,
}

/// A page's body, or its status and error text.
pub type Page = Result<String, (StatusCode, String)>;

/// Runs a page on the blocking pool, with the request's timeline carried
/// along by [`with_current`].
pub async fn blocking_page(
    app: App,
    page: impl FnOnce(&Connection, &Path) -> Result<String, PageError> + Send + 'static,
) -> Page {
    let run = with_current(move || {
        let conn = bugs::connect(&app.database).map_err(PageError::Sql)?;
        page(&conn, &app.spool)
    });
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(PageError::NotFound)) => Err((StatusCode::NOT_FOUND, "not found\n".into())),
        Ok(Err(error)) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"))),
        Err(join) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{join}\n"))),
    }
}

async fn product_n_plus_one(State(app): State<App>, UrlPath(product): UrlPath<i64>) -> Page {
    blocking_page(app, move |conn, _| {
        bugs::product_page_n_plus_one(conn, product)
    })
    .await
}

async fn product(State(app): State<App>, UrlPath(product): UrlPath<i64>) -> Page {
    blocking_page(app, move |conn, _| bugs::product_page(conn, product)).await
}

async fn change_status(
    State(app): State<App>,
    UrlPath((id, status)): UrlPath<(i64, String)>,
) -> Page {
    blocking_page(app, move |conn, spool| {
        bugs::change_status(conn, spool, id, &status)
    })
    .await
}

/// The routes: `GET /products/{product}` (one query),
/// `GET /products/{product}/naive` (N+1) and
/// `POST /bugs/{id}/status/{status}` (a transaction and a mail; fails for
/// an unknown status).
pub fn router(database: PathBuf, spool: PathBuf) -> Router {
    Router::new()
        .route("/products/{product}", get(product))
        .route("/products/{product}/naive", get(product_n_plus_one))
        .route("/bugs/{id}/status/{status}", post(change_status))
        .with_state(App {
            database: Arc::new(database),
            spool: Arc::new(spool),
        })
}
