//! What can go wrong answering a request, and the status each maps to:
//! a bad parameter is a 400 naming it, an unknown region or household a
//! 404, a missing or wrong token a 401. Anything else (the engine failing
//! on a valid request) is a 500 page with a one-line message — never a
//! stack trace.

/// Errors of the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A query parameter or path segment that cannot be used.
    #[error("bad parameter `{name}`: {message}")]
    BadParameter {
        /// The parameter (`year`, `code`, `rules`, …).
        name: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A region, household or page that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// No token, or the wrong one.
    #[error("a token is needed: open /login?token=… or send Authorization: Bearer …")]
    Unauthorized,
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] tuopin::Error),
    /// A query of the dashboard's own tables failed.
    #[error(transparent)]
    Query(#[from] datafusion::error::DataFusionError),
    /// A template failed to render.
    #[error("page template: {0}")]
    Template(#[from] minijinja::Error),
    /// Serving failed (binding the address, …).
    #[error("{0}")]
    Serve(String),
}

/// A `Result` with [`WebError`].
pub type Result<T, E = WebError> = std::result::Result<T, E>;

impl WebError {
    /// A [`WebError::BadParameter`].
    pub fn bad(name: &str, message: impl Into<String>) -> WebError {
        WebError::BadParameter {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            WebError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Engine(tuopin::Error::NoSnapshot { .. }) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the user: the error itself for what a request
    /// carries; for a failure inside, its first line only.
    pub fn public_message(&self) -> String {
        match self {
            WebError::Engine(tuopin::Error::NoSnapshot { .. }) => {
                format!("bad parameter `year`: {self}")
            }
            WebError::Engine(_)
            | WebError::Query(_)
            | WebError::Template(_)
            | WebError::Serve(_) => {
                let text = self.to_string();
                let first = text.lines().next().unwrap_or_default();
                format!(
                    "internal error: {}",
                    first.chars().take(300).collect::<String>()
                )
            }
            other => other.to_string(),
        }
    }
}
